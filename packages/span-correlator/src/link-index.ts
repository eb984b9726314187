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
  publish(key: string, target: LinkTarget, nowNs: number): void;
  lookup(key: string, nowNs: number): LinkTarget | undefined;
}

/** Key of a request on the wire: the same on the client's write and the server's read, through NAT. */
export function wireKey(tcpSeq: number, bytes: number): string {
  return `${tcpSeq}:${bytes}`;
}

interface Published {
  key: string;
  target: LinkTarget;
  expiresNs: number;
}

/**
 * Bounded in-process index with a TTL; the oldest entries go first. Publication order is kept in a
 * ring beside the map: expiring or evicting never iterates the Map, whose deleted slots V8 walks
 * again from the front on every iteration until it rehashes (that walk was most of the agent's
 * CPU above 10k requests/s).
 */
export class LocalLinkIndex implements LinkIndex {
  private readonly map = new Map<string, Published>();
  private readonly ring: Array<Published | undefined>;
  private head = 0;
  private count = 0;
  evicted = 0;

  constructor(
    private readonly maxEntries = 65536,
    private readonly ttlNs = 10e9,
  ) {
    this.ring = new Array<Published | undefined>(maxEntries).fill(undefined);
  }

  publish(key: string, target: LinkTarget, nowNs: number): void {
    while (this.count > 0 && (this.ring[this.head] as Published).expiresNs < nowNs) this.dropOldest();
    if (this.count === this.maxEntries) {
      this.dropOldest();
      this.evicted++;
    }
    const entry: Published = { key, target, expiresNs: nowNs + this.ttlNs };
    this.map.set(key, entry);
    this.ring[(this.head + this.count) % this.maxEntries] = entry;
    this.count++;
  }

  lookup(key: string, nowNs: number): LinkTarget | undefined {
    const e = this.map.get(key);
    if (!e || e.expiresNs < nowNs) return undefined;
    return e.target;
  }

  get size(): number {
    return this.map.size;
  }

  private dropOldest(): void {
    const e = this.ring[this.head] as Published;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.maxEntries;
    this.count--;
    // a key published again since points at its newer entry: keep that one
    if (this.map.get(e.key) === e) this.map.delete(e.key);
  }
}
