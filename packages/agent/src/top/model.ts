import type { RequestRecord } from "@kalman/flow-aggregator";
import { templatePath } from "@kalman/otlp-bridge";

/** Log-scale latency buckets: 8 per power of two from 1 µs to ~70 s (≈9% precision), counts only. */
const SUB = 8;
const MIN_NS = 1000;
const BUCKETS = 27 * SUB;

function bucketOf(ns: number): number {
  if (ns <= MIN_NS) return 0;
  const b = Math.floor(Math.log2(ns / MIN_NS) * SUB);
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

function bucketValueNs(b: number): number {
  return MIN_NS * 2 ** ((b + 0.5) / SUB);
}

/** Counts for one second of one row. */
class Slot {
  requests = 0;
  errors = 0;
  readonly latency = new Uint32Array(BUCKETS);
  clear(): void {
    this.requests = 0;
    this.errors = 0;
    this.latency.fill(0);
  }
}

/** A row of the view (an edge, or an endpoint): a ring of per-second slots. */
export class Row {
  private readonly slots: Slot[];
  private head = 0;

  constructor(
    readonly key: string,
    windowS: number,
  ) {
    this.slots = Array.from({ length: windowS }, () => new Slot());
  }

  add(r: RequestRecord): void {
    const s = this.slots[this.head] as Slot;
    s.requests++;
    // errors as a server sees them: its own failures and timeouts (a 404 is the caller's)
    if (r.status === "server_error" || r.status === "timeout") s.errors++;
    const b = bucketOf(r.durationNs);
    s.latency[b] = (s.latency[b] ?? 0) + 1;
  }

  /** Moves to a fresh second, dropping the oldest. */
  rotate(): void {
    this.head = (this.head + 1) % this.slots.length;
    (this.slots[this.head] as Slot).clear();
  }

  /** Requests/s, error ratio and latency quantiles over the window (seconds that have passed). */
  summary(seconds: number): { rate: number; errorRatio: number; p50Ms: number; p99Ms: number; requests: number } {
    let requests = 0;
    let errors = 0;
    const merged = new Uint32Array(BUCKETS);
    for (const s of this.slots) {
      requests += s.requests;
      errors += s.errors;
      for (let i = 0; i < BUCKETS; i++) merged[i] = (merged[i] ?? 0) + (s.latency[i] ?? 0);
    }
    const q = (p: number) => {
      if (!requests) return 0;
      const want = Math.ceil(requests * p);
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += merged[i] ?? 0;
        if (seen >= want) return bucketValueNs(i) / 1e6;
      }
      return bucketValueNs(BUCKETS - 1) / 1e6;
    };
    return {
      rate: requests / Math.max(1, seconds),
      errorRatio: requests ? errors / requests : 0,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      requests,
    };
  }
}

export interface Names {
  client?: string;
  server?: string;
}

/**
 * The numbers behind `kalman top`: per service-map edge and per server endpoint, rate, error ratio
 * and p50/p99 over a sliding window. Each request counts once: at the server when Kalman sees the
 * server, else at the client. Rows are bounded; past the cap new keys fold into "(other)".
 */
export class TopModel {
  readonly edges = new Map<string, Row>();
  readonly endpoints = new Map<string, Row>();
  private seconds = 1;

  constructor(
    private readonly windowS = 10,
    private readonly maxRows = 500,
  ) {}

  add(records: readonly RequestRecord[], serviceOf: (r: RequestRecord) => Names): void {
    for (const r of records) {
      const names = serviceOf(r);
      if (r.observationPoint === "client" && names.server !== undefined) continue; // counted at the server
      const client = names.client ?? r.clientAddr;
      const server = names.server ?? `${r.serverAddr}:${r.serverPort}`;
      this.row(this.edges, `${client} → ${server}`).add(r);
      const path = r.endpoint ?? r.resource;
      const templated = path && (r.protocol === "http1" || r.protocol === "http2") ? templatePath(path) : path;
      const what = [r.requestType, templated].filter(Boolean).join(" ") || r.protocol;
      this.row(this.endpoints, `${server}  ${r.protocol} ${what}`.slice(0, 90)).add(r);
    }
  }

  /** Advances the window by a second. */
  tick(): void {
    for (const r of this.edges.values()) r.rotate();
    for (const r of this.endpoints.values()) r.rotate();
    this.seconds = Math.min(this.windowS, this.seconds + 1);
  }

  get windowSeconds(): number {
    return this.seconds;
  }

  private row(map: Map<string, Row>, key: string): Row {
    let row = map.get(key);
    if (!row) {
      if (map.size >= this.maxRows) key = "(other)";
      row = map.get(key) ?? new Row(key, this.windowS);
      map.set(key, row);
    }
    return row;
  }
}
