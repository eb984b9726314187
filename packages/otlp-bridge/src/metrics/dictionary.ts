// SmartEncoding: tag strings -> small integer ids. The metric hot path keys series by ids; strings
// come back only when a collection is exported.

/** The value every string past the dictionary's cap resolves to. */
export const OVERFLOW_TAG = "_other";

export interface TagDictionaryStats {
  /** Distinct strings held (at most maxEntries; id 0 is the overflow tag). */
  entries: number;
  /** intern() calls answered with the overflow id because the dictionary was full. */
  overflowed: number;
}

/**
 * An interning dictionary: intern(s) gives the same id for the same string, for the dictionary's
 * whole life (ids are never reused: series keyed by them stay valid). Bounded: past `maxEntries`
 * distinct strings, intern() answers OVERFLOW_ID (which resolves to "_other") and counts it.
 */
export class TagDictionary {
  static readonly OVERFLOW_ID = 0;
  private readonly ids = new Map<string, number>();
  private readonly strings: string[] = [OVERFLOW_TAG];
  private overflowed = 0;
  readonly maxEntries: number;

  constructor(maxEntries = 65_536) {
    this.maxEntries = Math.max(2, Math.floor(maxEntries));
    this.ids.set(OVERFLOW_TAG, TagDictionary.OVERFLOW_ID);
  }

  /** The id of `s`, added if new; OVERFLOW_ID when the dictionary is full. */
  intern(s: string): number {
    const id = this.ids.get(s);
    if (id !== undefined) return id;
    if (this.strings.length >= this.maxEntries) {
      this.overflowed++;
      return TagDictionary.OVERFLOW_ID;
    }
    const next = this.strings.length;
    this.strings.push(s);
    this.ids.set(s, next);
    return next;
  }

  /** The id of `s` if it is known, else -1 (adds nothing). */
  find(s: string): number {
    return this.ids.get(s) ?? -1;
  }

  /** The string of an id ("_other" for OVERFLOW_ID; undefined for an id never given out). */
  resolve(id: number): string | undefined {
    return this.strings[id];
  }

  get size(): number {
    return this.strings.length;
  }

  stats(): TagDictionaryStats {
    return { entries: this.strings.length, overflowed: this.overflowed };
  }
}
