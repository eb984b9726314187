import { DataEvent, RecordFlag, RecordHeader, RecordType, SockIdent } from "./layout.generated.js";
import { type Direction, EventBatch, type SocketRole } from "./records.js";

/** The fields of one data record (a read or write on a socket) as the kernel side fills them. */
export interface DataRecordFields {
  sockId: number;
  tgid: number;
  tid: number;
  role: SocketRole;
  direction: Direction;
  enterNs: number;
  exitNs: number;
  /** TCP seq of the first byte (sets RecordFlag.seqValid). */
  tcpSeq?: number;
  /** IPv4 dotted quads. */
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  comm: string;
  netns?: number;
  cgroupId?: number;
  payload: Uint8Array;
}

/**
 * Writes data records in the kernel's layout (layout.generated.ts) into one buffer, for replaying
 * synthetic traffic through the same cursor and parsers as real events: JIT warm-up, benchmarks, tests.
 */
export class EventBatchWriter {
  private buf: Buffer;
  private pos = 0;
  private count = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.alloc(initialBytes);
  }

  data(f: DataRecordFields): void {
    const size = DataEvent.sizeof + f.payload.length;
    const padded = (size + 7) & ~7;
    if (this.pos + padded > this.buf.length) this.grow(padded);
    const b = this.buf;
    const o = this.pos;
    b.fill(0, o, o + padded);
    b.writeUInt16LE(RecordType.data, o + RecordHeader.type);
    b.writeUInt16LE(f.tcpSeq === undefined ? 0 : RecordFlag.seqValid, o + RecordHeader.flags);
    b.writeUInt32LE(size, o + RecordHeader.size);
    writeU64(b, o + DataEvent.enterNs, f.enterNs);
    writeU64(b, o + DataEvent.exitNs, f.exitNs);
    const id = o + DataEvent.ident;
    writeU64(b, id + SockIdent.sockId, f.sockId);
    writeU64(b, id + SockIdent.cgroupId, f.cgroupId ?? 0);
    b.writeUInt32LE(f.tgid, id + SockIdent.tgid);
    b.writeUInt32LE(f.tid, id + SockIdent.tid);
    b.writeUInt32LE(f.netns ?? 0, id + SockIdent.netns);
    b.writeUInt16LE(f.sport, id + SockIdent.sport);
    b.writeUInt16LE(f.dport, id + SockIdent.dport);
    b.writeUInt8(2, id + SockIdent.family); // AF_INET
    b.writeUInt8(6, id + SockIdent.l4proto); // TCP
    b.writeUInt8(f.role, id + SockIdent.role);
    writeIPv4(b, id + SockIdent.saddr, f.saddr);
    writeIPv4(b, id + SockIdent.daddr, f.daddr);
    b.write(f.comm.slice(0, 15), id + SockIdent.comm, "latin1");
    b.writeUInt32LE((f.tcpSeq ?? 0) >>> 0, o + DataEvent.tcpSeq);
    b.writeUInt32LE(f.payload.length, o + DataEvent.bytes);
    b.writeUInt32LE(f.payload.length, o + DataEvent.capLen);
    b.writeUInt8(f.direction, o + DataEvent.direction);
    b.set(f.payload, o + DataEvent.payload);
    this.pos += padded;
    this.count++;
  }

  /** What was written so far, as a batch (a view: valid until the next reset()). */
  batch(): EventBatch {
    return new EventBatch(this.buf, this.pos, this.count);
  }

  reset(): void {
    this.pos = 0;
    this.count = 0;
  }

  private grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

function writeU64(b: Buffer, at: number, n: number): void {
  b.writeUInt32LE(n % 2 ** 32, at);
  b.writeUInt32LE(Math.floor(n / 2 ** 32), at + 4);
}

function writeIPv4(b: Buffer, at: number, addr: string): void {
  const parts = addr.split(".");
  for (let i = 0; i < 4; i++) b[at + i] = Number(parts[i]) & 255;
}
