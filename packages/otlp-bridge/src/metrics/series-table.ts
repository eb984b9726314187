// Series keyed by a fixed number of int32 values (dictionary ids, ports, status codes): an
// open-addressing hash over preallocated typed arrays. No strings, no allocation per lookup.

/**
 * At most `maxSeries` distinct keys of `width` int32 values each; find() gives a key's series index
 * (0 .. maxSeries-1), adding it if there is room, else -1. Memory is allocated once.
 */
export class SeriesTable {
  private readonly keys: Int32Array;
  /** Open-addressing slots, two values each (one cache line holds both): series index + 1 (0 when empty), and the key's hash. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private count = 0;

  constructor(
    readonly width: number,
    readonly maxSeries: number,
  ) {
    this.keys = new Int32Array(width * maxSeries);
    let cap = 16;
    while (cap < maxSeries * 2) cap *= 2;
    this.slots = new Int32Array(2 * cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The series of `key` (its first `width` values), added when new and there is room; -1 when full. */
  find(key: Int32Array): number {
    const w = this.width;
    let h = 0x811c9dc5 | 0;
    for (let i = 0; i < w; i++) h = Math.imul(h ^ (key[i] as number), 0x01000193);
    h ^= h >>> 15;
    const keys = this.keys;
    const slots = this.slots;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const s = slots[2 * slot] as number;
      if (s === 0) break;
      if (slots[2 * slot + 1] !== h) continue;
      const series = s - 1;
      const base = series * w;
      let same = true;
      for (let i = 0; i < w; i++) {
        if (keys[base + i] !== key[i]) {
          same = false;
          break;
        }
      }
      if (same) return series;
    }
    if (this.count >= this.maxSeries) return -1;
    const series = this.count++;
    for (let i = 0; i < w; i++) keys[series * w + i] = key[i] as number;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      if (slots[2 * slot] === 0) {
        slots[2 * slot] = series + 1;
        slots[2 * slot + 1] = h;
        return series;
      }
    }
  }

  /** Value `i` of the key of `series`. */
  keyAt(series: number, i: number): number {
    return this.keys[series * this.width + i] as number;
  }
}
