import { BoundedMap, type RequestRecord } from "@kalman/flow-aggregator";
import type { ServiceResolver } from "@kalman/span-correlator";

/** Distinct addresses numbered; past it the directory starts over (keys stay small integers). */
const MAX_ADDRESSES = 32_767;

/**
 * Names both ends of a request for the service graph: an end is named only when Kalman observed that
 * end's own process (its server address:port, or the client's connection address:port). Bounded.
 * Endpoints are keyed by numbers (address id x 65536 + port), not by built strings: this runs for
 * every record.
 */
export class ServiceDirectory {
  private readonly byServerEndpoint: BoundedMap<number, string>;
  private readonly byClientEndpoint: BoundedMap<number, string>;
  private readonly addressIds = new Map<string, number>();
  /** serviceOf()'s answer, reused. */
  private readonly names: { client?: string; server?: string } = { client: undefined, server: undefined };

  constructor(
    private readonly services: ServiceResolver,
    maxEntries = 65536,
  ) {
    // client ports churn with every short connection: both maps stay full, so eviction must be O(1)
    this.byServerEndpoint = new BoundedMap(maxEntries);
    this.byClientEndpoint = new BoundedMap(maxEntries);
  }

  /** Learns which process sits at each observed end. Call before serviceOf() for the same records. */
  learn(records: readonly RequestRecord[]): void {
    for (const r of records) {
      if (r.observationPoint === "server") {
        const name = this.services.resolve(r.pid, r.comm).serviceName;
        remember(this.byServerEndpoint, this.endpointKey(r.serverAddr, r.serverPort), name);
      } else if (r.observationPoint === "client") {
        const name = this.services.resolve(r.pid, r.comm).serviceName;
        remember(this.byClientEndpoint, this.endpointKey(r.clientAddr, r.clientPort), name);
      }
    }
  }

  /** The service names of a record's two ends, where known. The answer is reused: read it before the next call. */
  readonly serviceOf = (r: RequestRecord): { client?: string; server?: string } => {
    const c = this.addressIds.get(r.clientAddr);
    const s = this.addressIds.get(r.serverAddr);
    const names = this.names;
    names.client = c === undefined ? undefined : this.byClientEndpoint.get(c * 65536 + r.clientPort);
    names.server = s === undefined ? undefined : this.byServerEndpoint.get(s * 65536 + r.serverPort);
    return names;
  };

  private endpointKey(addr: string, port: number): number {
    let id = this.addressIds.get(addr);
    if (id === undefined) {
      if (this.addressIds.size >= MAX_ADDRESSES) {
        this.addressIds.clear();
        this.byServerEndpoint.clear();
        this.byClientEndpoint.clear();
      }
      id = this.addressIds.size;
      this.addressIds.set(addr, id);
    }
    return id * 65536 + (port & 0xffff);
  }
}

function remember(map: BoundedMap<number, string>, key: number, value: string): void {
  if (map.get(key) !== value) map.set(key, value);
}
