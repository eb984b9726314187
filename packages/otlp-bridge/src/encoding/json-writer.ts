import { ByteBuffer } from "./byte-buffer.js";

/**
 * A JSON text writer over one growable byte buffer reused from request to request: literals
 * pre-encoded, strings copied as bytes (JSON.stringify only for strings that need escaping or are not
 * ASCII), so a request is built without intermediate strings. Output: the UTF-8 of what JSON.stringify
 * writes for the same values.
 */
export class JsonWriter extends ByteBuffer {
  /** One ASCII character (punctuation). */
  char(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  /** A string literal, quoted and escaped as JSON.stringify does. */
  string(s: string): void {
    const len = s.length;
    this.ensure(len + 2);
    const b = this.buf;
    let p = this.pos;
    b[p++] = 34;
    for (let i = 0; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c === 34 || c === 92 || c > 0x7e) {
        this.text(JSON.stringify(s));
        return;
      }
      b[p++] = c;
    }
    b[p++] = 34;
    this.pos = p;
  }

  /** A number as JSON.stringify writes it (non-finite: null). */
  number(n: number): void {
    if (Number.isInteger(n) && n >= 0 && n < 1e15) this.digits(n);
    else this.text(Number.isFinite(n) ? String(n) : "null");
  }

  /** A non-negative integer below 1e15, in decimal. */
  private digits(n: number): void {
    this.ensure(16);
    const b = this.buf;
    if (n < 10) {
      b[this.pos++] = 48 + n;
      return;
    }
    let len = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) len++;
    let p = this.pos + len;
    this.pos = p;
    let x = n;
    while (x >= 10) {
      const q = Math.floor(x / 10);
      b[--p] = 48 + (x - q * 10);
      x = q;
    }
    b[--p] = 48 + x;
  }

  /** A quoted decimal nanosecond timestamp from [seconds, nanoseconds] (seconds > 0, 0 <= ns < 1e9). */
  secondsAndNanos(sec: number, ns: number): void {
    this.char(34);
    this.digits(sec);
    this.ensure(9);
    const b = this.buf;
    let p = this.pos + 9;
    this.pos = p;
    let x = ns;
    for (let i = 0; i < 9; i++) {
      const q = Math.floor(x / 10);
      b[--p] = 48 + (x - q * 10);
      x = q;
    }
    this.char(34);
  }

  /** Any text, UTF-8 encoded as it is. */
  text(s: string): void {
    this.ensure(s.length * 3);
    this.pos += utf8.encodeInto(s, this.buf.subarray(this.pos)).written;
  }
}

const utf8 = new TextEncoder();

/** Pre-encodes a piece of JSON syntax for JsonWriter.raw(). */
export function literal(s: string): Uint8Array {
  return utf8.encode(s);
}
