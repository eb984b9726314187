import type { RequestRecord } from "@kalman/flow-aggregator";
import type { ServiceResolver } from "@kalman/span-correlator";

/**
 * Names both ends of a request for the service graph: an end is named only when Kalman observed that
 * end's own process (its server address:port, or the client's connection address:port). Bounded.
 */
export class ServiceDirectory {
  private readonly byServerEndpoint = new Map<string, string>();
  private readonly byClientEndpoint = new Map<string, string>();

  constructor(
    private readonly services: ServiceResolver,
    private readonly maxEntries = 65536,
  ) {}

  /** Learns which process sits at each observed end. Call before serviceOf() for the same records. */
  learn(records: readonly RequestRecord[]): void {
    for (const r of records) {
      const name = this.services.resolve(r.pid, r.comm).serviceName;
      if (r.observationPoint === "server")
        remember(this.byServerEndpoint, `${r.serverAddr}:${r.serverPort}`, name, this.maxEntries);
      else if (r.observationPoint === "client")
        remember(this.byClientEndpoint, `${r.clientAddr}:${r.clientPort}`, name, this.maxEntries);
    }
  }

  /** The service names of a record's two ends, where known. */
  readonly serviceOf = (r: RequestRecord): { client?: string; server?: string } => ({
    client: this.byClientEndpoint.get(`${r.clientAddr}:${r.clientPort}`),
    server: this.byServerEndpoint.get(`${r.serverAddr}:${r.serverPort}`),
  });
}

function remember(map: Map<string, string>, key: string, value: string, max: number): void {
  if (map.get(key) === value) return;
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as string);
}
