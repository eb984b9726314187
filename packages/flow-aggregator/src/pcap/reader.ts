// Capture files (classic pcap and pcapng) read as a stream of chunks through one re-pointed cursor.
// Frames point into the pushed chunk; only a record split across two chunks is stitched in a small
// owned buffer. Bad input is counted and skipped, never thrown.

import { closeSync, openSync, readSync } from "node:fs";
import type { FrameCursor } from "./frame.js";

/** Largest captured length accepted per frame; beyond it a record is malformed. */
export const MAX_CAPLEN = 256 * 1024;
/** Largest pcapng packet or interface block held in memory (a frame plus room for options). */
const MAX_BUFFERED_BLOCK = MAX_CAPLEN + 64 * 1024;
/** Longest pcapng block skipped by its length; a longer one is taken for garbage and resynchronised. */
const MAX_SKIPPED_BLOCK = 16 * 1024 * 1024;
/** Interfaces per pcapng section; further IDBs are malformed. */
const MAX_INTERFACES = 4096;

enum Magic {
  PcapMicro = 0xa1b2c3d4,
  PcapNano = 0xa1b23c4d,
  PcapMicroSwapped = 0xd4c3b2a1,
  PcapNanoSwapped = 0x4d3cb2a1,
  SectionHeader = 0x0a0d0d0a,
  ByteOrder = 0x1a2b3c4d,
  ByteOrderSwapped = 0x4d3c2b1a,
}

enum BlockType {
  InterfaceDescription = 1,
  ObsoletePacket = 2,
  SimplePacket = 3,
  EnhancedPacket = 6,
}

enum OptionCode {
  EndOfOptions = 0,
  IfName = 2,
  IfTsResol = 9,
  IfTsOffset = 14,
}

enum State {
  /** Nothing read yet: the first 4 bytes decide the format. */
  Start,
  /** Classic pcap: a 16-byte record header and its frame. */
  PcapRecord,
  /** Classic pcap after a malformed record: the rest of the input is skipped. */
  PcapStopped,
  /** pcapng: the next block. */
  Block,
  /** pcapng after a block whose length cannot be trusted: scanning for the next section header. */
  Resync,
  /** Not a capture file. */
  Failed,
}

export type CaptureFormat = "pcap" | "pcapng";

/** `ok: false` only when the input is not a capture file at all; everything else is counted in stats. */
export type CaptureStatus = { ok: true } | { ok: false; error: string };

export interface CaptureReaderStats {
  /** Frames delivered. */
  packets: number;
  /** Malformed records or blocks (bad lengths, unknown interface, caplen > MAX_CAPLEN ...), counted and skipped. */
  malformed: number;
  /** Well-formed pcapng blocks that carry no frame (statistics, name resolution, unknown types). */
  skippedBlocks: number;
  /** Bytes passed over after a malformed record (rest of a classic pcap, or up to the next pcapng section). */
  skippedBytes: number;
  /** Bytes of an incomplete last record or block when the input ended. */
  truncatedBytes: number;
  /** pcapng sections seen (1 for classic pcap). */
  sections: number;
  /** Interfaces described in the current pcapng section (1 for classic pcap). */
  interfaces: number;
  /** Capacity of the buffer that stitches records split across chunks (bounded by the largest record). */
  bufferedBytes: number;
}

export interface CaptureReaderOptions {
  /** Largest captured length accepted per frame (default and upper bound MAX_CAPLEN). */
  maxCapLen?: number;
}

interface InterfaceInfo {
  linkType: number;
  snapLen: number;
  name: string | undefined;
  /** Timestamp units per second (if_tsresol; 10^6 by default). */
  unitsPerSec: number;
  /** Decimal exponent of the resolution, or -1 for a power of two. */
  decimalExponent: number;
  /** if_tsoffset: seconds added to every timestamp. */
  offsetSec: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

function u16le(b: Uint8Array, o: number): number {
  return (b[o] as number) | ((b[o + 1] as number) << 8);
}
function u16be(b: Uint8Array, o: number): number {
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}
function u32le(b: Uint8Array, o: number): number {
  return (
    ((b[o] as number) | ((b[o + 1] as number) << 8) | ((b[o + 2] as number) << 16) | ((b[o + 3] as number) << 24)) >>> 0
  );
}
function u32be(b: Uint8Array, o: number): number {
  return (
    (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0
  );
}

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;

/**
 * Reads classic pcap (either byte order, µs or ns) and pcapng (sections of either byte order,
 * several interfaces, if_tsresol, EPB/SPB/OPB) from chunks: `push(chunk)`, then `while (r.next())`
 * read the cursor fields, then push the next chunk; `end()` after the last one. Iterate until
 * `next()` is false before each push so that at most one split record is ever buffered.
 */
export class CaptureFileReader implements FrameCursor {
  buffer: Uint8Array = new Uint8Array(0);
  dataOffset = 0;
  capLen = 0;
  wireLen = 0;
  linkType = 0;
  interfaceId = 0;
  realSec = 0;
  realNsec = 0;
  timeNs = 0;

  private detected: CaptureFormat | undefined;

  private state = State.Start;
  private error = "";
  private readonly maxCapLen: number;
  private littleEndian = true;
  private nanoPcap = false;
  private pcapLinkType = 0;
  private interfaces: InterfaceInfo[] = [];

  private chunk: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** Bytes of a record split across chunks, at [carryStart, carryEnd). */
  private carry: Uint8Array = new Uint8Array(0);
  private carryStart = 0;
  private carryEnd = 0;
  /** How many bytes at the end of the carry were copied from the current chunk (and can be given back). */
  private carriedFromChunk = 0;
  /** Bytes still to pass over (the body of a block that carries no frame). */
  private skip = 0;
  /** Length of the block being skipped (to count a cut-short one at the end). */
  private skipBlockLen = 0;
  private frameReady = false;

  private baseSec = -1;
  private lastTimeNs = 0;

  private readonly counters: CaptureReaderStats = {
    packets: 0,
    malformed: 0,
    skippedBlocks: 0,
    skippedBytes: 0,
    truncatedBytes: 0,
    sections: 0,
    interfaces: 0,
    bufferedBytes: 0,
  };

  constructor(options: CaptureReaderOptions = {}) {
    this.maxCapLen = Math.min(options.maxCapLen ?? MAX_CAPLEN, MAX_CAPLEN);
  }

  /** Reads a whole capture held in memory. */
  static fromBytes(bytes: Uint8Array, options?: CaptureReaderOptions): CaptureFileReader {
    const reader = new CaptureFileReader(options);
    reader.push(bytes);
    return reader;
  }

  /** Detected format, once the first 4 bytes are in. */
  get format(): CaptureFormat | undefined {
    return this.detected;
  }

  /** `ok: false` once the first bytes show the input is not a capture file. */
  get status(): CaptureStatus {
    return this.state === State.Failed ? { ok: false, error: this.error } : { ok: true };
  }

  stats(): CaptureReaderStats {
    return {
      ...this.counters,
      interfaces: this.detected === "pcap" ? 1 : this.interfaces.length,
      bufferedBytes: this.carry.length,
    };
  }

  /** The pcapng if_name of an interface of the current section (undefined for classic pcap or when absent). */
  interfaceName(id: number): string | undefined {
    return this.interfaces[id]?.name;
  }

  /** Link type of an interface of the current section (the file's link type for classic pcap). */
  interfaceLinkType(id: number): number | undefined {
    if (this.detected === "pcap") return id === 0 ? this.pcapLinkType : undefined;
    return this.interfaces[id]?.linkType;
  }

  /** Adds the next chunk. The reader keeps a reference to it until it has been iterated. */
  push(chunk: Uint8Array): CaptureStatus {
    if (this.pos < this.chunk.length) {
      // the caller pushed before draining: keep the unread rest (a copy) ahead of the new chunk
      this.appendCarry(this.chunk, this.pos, this.chunk.length);
    }
    this.chunk = chunk;
    this.pos = 0;
    this.carriedFromChunk = 0;
    return this.status;
  }

  /** Marks the end of input: what is left unread is an incomplete record (call after next() returned false). */
  end(): CaptureStatus {
    let left = this.carryEnd - this.carryStart + (this.chunk.length - this.pos);
    if (this.state === State.PcapStopped || this.state === State.Resync) this.counters.skippedBytes += left;
    else if (this.state !== State.Failed) {
      if (this.skip > 0) left += this.skipBlockLen - this.skip; // a skipped block cut short
      this.counters.truncatedBytes += left;
    }
    this.skip = 0;
    this.carryStart = this.carryEnd = 0;
    this.pos = this.chunk.length;
    return this.status;
  }

  next(): boolean {
    this.frameReady = false;
    for (;;) {
      if (this.skip > 0) {
        const fromCarry = Math.min(this.skip, this.carryEnd - this.carryStart);
        this.carryStart += fromCarry;
        const fromChunk = Math.min(this.skip - fromCarry, this.chunk.length - this.pos);
        this.pos += fromChunk;
        this.skip -= fromCarry + fromChunk;
        if (this.skip > 0) return false;
        this.settleCarry();
      }
      if (this.carryEnd > this.carryStart) {
        const r = this.step(this.carry, this.carryStart, this.carryEnd);
        if (r < 0) {
          // stitch: copy just the missing bytes of this record from the chunk
          const have = this.carryEnd - this.carryStart;
          const take = Math.min(-r - have, this.chunk.length - this.pos);
          if (take <= 0) return false;
          this.appendCarry(this.chunk, this.pos, this.pos + take);
          this.carriedFromChunk += take;
          this.pos += take;
          continue;
        }
        this.carryStart += r;
        this.settleCarry();
      } else {
        const r = this.step(this.chunk, this.pos, this.chunk.length);
        if (r < 0) {
          if (this.state !== State.Failed) {
            this.appendCarry(this.chunk, this.pos, this.chunk.length);
            this.carriedFromChunk = this.chunk.length - this.pos;
          }
          this.pos = this.chunk.length;
          return false;
        }
        this.pos += r;
      }
      if (this.frameReady) return true;
      if (this.state === State.Failed) return false;
    }
  }

  /** After consuming from the carry: reset it when empty, or hand bytes that came from the chunk back to it. */
  private settleCarry(): void {
    const left = this.carryEnd - this.carryStart;
    if (left === 0) {
      this.carryStart = this.carryEnd = 0;
      this.carriedFromChunk = 0;
    } else if (left <= this.carriedFromChunk) {
      this.pos -= left;
      this.carryStart = this.carryEnd = 0;
      this.carriedFromChunk = 0;
    }
  }

  private appendCarry(src: Uint8Array, start: number, end: number): void {
    const n = end - start;
    if (n <= 0) return;
    const have = this.carryEnd - this.carryStart;
    if (this.carryEnd + n > this.carry.length) {
      if (have + n <= this.carry.length) {
        this.carry.copyWithin(0, this.carryStart, this.carryEnd);
      } else {
        const grown = new Uint8Array(Math.max(have + n, this.carry.length * 2, 256));
        grown.set(this.carry.subarray(this.carryStart, this.carryEnd));
        this.carry = grown;
      }
      this.carryStart = 0;
      this.carryEnd = have;
    }
    this.carry.set(src.subarray(start, end), this.carryEnd);
    this.carryEnd += n;
  }

  /**
   * Consumes one unit at `off` (a header, a record or block, or skipped bytes). Returns the bytes
   * consumed (>= 0, with `frameReady` set when it was a frame), or minus the bytes needed from `off`.
   */
  private step(b: Uint8Array, off: number, end: number): number {
    const avail = end - off;
    switch (this.state) {
      case State.Start:
        return this.readFileStart(b, off, avail);
      case State.PcapRecord:
        return this.readPcapRecord(b, off, avail);
      case State.Block:
        return this.readBlock(b, off, avail);
      case State.Resync:
        return this.scanForSection(b, off, end);
      case State.PcapStopped:
        this.counters.skippedBytes += avail;
        return avail > 0 ? avail : -1;
      default:
        return -1;
    }
  }

  private readFileStart(b: Uint8Array, off: number, avail: number): number {
    if (avail < 4) return -4;
    const magic = u32le(b, off);
    if (magic === Magic.SectionHeader) {
      this.detected = "pcapng";
      this.state = State.Block;
      return 0;
    }
    let le: boolean;
    let nano: boolean;
    if (magic === Magic.PcapMicro) [le, nano] = [true, false];
    else if (magic === Magic.PcapNano) [le, nano] = [true, true];
    else if (magic === Magic.PcapMicroSwapped) [le, nano] = [false, false];
    else if (magic === Magic.PcapNanoSwapped) [le, nano] = [false, true];
    else {
      this.state = State.Failed;
      this.error = `not a pcap or pcapng file: magic 0x${u32be(b, off).toString(16).padStart(8, "0")}`;
      return -1;
    }
    if (avail < 24) return -24;
    this.detected = "pcap";
    this.littleEndian = le;
    this.nanoPcap = nano;
    this.pcapLinkType = (le ? u32le(b, off + 20) : u32be(b, off + 20)) & 0xffff;
    this.counters.sections = 1;
    this.state = State.PcapRecord;
    return 24;
  }

  private readPcapRecord(b: Uint8Array, off: number, avail: number): number {
    if (avail < 16) return -16;
    const le = this.littleEndian;
    const capLen = le ? u32le(b, off + 8) : u32be(b, off + 8);
    if (capLen > this.maxCapLen) {
      // the record headers cannot be trusted from here on: stop this section
      this.counters.malformed++;
      this.state = State.PcapStopped;
      return 0;
    }
    if (avail < 16 + capLen) return -(16 + capLen);
    let sec = le ? u32le(b, off) : u32be(b, off);
    let frac = le ? u32le(b, off + 4) : u32be(b, off + 4);
    const perSec = this.nanoPcap ? 1_000_000_000 : 1_000_000;
    if (frac >= perSec) {
      sec += Math.floor(frac / perSec);
      frac %= perSec;
    }
    const wireLen = le ? u32le(b, off + 12) : u32be(b, off + 12);
    this.setFrame(b, off + 16, capLen, wireLen, this.pcapLinkType, 0);
    this.setTime(sec, this.nanoPcap ? frac : frac * 1000);
    return 16 + capLen;
  }

  private readBlock(b: Uint8Array, off: number, avail: number): number {
    if (avail < 8) return -8;
    if (u32le(b, off) === Magic.SectionHeader) return this.readSectionHeader(b, off, avail);
    const le = this.littleEndian;
    const type = le ? u32le(b, off) : u32be(b, off);
    const len = le ? u32le(b, off + 4) : u32be(b, off + 4);
    if (len < 12 || len % 4 !== 0 || len > MAX_SKIPPED_BLOCK) return this.lostTrack();
    const holdsFrame =
      type === BlockType.EnhancedPacket || type === BlockType.SimplePacket || type === BlockType.ObsoletePacket;
    if (!holdsFrame && type !== BlockType.InterfaceDescription) {
      this.counters.skippedBlocks++;
      return this.skipRest(len, 8);
    }
    if (len > MAX_BUFFERED_BLOCK) {
      // too big to hold: a frame beyond MAX_CAPLEN, or an interface with absurd options
      this.counters.malformed++;
      if (type === BlockType.InterfaceDescription) {
        if (avail < 12) return -12;
        this.addInterface(le ? u16le(b, off + 8) : u16be(b, off + 8), 0);
      }
      return this.skipRest(len, 8);
    }
    if (avail < len) return -len;
    if ((le ? u32le(b, off + len - 4) : u32be(b, off + len - 4)) !== len) {
      this.counters.malformed++;
      return len;
    }
    switch (type) {
      case BlockType.InterfaceDescription:
        this.readInterface(b, off, len);
        break;
      case BlockType.EnhancedPacket:
        this.readPacketBlock(b, off, len, le ? u32le(b, off + 8) : u32be(b, off + 8), 12);
        break;
      case BlockType.ObsoletePacket:
        this.readPacketBlock(b, off, len, le ? u16le(b, off + 8) : u16be(b, off + 8), 12);
        break;
      default:
        this.readSimplePacket(b, off, len);
    }
    return len;
  }

  private readSectionHeader(b: Uint8Array, off: number, avail: number): number {
    if (avail < 12) return -12;
    const order = u32le(b, off + 8);
    if (order !== Magic.ByteOrder && order !== Magic.ByteOrderSwapped) return this.lostTrack();
    const le = order === Magic.ByteOrder;
    const len = le ? u32le(b, off + 4) : u32be(b, off + 4);
    if (len < 28 || len % 4 !== 0 || len > MAX_SKIPPED_BLOCK) return this.lostTrack();
    this.littleEndian = le;
    this.interfaces = [];
    this.counters.sections++;
    return this.skipRest(len, 12); // version, section length and options: nothing the frames need
  }

  private skipRest(blockLen: number, consumed: number): number {
    this.skip = blockLen - consumed;
    this.skipBlockLen = blockLen;
    return consumed;
  }

  /** A block length that cannot be right: count it and look for the next section header. */
  private lostTrack(): number {
    this.counters.malformed++;
    this.state = State.Resync;
    this.counters.skippedBytes += 4;
    return 4;
  }

  private scanForSection(b: Uint8Array, off: number, end: number): number {
    for (let i = off; i + 12 <= end; i++) {
      if (b[i] === 0x0a && b[i + 1] === 0x0d && b[i + 2] === 0x0d && b[i + 3] === 0x0a) {
        const order = u32le(b, i + 8);
        if (order === Magic.ByteOrder || order === Magic.ByteOrderSwapped) {
          this.state = State.Block;
          this.counters.skippedBytes += i - off;
          return i - off;
        }
      }
    }
    const passed = end - off - 11;
    if (passed <= 0) return -12;
    this.counters.skippedBytes += passed;
    return passed;
  }

  private addInterface(linkType: number, snapLen: number): InterfaceInfo | undefined {
    if (this.interfaces.length >= MAX_INTERFACES) {
      this.counters.malformed++;
      return undefined;
    }
    const info: InterfaceInfo = {
      linkType,
      snapLen,
      name: undefined,
      unitsPerSec: 1_000_000,
      decimalExponent: 6,
      offsetSec: 0,
    };
    this.interfaces.push(info);
    return info;
  }

  private readInterface(b: Uint8Array, off: number, len: number): void {
    const le = this.littleEndian;
    if (len < 20) {
      this.counters.malformed++;
      return;
    }
    const info = this.addInterface(
      le ? u16le(b, off + 8) : u16be(b, off + 8),
      le ? u32le(b, off + 12) : u32be(b, off + 12),
    );
    if (!info) return;
    const optEnd = off + len - 4;
    for (let o = off + 16; o + 4 <= optEnd; ) {
      const code = le ? u16le(b, o) : u16be(b, o);
      const n = le ? u16le(b, o + 2) : u16be(b, o + 2);
      if (code === OptionCode.EndOfOptions) break;
      const v = o + 4;
      if (v + n > optEnd) {
        this.counters.malformed++;
        break;
      }
      if (code === OptionCode.IfName) {
        let stop = v;
        while (stop < v + n && b[stop] !== 0) stop++;
        info.name = utf8.decode(b.subarray(v, stop));
      } else if (code === OptionCode.IfTsResol && n >= 1) {
        const r = b[v] as number;
        const exp = r & 0x7f;
        if (r & 0x80 ? exp > 62 : exp > 18) this.counters.malformed++;
        else if (r & 0x80) {
          info.unitsPerSec = 2 ** exp;
          info.decimalExponent = -1;
        } else {
          info.unitsPerSec = 10 ** exp;
          info.decimalExponent = exp;
        }
      } else if (code === OptionCode.IfTsOffset && n >= 8) {
        const hi = le ? u32le(b, v + 4) : u32be(b, v);
        const lo = le ? u32le(b, v) : u32be(b, v + 4);
        info.offsetSec = hi >= 0x80000000 ? (hi - TWO_32) * TWO_32 + lo : hi * TWO_32 + lo;
      }
      o = v + ((n + 3) & ~3);
    }
  }

  /** EPB (interface id u32) and OPB (interface id u16, drops u16): timestamp, caplen, origlen, data. */
  private readPacketBlock(b: Uint8Array, off: number, len: number, ifId: number, fieldsAt: number): void {
    const le = this.littleEndian;
    const info = this.interfaces[ifId];
    const p = off + fieldsAt;
    const capLen = le ? u32le(b, p + 8) : u32be(b, p + 8);
    if (!info || capLen > this.maxCapLen || fieldsAt + 16 + capLen + 4 > len) {
      this.counters.malformed++;
      return;
    }
    const hi = le ? u32le(b, p) : u32be(b, p);
    const lo = le ? u32le(b, p + 4) : u32be(b, p + 4);
    this.setFrame(b, p + 16, capLen, le ? u32le(b, p + 12) : u32be(b, p + 12), info.linkType, ifId);
    this.setUnitsTime(hi, lo, info);
  }

  /** SPB: interface 0, no timestamp (the previous frame's time is kept). */
  private readSimplePacket(b: Uint8Array, off: number, len: number): void {
    const info = this.interfaces[0];
    if (!info || len < 16) {
      this.counters.malformed++;
      return;
    }
    const wireLen = this.littleEndian ? u32le(b, off + 8) : u32be(b, off + 8);
    let capLen = Math.min(wireLen, len - 16);
    if (info.snapLen > 0 && capLen > info.snapLen) capLen = info.snapLen;
    if (capLen > this.maxCapLen) {
      this.counters.malformed++;
      return;
    }
    this.setFrame(b, off + 12, capLen, wireLen, info.linkType, 0);
    if (this.baseSec >= 0) this.setTime(this.realSec, this.realNsec);
    else this.realSec = this.realNsec = this.timeNs = 0; // no time seen yet: keep the base for a later timestamp
  }

  private setFrame(b: Uint8Array, dataOffset: number, capLen: number, wireLen: number, linkType: number, ifId: number) {
    this.buffer = b;
    this.dataOffset = dataOffset;
    this.capLen = capLen;
    this.wireLen = Math.max(wireLen, capLen);
    this.linkType = linkType;
    this.interfaceId = ifId;
    this.frameReady = true;
    this.counters.packets++;
  }

  private setTime(sec: number, nsec: number): void {
    this.realSec = sec;
    this.realNsec = nsec;
    if (this.baseSec < 0) this.baseSec = sec;
    let t = (sec - this.baseSec) * 1e9 + nsec;
    if (!(t >= this.lastTimeNs)) t = this.lastTimeNs; // never backwards (also catches NaN)
    this.lastTimeNs = t;
    this.timeNs = t;
  }

  /** A 64-bit count of if_tsresol units (as two u32 halves) to seconds + ns, exactly, without BigInt. */
  private setUnitsTime(hi: number, lo: number, info: InterfaceInfo): void {
    const units = info.unitsPerSec;
    let sec: number;
    let rem: number;
    if (hi < 0x200000) {
      const v = hi * TWO_32 + lo; // < 2^53: exact
      sec = Math.floor(v / units);
      rem = v - sec * units;
    } else if (units <= 2 ** 36) {
      // long division in base 2^16: every partial value stays below 2^53
      sec = 0;
      rem = 0;
      const digits = [hi >>> 16, hi & 0xffff, lo >>> 16, lo & 0xffff];
      for (const d of digits) {
        const x = rem * 65536 + d;
        const q = Math.floor(x / units);
        rem = x - q * units;
        sec = sec * 65536 + q;
      }
    } else {
      const v = hi * TWO_32 + lo; // approximate for resolutions finer than 2^-36 s
      sec = Math.floor(v / units);
      rem = Math.min(Math.max(v - sec * units, 0), units - 1);
    }
    if (rem < 0) {
      sec -= 1;
      rem += units;
    } else if (rem >= units) {
      sec += 1;
      rem -= units;
    }
    let nsec: number;
    const e = info.decimalExponent;
    if (e >= 0 && e <= 9) nsec = rem * 10 ** (9 - e);
    else if (e > 9) nsec = Math.floor(rem / 10 ** (e - 9));
    else nsec = rem * 1e9 < TWO_53 ? Math.floor((rem * 1e9) / units) : Math.floor((rem / units) * 1e9);
    this.setTime(sec + info.offsetSec, nsec);
  }
}

export type CaptureFileResult = ({ ok: true } | { ok: false; error: string }) & { stats: CaptureReaderStats };

/**
 * Streams a capture file in 1 MiB chunks (bounded memory for any file size): `onFrames` is called
 * after each chunk with the reader positioned before its first new frame; it iterates with `next()`.
 */
export function readCaptureFile(
  path: string,
  onFrames: (frames: CaptureFileReader) => void,
  options: CaptureReaderOptions & { chunkBytes?: number } = {},
): CaptureFileResult {
  const reader = new CaptureFileReader(options);
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  // two buffers in turn: the previous chunk stays intact while the next one is read
  const buffers = [new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)];
  const fd = openSync(path, "r");
  try {
    for (let turn = 0; ; turn ^= 1) {
      const buf = buffers[turn] as Uint8Array;
      const n = readSync(fd, buf, 0, chunkBytes, null);
      if (n === 0) break;
      const status = reader.push(buf.subarray(0, n));
      if (!status.ok) return { ...status, stats: reader.stats() };
      onFrames(reader);
      if (!reader.status.ok) break;
    }
  } finally {
    closeSync(fd);
  }
  const status = reader.end();
  return { ...status, stats: reader.stats() };
}
