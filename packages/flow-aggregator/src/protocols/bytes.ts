// Small byte helpers shared by the parsers (no string decoding unless asked).

const utf8 = new TextDecoder("utf-8", { fatal: false });

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** Latin-1 text of a byte range (1 byte = 1 char, never throws): a JS loop for a few bytes, native beyond. */
export function ascii(b: Uint8Array, start = 0, end = b.length): string {
  const n = end - start;
  if (n > 8) return latin1Slice.call(b, start, end);
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i] as number);
  return s;
}

/**
 * Remembers the last string decoded per slot and returns it again when the bytes are the same
 * (hosts, paths and commands repeat on keep-alive connections): no new string, no garbage.
 */
export class StringCache {
  private readonly bytes: Uint8Array[] = [];
  private readonly strings: string[] = [];

  text(slot: number, b: Uint8Array, start: number, end: number): string {
    const n = end - start;
    const prev = this.bytes[slot];
    if (prev && prev.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (prev[i] !== b[start + i]) {
          same = false;
          break;
        }
      }
      if (same) return this.strings[slot] as string;
    }
    const s = ascii(b, start, end);
    if (n <= 256) {
      // a copy: Buffer#slice would be a view into the receiver's reused batch buffer
      this.bytes[slot] = copyBytes(b, start, end);
      this.strings[slot] = s;
    }
    return s;
  }
}

/** UTF-8 text of a byte range (invalid sequences become U+FFFD). */
export function utf8Text(b: Uint8Array, start = 0, end = b.length): string {
  return utf8.decode(b.subarray(start, end));
}

/** Index of `needle` (a short ASCII marker) in b from `from`, or -1. */
export function indexOf(b: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0];
  outer: for (let i = from; i <= b.length - needle.length; i++) {
    if (b[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** A copy of b[start, end) that owns its memory, whether b is a Uint8Array or a Buffer (whose slice is a view). */
export function copyBytes(b: Uint8Array, start = 0, end = b.length): Uint8Array {
  return Uint8Array.prototype.slice.call(b, start, end);
}

/** Bytes of an ASCII string. */
export function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

const NO_BYTES = new Uint8Array(0);
/** Emptied buffers larger than this are released. */
const RELEASE_ABOVE = 16 * 1024;

/**
 * A bounded per-direction byte buffer for incremental parsers: appends chunks, exposes the
 * unconsumed bytes as one view, and refuses to grow past `limit` (the caller resynchronises).
 */
export class ByteQueue {
  /** Allocated on the first push that must buffer: most connections never need one. */
  private buf: Uint8Array = NO_BYTES;
  private start = 0;
  private end = 0;

  constructor(private readonly limit: number) {}

  get length(): number {
    return this.end - this.start;
  }

  /** The unconsumed bytes (valid until the next push/consume). */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /** Appends; returns false (and appends nothing) if that would exceed the limit. */
  push(data: Uint8Array): boolean {
    const len = this.end - this.start;
    if (len + data.length > this.limit) return false;
    if (this.end + data.length > this.buf.length) {
      if (len + data.length <= this.buf.length && this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const next = new Uint8Array(Math.min(this.limit, Math.max(this.buf.length * 2, len + data.length, 256)));
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.end = len;
      this.start = 0;
    }
    this.buf.set(data, this.end);
    this.end += data.length;
    return true;
  }

  consume(n: number): void {
    this.start += Math.min(n, this.end - this.start);
    if (this.start === this.end) {
      this.start = this.end = 0;
      if (this.buf.length > RELEASE_ABOVE) this.buf = NO_BYTES; // an idle connection keeps no big buffer
    }
  }

  clear(): void {
    this.start = this.end = 0;
  }
}
