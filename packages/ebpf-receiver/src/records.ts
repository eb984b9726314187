import { DataEvent, RecordFlag, RecordHeader, RecordType, SockEvent, SockIdent } from "./layout.generated.js";

export { RecordFlag, RecordType };

/** Syscall that produced a record (enum kl_syscall). */
export const Syscall = {
  Read: 1,
  Write: 2,
  Readv: 3,
  Writev: 4,
  Sendto: 5,
  Recvfrom: 6,
  Sendmsg: 7,
  Recvmsg: 8,
  Sendmmsg: 9,
  Recvmmsg: 10,
  Connect: 11,
  Accept: 12,
  Accept4: 13,
  Close: 14,
  /** TLS plaintext (RecordFlag.tls): OpenSSL SSL_write / SSL_write_ex. */
  SslWrite: 15,
  SslRead: 16,
  /** TLS plaintext: Go crypto/tls.(*Conn).Write. */
  GoTlsWrite: 17,
  GoTlsRead: 18,
} as const;
export type Syscall = (typeof Syscall)[keyof typeof Syscall];

export const Direction = {
  Egress: 1,
  Ingress: 2,
} as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

export const SocketRole = {
  Unknown: 0,
  /** The socket came from connect(). */
  Client: 1,
  /** The socket came from accept(). */
  Server: 2,
} as const;
export type SocketRole = (typeof SocketRole)[keyof typeof SocketRole];

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

const TWO_32 = 4294967296;
const latin1 = new TextDecoder("latin1");

/**
 * A reusable reader over one batch of records, re-pointed at each record by next()
 * (no allocation per record). Numeric getters read the buffer directly; strings and
 * addresses are decoded only when asked for. u64 fields are read as two u32 (no BigInt).
 *
 * Valid only until the receiver drains again (the next iteration of batches()).
 */
export class RecordCursor {
  private readonly view: DataView;
  private readonly end: number;
  /** Byte offset of the current record in the batch buffer. */
  offset = -1;
  private nextOffset = 0;
  private ident = 0;

  constructor(
    private readonly buffer: Buffer,
    byteLength: number,
  ) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, byteLength);
    this.end = byteLength;
  }

  /** Moves to the next record; false at the end of the batch (or on a malformed size). */
  next(): boolean {
    const at = this.nextOffset;
    if (at + RecordHeader.sizeof > this.end) return false;
    const size = this.view.getUint32(at + RecordHeader.size, true);
    if (size < RecordHeader.sizeof || at + size > this.end) return false;
    this.offset = at;
    this.nextOffset = at + ((size + 7) & ~7);
    this.ident = at + (this.type === RecordType.data ? DataEvent.ident : SockEvent.ident);
    return true;
  }

  /**
   * Positions the cursor on the record at byte `offset` (an `offset` value seen earlier in this
   * batch). Returns false if no valid record starts there.
   */
  seek(offset: number): boolean {
    this.nextOffset = offset;
    return this.next();
  }

  /** Back to before the first record. */
  rewind(): void {
    this.offset = -1;
    this.nextOffset = 0;
  }

  // --- header ---
  get type(): number {
    return this.view.getUint16(this.offset + RecordHeader.type, true);
  }
  get flags(): number {
    return this.view.getUint16(this.offset + RecordHeader.flags, true);
  }
  get size(): number {
    return this.view.getUint32(this.offset + RecordHeader.size, true);
  }

  // --- socket identity (all record types) ---
  get sockId(): number {
    return this.u64(this.ident + SockIdent.sockId);
  }
  get cgroupId(): number {
    return this.u64(this.ident + SockIdent.cgroupId);
  }
  get tgid(): number {
    return this.view.getUint32(this.ident + SockIdent.tgid, true);
  }
  get tid(): number {
    return this.view.getUint32(this.ident + SockIdent.tid, true);
  }
  get fd(): number {
    return this.view.getInt32(this.ident + SockIdent.fd, true);
  }
  get netns(): number {
    return this.view.getUint32(this.ident + SockIdent.netns, true);
  }
  /** Local port. */
  get sport(): number {
    return this.view.getUint16(this.ident + SockIdent.sport, true);
  }
  /** Remote port. */
  get dport(): number {
    return this.view.getUint16(this.ident + SockIdent.dport, true);
  }
  get family(): number {
    return this.view.getUint8(this.ident + SockIdent.family);
  }
  get l4proto(): number {
    return this.view.getUint8(this.ident + SockIdent.l4proto);
  }
  get role(): SocketRole {
    return this.view.getUint8(this.ident + SockIdent.role) as SocketRole;
  }
  /** Local address bytes (4 for IPv4, 16 for IPv6), a view into the batch. */
  saddrBytes(): Buffer {
    const at = this.ident + SockIdent.saddr;
    return this.buffer.subarray(at, at + (this.family === AF_INET ? 4 : 16));
  }
  daddrBytes(): Buffer {
    const at = this.ident + SockIdent.daddr;
    return this.buffer.subarray(at, at + (this.family === AF_INET ? 4 : 16));
  }
  /** Local address as text. */
  saddr(): string {
    return formatAddress(this.saddrBytes());
  }
  /** Remote address as text. */
  daddr(): string {
    return formatAddress(this.daddrBytes());
  }
  comm(): string {
    const at = this.ident + SockIdent.comm;
    const raw = this.buffer.subarray(at, at + 16);
    const nul = raw.indexOf(0);
    return latin1.decode(nul < 0 ? raw : raw.subarray(0, nul));
  }

  // --- data records (type === RecordType.data) ---
  get enterNs(): number {
    return this.u64(this.offset + DataEvent.enterNs);
  }
  get exitNs(): number {
    return this.u64(this.offset + DataEvent.exitNs);
  }
  /** TCP seq of the first byte (valid when flags has RecordFlag.seqValid). */
  get tcpSeq(): number {
    return this.view.getUint32(this.offset + DataEvent.tcpSeq, true);
  }
  /** Bytes the syscall moved (the true size, even when the payload was truncated). */
  get bytes(): number {
    return this.view.getUint32(this.offset + DataEvent.bytes, true);
  }
  /** Payload bytes captured. */
  get capLen(): number {
    return this.view.getUint32(this.offset + DataEvent.capLen, true);
  }
  get syscall(): Syscall {
    return this.view.getUint16(
      this.offset + (this.type === RecordType.data ? DataEvent.syscall : SockEvent.syscall),
      true,
    ) as Syscall;
  }
  get direction(): Direction {
    return this.view.getUint8(this.offset + DataEvent.direction) as Direction;
  }
  get msgIndex(): number {
    return this.view.getUint8(this.offset + DataEvent.msgIndex);
  }
  /** Captured payload, a zero-copy view into the batch. */
  payload(): Buffer {
    const at = this.offset + DataEvent.payload;
    return this.buffer.subarray(at, at + this.capLen);
  }

  // --- socket lifecycle records (sock, tcpState, tcpRetransmit) ---
  get tsNs(): number {
    return this.u64(this.offset + SockEvent.tsNs);
  }
  get durationNs(): number {
    return this.u64(this.offset + SockEvent.durationNs);
  }
  /** Syscall return value (connect: 0 or -errno). */
  get ret(): number {
    return this.view.getInt32(this.offset + SockEvent.ret, true);
  }
  get oldState(): number {
    return this.view.getUint8(this.offset + SockEvent.oldState);
  }
  get newState(): number {
    return this.view.getUint8(this.offset + SockEvent.newState);
  }

  private u64(at: number): number {
    return this.view.getUint32(at + 4, true) * TWO_32 + this.view.getUint32(at, true);
  }
}

/** Dotted IPv4 or compressed IPv6 text of 4 or 16 address bytes. */
export function formatAddress(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0));
  // IPv4-mapped ::ffff:a.b.c.d
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** One drained batch: a view over the receiver's buffer, valid until the next drain. */
export class EventBatch {
  constructor(
    readonly buffer: Buffer,
    readonly byteLength: number,
    readonly count: number,
  ) {}

  /** A cursor over this batch's records. */
  cursor(): RecordCursor {
    return new RecordCursor(this.buffer, this.byteLength);
  }
}
