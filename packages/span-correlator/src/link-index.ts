/** The trace context of a client span, as published for the server side to find. */
export interface LinkTarget {
  traceId: string;
  spanId: string;
}

/**
 * Maps a request's identity on the wire (TCP seq of its first byte + its size) to the client span
 * that wrote it. Local now; the same interface can live in a shared store (Redis) across hosts.
 */
export interface LinkIndex {
  publish(key: WireKey, target: LinkTarget, nowNs: number): void;
  lookup(key: WireKey, nowNs: number): LinkTarget | undefined;
  /** Entries dropped before their time because the index was full, never looked up (their server span, if one comes, has no caller). */
  readonly evicted?: number;
}

/** A request's identity on the wire: a number, or a string for requests of 2 MiB and more. */
export type WireKey = number | string;

const SIZE_SPACE = 2 ** 21;

/**
 * Key of a request on the wire: the same on the client's write and the server's read, through NAT.
 * TCP seq (32 bits) and size packed exactly into one number below 2^53 (no string to build and hash
 * per request); a request of 2 MiB or more gets a string key.
 */
export function wireKey(tcpSeq: number, bytes: number): WireKey {
  return bytes < SIZE_SPACE ? (tcpSeq >>> 0) * SIZE_SPACE + bytes : `${tcpSeq >>> 0}:${bytes}`;
}

/**
 * Bounded in-process index with a TTL, in two generations: publications go into the young map; when
 * it is ttl/2 old (or holds maxEntries/2) it becomes the old one and the previous old map is dropped
 * whole. An entry is found for at least ttl/2 and never after 1.5 × ttl. Nothing is deleted from a Map:
 * V8's maps slow down with deleted slots, and expiring entry by entry was most of the agent's CPU
 * above 10k requests/s.
 */
export class LocalLinkIndex implements LinkIndex {
  private young = new Map<WireKey, LinkTarget>();
  private old = new Map<WireKey, LinkTarget>();
  private youngSinceNs = Number.NEGATIVE_INFINITY;
  /** Lookups that found an entry, per generation: what a full generation held that was still wanted is size − hits. */
  private youngHits = 0;
  private oldHits = 0;
  /** Entries dropped before their time because a generation filled up, and never looked up. */
  evicted = 0;

  constructor(
    private readonly maxEntries = 65536,
    private readonly ttlNs = 10e9,
  ) {}

  publish(key: WireKey, target: LinkTarget, nowNs: number): void {
    if (nowNs - this.youngSinceNs >= this.ttlNs / 2) this.rotate(nowNs, nowNs - this.youngSinceNs >= this.ttlNs);
    else if (this.young.size >= this.maxEntries / 2) {
      this.evicted += Math.max(0, this.old.size - this.oldHits);
      this.rotate(nowNs, false);
    }
    this.young.set(key, target);
  }

  lookup(key: WireKey, nowNs: number): LinkTarget | undefined {
    if (nowNs - this.youngSinceNs >= this.ttlNs) return undefined; // both generations are past their time
    const hit = this.young.get(key);
    if (hit !== undefined) {
      this.youngHits++;
      return hit;
    }
    if (nowNs - this.youngSinceNs >= this.ttlNs / 2) return undefined;
    const older = this.old.get(key);
    if (older !== undefined) this.oldHits++;
    return older;
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  /** The young generation becomes the old one (or, after a whole TTL of silence, is dropped too). */
  private rotate(nowNs: number, dropBoth: boolean): void {
    this.old = dropBoth ? new Map() : this.young;
    this.oldHits = dropBoth ? 0 : this.youngHits;
    this.young = new Map();
    this.youngHits = 0;
    this.youngSinceNs = nowNs;
  }
}
