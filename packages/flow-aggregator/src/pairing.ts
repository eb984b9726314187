import type { L7Message } from "./types.js";

/** A request waiting for its response; its endNs (when it was read or written) dates it for timeouts. */
export type PendingRequest = L7Message;

/**
 * Joins requests and responses on one connection: in order when messages carry no key,
 * by key otherwise. Bounded: past `limit` pending requests the oldest is dropped and counted.
 */
export class Pairing {
  private readonly fifo: PendingRequest[] = [];
  private fifoHead = 0;
  private readonly byKey = new Map<number, PendingRequest>();
  dropped = 0;

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.fifo.length - this.fifoHead + this.byKey.size;
  }

  add(message: L7Message): void {
    const pending = message;
    if (message.key === undefined) {
      if (this.fifo.length - this.fifoHead >= this.limit) {
        this.fifoHead++;
        this.dropped++;
      }
      this.fifo.push(pending);
      if (this.fifoHead > 64 && this.fifoHead * 2 > this.fifo.length) {
        this.fifo.splice(0, this.fifoHead);
        this.fifoHead = 0;
      }
      return;
    }
    if (!this.byKey.has(message.key) && this.byKey.size >= this.limit) {
      const oldest = this.byKey.keys().next().value as number;
      this.byKey.delete(oldest);
      this.dropped++;
    }
    this.byKey.set(message.key, pending);
  }

  /** The request a response answers, removed from the pending set; undefined if none. */
  take(response: L7Message): PendingRequest | undefined {
    if (response.key !== undefined) {
      const p = this.byKey.get(response.key);
      if (p) this.byKey.delete(response.key);
      return p;
    }
    if (this.fifoHead >= this.fifo.length) return undefined;
    return this.fifo[this.fifoHead++];
  }

  /** Removes and returns requests queued before `cutoffNs`. */
  expire(cutoffNs: number, out: PendingRequest[]): void {
    while (this.fifoHead < this.fifo.length && (this.fifo[this.fifoHead]?.endNs ?? Infinity) < cutoffNs) {
      out.push(this.fifo[this.fifoHead++] as PendingRequest);
    }
    for (const [k, p] of this.byKey) {
      if (p.endNs < cutoffNs) {
        out.push(p);
        this.byKey.delete(k);
      }
    }
  }

  /** Everything still pending (connection closed). */
  drainAll(out: PendingRequest[]): void {
    while (this.fifoHead < this.fifo.length) out.push(this.fifo[this.fifoHead++] as PendingRequest);
    this.fifo.length = 0;
    this.fifoHead = 0;
    for (const p of this.byKey.values()) out.push(p);
    this.byKey.clear();
  }
}
