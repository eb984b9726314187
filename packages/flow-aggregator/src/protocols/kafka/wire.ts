// Bounds-checked big-endian reads over a byte range: a read past the end sets `ok` to false, never throws.

export class Cursor {
  b: Uint8Array = new Uint8Array(0);
  at = 0;
  end = 0;
  ok = true;

  reset(b: Uint8Array, at: number, end: number): this {
    this.b = b;
    this.at = at;
    this.end = end;
    this.ok = true;
    return this;
  }

  /** True when n more bytes are there; else marks the cursor failed. */
  has(n: number): boolean {
    if (this.ok && n >= 0 && this.at + n <= this.end) return true;
    this.ok = false;
    return false;
  }

  skip(n: number): void {
    if (this.has(n)) this.at += n;
  }

  i16(): number {
    if (!this.has(2)) return 0;
    const b = this.b;
    const v = (((b[this.at] as number) << 24) | ((b[this.at + 1] as number) << 16)) >> 16;
    this.at += 2;
    return v;
  }

  i32(): number {
    if (!this.has(4)) return 0;
    const v = readI32(this.b, this.at);
    this.at += 4;
    return v;
  }

  /** Unsigned varint of at most 5 bytes (compact lengths, tag counts). */
  uvarint(): number {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (!this.has(1)) return 0;
      const c = this.b[this.at++] as number;
      n += (c & 0x7f) * 2 ** shift;
      if (c < 0x80) return n;
    }
    this.ok = false;
    return 0;
  }

  /** Length of a (nullable) string: compact (varint + 1) or classic (int16); -1 for null. */
  stringLength(compact: boolean): number {
    return compact ? this.uvarint() - 1 : this.i16();
  }

  /** Element count of an array: compact (varint + 1) or classic (int32); -1 for null. */
  arrayLength(compact: boolean): number {
    return compact ? this.uvarint() - 1 : this.i32();
  }

  skipString(compact: boolean): void {
    const n = this.stringLength(compact);
    if (n > 0) this.skip(n);
  }

  /** Tagged fields of a flexible version: count, then (tag, size, bytes) each. */
  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count && this.ok; i++) {
      this.uvarint();
      this.skip(this.uvarint());
    }
  }
}

export function readI32(b: Uint8Array, at: number): number {
  return (
    ((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)
  );
}

export function readI16(b: Uint8Array, at: number): number {
  return (((b[at] as number) << 24) | ((b[at + 1] as number) << 16)) >> 16;
}
