interface Slot<V> {
  value: V;
  stamp: number;
}

/**
 * A Map bounded to `maxSize` entries that evicts the least recently set (or touched) one in O(1).
 *
 * The usual idiom, `map.delete(map.keys().next().value)`, is O(size) in V8: deleted entries stay in
 * the table until it is rehashed, and every new iterator walks them again from the front. At 65536
 * entries that is ~18 µs per eviction, so a full map turned every new connection, process or
 * request id into that cost. Here the order lives in a queue of (key, stamp) beside the map; stale
 * queue entries (keys set again or deleted) are skipped, and the queue is compacted when half stale.
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, Slot<V>>();
  private queueKeys: K[] = [];
  private queueStamps: number[] = [];
  private head = 0;
  private stamp = 0;

  constructor(
    readonly maxSize: number,
    /** Called for each entry evicted by set() (not for delete() or shift()). */
    private readonly onEvict?: (key: K, value: V) => void,
  ) {
    if (!(maxSize >= 1)) throw new RangeError(`BoundedMap maxSize must be >= 1, got ${maxSize}`);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  /** Inserts or replaces; the key becomes the newest. Evicts the oldest entries beyond maxSize. */
  set(key: K, value: V): this {
    const slot = this.map.get(key);
    if (slot) {
      slot.value = value;
      slot.stamp = this.enqueue(key);
      return this;
    }
    this.map.set(key, { value, stamp: this.enqueue(key) });
    while (this.map.size > this.maxSize) {
      const oldest = this.shift();
      if (!oldest) break;
      this.onEvict?.(oldest[0], oldest[1]);
    }
    return this;
  }

  /** Makes an existing key the newest (least likely to be evicted). */
  touch(key: K): void {
    const slot = this.map.get(key);
    if (slot) slot.stamp = this.enqueue(key);
  }

  delete(key: K): boolean {
    return this.map.delete(key);
  }

  /** The oldest entry, left in place. */
  oldest(): [K, V] | undefined {
    this.skipStale();
    if (this.head >= this.queueKeys.length) return undefined;
    const key = this.queueKeys[this.head] as K;
    return [key, (this.map.get(key) as Slot<V>).value];
  }

  /** Removes and returns the oldest entry. */
  shift(): [K, V] | undefined {
    const oldest = this.oldest();
    if (oldest) {
      this.map.delete(oldest[0]);
      this.head++;
    }
    return oldest;
  }

  clear(): void {
    this.map.clear();
    this.queueKeys = [];
    this.queueStamps = [];
    this.head = 0;
  }

  /** Keys in first-insertion order (not recency). */
  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  /** Values in first-insertion order (not recency). */
  *values(): IterableIterator<V> {
    for (const slot of this.map.values()) yield slot.value;
  }

  *entries(): IterableIterator<[K, V]> {
    for (const [k, slot] of this.map) yield [k, slot.value];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  private enqueue(key: K): number {
    const queued = this.queueKeys.length;
    // the consumed front, or stale entries, make up most of the queue: rebuild it from the live ones
    if ((this.head > 1024 && this.head * 2 > queued) || queued - this.head > 2 * this.map.size + 1024) this.compact();
    const stamp = ++this.stamp;
    this.queueKeys.push(key);
    this.queueStamps.push(stamp);
    return stamp;
  }

  /** Drops queue entries that no longer name a live entry at that stamp. */
  private skipStale(): void {
    while (this.head < this.queueKeys.length) {
      const slot = this.map.get(this.queueKeys[this.head] as K);
      if (slot && slot.stamp === this.queueStamps[this.head]) return;
      this.head++;
    }
    if (this.head > 0) {
      this.queueKeys = [];
      this.queueStamps = [];
      this.head = 0;
    }
  }

  /** Rebuilds the queue from its live entries, in order: O(queue), once per ~size updates. */
  private compact(): void {
    const keys: K[] = [];
    const stamps: number[] = [];
    for (let i = this.head; i < this.queueKeys.length; i++) {
      const key = this.queueKeys[i] as K;
      const slot = this.map.get(key);
      if (slot && slot.stamp === this.queueStamps[i]) {
        keys.push(key);
        stamps.push(slot.stamp);
      }
    }
    this.queueKeys = keys;
    this.queueStamps = stamps;
    this.head = 0;
  }
}
