import { ByteBuffer } from "./byte-buffer.js";

/**
 * A protobuf writer over one growable buffer that is reused from request to request: one pass,
 * lengths back-patched (one byte reserved, the body moved in the rare case it needs more), keys of
 * attributes encoded once and copied after that. Byte for byte what @opentelemetry/otlp-transformer's
 * writer produces for the same fields.
 */
export class ProtoWriter extends ByteBuffer {
  private view: DataView;

  constructor(initialSize = 64 * 1024) {
    super(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  protected override grow(n: number): void {
    super.grow(n);
    this.view = new DataView(this.buf.buffer);
  }

  /** A tag (field number << 3 | wire type); every tag Kalman writes fits in two bytes. */
  tag(field: number, wire: number): void {
    this.uint32((field << 3) | wire);
  }

  /** An unsigned 32-bit varint. */
  uint32(value: number): void {
    this.ensure(5);
    const b = this.buf;
    let v = value >>> 0;
    while (v > 0x7f) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[this.pos++] = v;
  }

  /** An int64 varint from a number (negative: two's complement, ten bytes). */
  int64(value: number): void {
    if (value >= 0 && value <= 0xffffffff) {
      this.uint32(value);
      return;
    }
    this.ensure(10);
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = (abs / 0x100000000) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    const b = this.buf;
    while (high > 0 || low > 0x7f) {
      b[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    b[this.pos++] = low & 0x7f;
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, value >>> 0, true);
    this.pos += 4;
  }

  double(value: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
  }

  /** [seconds, nanoseconds] as fixed64 nanoseconds since the epoch, exact, without BigInt. */
  hrTime(seconds: number, nanos: number): void {
    const lower16 = (seconds & 0xffff) * 1e9;
    const upper = ((seconds / 0x10000) >>> 0) * 1e9;
    const lowWithCarry = (lower16 >>> 0) + (((upper & 0xffff) * 0x10000) >>> 0) + nanos;
    const high =
      (Math.floor(lower16 / 0x100000000) + ((upper / 0x10000) >>> 0) + Math.floor(lowWithCarry / 0x100000000)) >>> 0;
    this.ensure(8);
    this.view.setUint32(this.pos, lowWithCarry >>> 0, true);
    this.view.setUint32(this.pos + 4, high, true);
    this.pos += 8;
  }

  /** A length-prefixed UTF-8 string (ASCII copied char by char, the rest through TextEncoder). */
  string(s: string): void {
    const len = s.length;
    let ascii = true;
    for (let i = 0; i < len; i++) {
      if (s.charCodeAt(i) > 127) {
        ascii = false;
        break;
      }
    }
    if (!ascii) {
      this.bytes(utf8.encode(s));
      return;
    }
    this.uint32(len);
    this.ensure(len);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < len; i++) b[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Length-prefixed bytes. */
  bytes(data: Uint8Array): void {
    this.uint32(data.length);
    this.raw(data);
  }

  /** A lowercase/uppercase hex id (trace or span id) as length-prefixed bytes. */
  hexId(hex: string): void {
    const n = hex.length >>> 1;
    this.uint32(n);
    this.ensure(n);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) b[p++] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
    this.pos = p;
  }

  /** Reserves a one-byte length; returns where the message starts. Close it with end(). */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Writes the length of the message begun at `start`, moving its body if the length needs more bytes. */
  end(start: number): void {
    const len = this.pos - start - 1;
    if (len < 0x80) {
      this.buf[start] = len;
      return;
    }
    const size = len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    this.ensure(size - 1);
    const b = this.buf;
    b.copyWithin(start + size, start + 1, this.pos);
    this.pos += size - 1;
    let v = len;
    let p = start;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p] = v;
  }
}

const utf8 = new TextEncoder();

/** Value of a hex digit (like Buffer.from(hex, "hex") / hexToBinary: anything else reads as 0). */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 0;
}
