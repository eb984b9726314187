/**
 * Fixed-capacity FIFO ring. push() evicts the oldest item when full and returns it, so the
 * caller can count the drop; memory never grows past the capacity.
 */
export class BoundedQueue<T> {
  private readonly buf: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be >= 1: ${capacity}`);
    this.buf = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Appends; returns true when the oldest item had to be dropped to make room. */
  push(item: T): boolean {
    const cap = this.capacity;
    if (this.count === cap) {
      this.buf[this.head] = item;
      this.head = (this.head + 1) % cap;
      return true;
    }
    this.buf[(this.head + this.count) % cap] = item;
    this.count++;
    return false;
  }

  /** Removes and returns up to n items from the front (oldest first). */
  take(n: number): T[] {
    const k = Math.min(n, this.count);
    const out = new Array<T>(k);
    const cap = this.capacity;
    for (let i = 0; i < k; i++) {
      out[i] = this.buf[this.head] as T;
      this.buf[this.head] = undefined;
      this.head = (this.head + 1) % cap;
    }
    this.count -= k;
    return out;
  }

  /**
   * Puts items back at the front (they are older than anything queued, e.g. a batch whose export
   * failed). When there is not room for all of them, the oldest of them are dropped: returns how many.
   */
  unshiftAll(items: readonly T[]): number {
    const cap = this.capacity;
    const room = cap - this.count;
    const dropped = Math.max(0, items.length - room);
    for (let i = items.length - 1; i >= dropped; i--) {
      this.head = (this.head - 1 + cap) % cap;
      this.buf[this.head] = items[i];
      this.count++;
    }
    return dropped;
  }

  clear(): number {
    const n = this.count;
    this.buf.fill(undefined);
    this.head = 0;
    this.count = 0;
    return n;
  }
}
