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

/** Bounded in-process index with a TTL; the oldest entries go first. */
export class LocalLinkIndex implements LinkIndex {
  private readonly map = new Map<string, { target: LinkTarget; expiresNs: number }>();
  evicted = 0;

  constructor(
    private readonly maxEntries = 65536,
    private readonly ttlNs = 10e9,
  ) {}

  publish(key: string, target: LinkTarget, nowNs: number): void {
    this.map.delete(key);
    this.map.set(key, { target, expiresNs: nowNs + this.ttlNs });
    // insertion order is time order: expired entries sit at the front
    for (const [k, e] of this.map) {
      if (e.expiresNs >= nowNs) break;
      this.map.delete(k);
    }
    while (this.map.size > this.maxEntries) {
      this.map.delete(this.map.keys().next().value as string);
      this.evicted++;
    }
  }

  lookup(key: string, nowNs: number): LinkTarget | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresNs < nowNs) {
      this.map.delete(key);
      return undefined;
    }
    return e.target;
  }

  get size(): number {
    return this.map.size;
  }
}
