/**
 * One growable byte buffer reused from request to request: what the JSON and protobuf writers
 * share (reset, grow, copy pre-encoded bytes, hand out a copy of what was written).
 */
export class ByteBuffer {
  buf: Uint8Array;
  pos = 0;

  constructor(initialSize = 64 * 1024) {
    this.buf = new Uint8Array(initialSize);
  }

  /** Starts over at the beginning of the buffer. */
  reset(): void {
    this.pos = 0;
  }

  /** A copy of what was written (the buffer itself is reused). */
  finish(): Uint8Array {
    // not zero-filled first: every byte is copied over
    const out = Buffer.allocUnsafe(this.pos);
    out.set(this.buf.subarray(0, this.pos));
    return out;
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  /** Bytes as they are (pre-encoded literals, keys and fields). */
  raw(data: Uint8Array): void {
    const n = data.length;
    this.ensure(n);
    const b = this.buf;
    // set() is a memcpy with a fixed call cost (~17 ns here); a JS byte loop costs ~2.3 ns a byte
    if (n > 8) b.set(data, this.pos);
    else {
      let p = this.pos;
      for (let i = 0; i < n; i++) b[p++] = data[i] as number;
    }
    this.pos += n;
  }

  protected grow(n: number): void {
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}
