// Classic pcap output (nanosecond magic, one link type per file), into memory or a file written in ~64 KiB pieces.

import { closeSync, openSync, writeSync } from "node:fs";

const PCAP_NANO_MAGIC = 0xa1b23c4d;
const FILE_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const FLUSH_BYTES = 64 * 1024;

export interface PcapWriterOptions {
  /** pcap LINKTYPE of every frame in the file (1 Ethernet, 113 Linux SLL, 276 Linux SLL2, 101 raw IP ...). */
  linkType: number;
  /** Frames longer than this are cut (the wire length is kept); default 262144. */
  snapLen?: number;
}

export interface PcapWriterStats {
  packets: number;
  /** Frames cut at snapLen. */
  truncated: number;
  /** Bytes of pcap output so far (header included). */
  bytes: number;
}

/**
 * Writes a classic pcap file (nanosecond timestamps, host-independent little-endian layout).
 * `PcapWriter.toMemory()` collects the bytes (`bytes()`), `PcapWriter.toFile(path)` writes them out
 * with one fs write per ~64 KiB; `close()` flushes (and closes the file).
 */
export class PcapWriter {
  readonly linkType: number;
  readonly snapLen: number;
  private buf: Uint8Array;
  private view: DataView;
  private used = 0;
  private readonly fd: number | undefined;
  private closed = false;
  private readonly counters: PcapWriterStats = { packets: 0, truncated: 0, bytes: 0 };

  private constructor(options: PcapWriterOptions, fd: number | undefined) {
    const { linkType, snapLen = 262144 } = options;
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
      throw new Error(`PcapWriter: linkType must be an integer 0..65535 (a pcap LINKTYPE), got ${linkType}`);
    }
    if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > 0x7fffffff) {
      throw new Error(`PcapWriter: snapLen must be a positive integer, got ${snapLen}`);
    }
    this.linkType = linkType;
    this.snapLen = snapLen;
    this.fd = fd;
    this.buf = new Uint8Array(FLUSH_BYTES + RECORD_HEADER_BYTES);
    this.view = new DataView(this.buf.buffer);
    const v = this.view;
    v.setUint32(0, PCAP_NANO_MAGIC, true);
    v.setUint16(4, 2, true);
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, snapLen, true);
    v.setUint32(20, linkType, true);
    this.used = FILE_HEADER_BYTES;
    this.counters.bytes = FILE_HEADER_BYTES;
  }

  /** A writer whose output stays in memory (`bytes()`). */
  static toMemory(options: PcapWriterOptions): PcapWriter {
    return new PcapWriter(options, undefined);
  }

  /** A writer to a new file at `path` (created or truncated). */
  static toFile(path: string, options: PcapWriterOptions): PcapWriter {
    return new PcapWriter(options, openSync(path, "w"));
  }

  stats(): PcapWriterStats {
    return { ...this.counters };
  }

  /** Appends one frame captured at realSec + realNsec ns, which was wireLen bytes on the wire. */
  write(realSec: number, realNsec: number, frame: Uint8Array, wireLen = frame.length): void {
    if (this.closed) throw new Error("PcapWriter: write after close()");
    const capLen = Math.min(frame.length, this.snapLen);
    if (capLen < frame.length) this.counters.truncated++;
    const need = RECORD_HEADER_BYTES + capLen;
    this.reserve(need);
    const v = this.view;
    const o = this.used;
    v.setUint32(o, realSec >>> 0, true);
    v.setUint32(o + 4, realNsec >>> 0, true);
    v.setUint32(o + 8, capLen, true);
    v.setUint32(o + 12, wireLen > capLen ? wireLen >>> 0 : capLen, true);
    if (this.fd !== undefined && this.used + need > this.buf.length) {
      // a frame bigger than the buffer: header from the buffer, frame straight to the file
      this.used += RECORD_HEADER_BYTES;
      this.flush();
      writeAll(this.fd, frame.subarray(0, capLen));
    } else {
      this.buf.set(capLen === frame.length ? frame : frame.subarray(0, capLen), o + RECORD_HEADER_BYTES);
      this.used += need;
    }
    this.counters.packets++;
    this.counters.bytes += need;
    if (this.fd !== undefined && this.used >= FLUSH_BYTES) this.flush();
  }

  /** The pcap bytes written so far (memory writers only; a view, valid until the next write). */
  bytes(): Uint8Array {
    if (this.fd !== undefined) throw new Error("PcapWriter: bytes() is for toMemory() writers; this one writes a file");
    return this.buf.subarray(0, this.used);
  }

  /** Flushes buffered bytes to the file and closes it (memory writers: stops further writes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd !== undefined) {
      try {
        this.flush();
      } finally {
        closeSync(this.fd);
      }
    }
  }

  private reserve(n: number): void {
    if (this.fd !== undefined) {
      if (this.used + n > this.buf.length) this.flush(); // then a frame beyond the buffer goes out directly
      return;
    }
    if (this.used + n <= this.buf.length) return;
    const grown = new Uint8Array(Math.max(this.used + n, this.buf.length * 2));
    grown.set(this.buf.subarray(0, this.used));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  private flush(): void {
    if (this.fd === undefined || this.used === 0) return;
    writeAll(this.fd, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}
