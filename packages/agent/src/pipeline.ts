import { SocketTracer, type SocketTracerOptions } from "@kalman/ebpf-receiver";
import { L7Aggregator, type L7AggregatorOptions, type RequestRecord } from "@kalman/flow-aggregator";
import {
  type Enricher,
  MonotonicClock,
  NetworkPathJoiner,
  recordToSpan,
  ServiceResolver,
  type Span,
  SpanCorrelator,
} from "@kalman/span-correlator";
import type { ProcessSelector } from "./selection/selector.js";
import { ServiceDirectory } from "./service-directory.js";

/** How long records wait before metrics name their two ends (their peer's record may come later). */
const METRICS_HOLD_MS = 500;

/** A server address and port whose requests are not reported (the agent's own OTLP backend). */
export interface ServerEndpoint {
  addrs: string[];
  port: number;
}

export interface PipelineOptions {
  /** Called with each batch of records and a function naming their two ends (for metrics). */
  onRecordsWithServices?: (records: RequestRecord[], serviceOf: ServiceDirectory["serviceOf"]) => void;
  tracer: SocketTracerOptions;
  aggregator?: Omit<L7AggregatorOptions, "listener">;
  onRecords?: (records: RequestRecord[]) => void;
  onSpans?: (spans: Span[]) => void;
  /** Extra process tags (K8s pod, workload, labels) on every service resource. */
  enrichers?: Enricher[];
  /** Keeps only the events of the processes it selects (checked per event, decided per process). */
  selection?: ProcessSelector;
  /** Requests to these servers are dropped (and counted): the agent's own exports, seen at the backend. */
  excludeServers?: ServerEndpoint[];
  /**
   * Network spans: request records from the packet path (addNetworkRecords) are chained into traces
   * between client and server spans; socket spans are held this long for them (ms). Off when unset.
   */
  networkSpansHoldMs?: number;
}

/**
 * The agent's stages wired together: eBPF receiver → L7 aggregator (with the span correlator
 * listening) → records and spans. pump() moves whatever the kernel queued through every stage.
 */
export class Pipeline {
  readonly tracer: SocketTracer;
  readonly aggregator: L7Aggregator;
  readonly correlator = new SpanCorrelator();
  private readonly clock = new MonotonicClock();
  /** Names and tags observed processes (process, container, K8s): spans, logs and metrics share it. */
  readonly services: ServiceResolver;
  private readonly directory: ServiceDirectory;
  /** Records waiting for their peers to be learned (metrics), with the time they arrived. */
  private held: Array<{ records: RequestRecord[]; atMs: number }> = [];
  private lastTick = Date.now();
  events = 0;
  /** Records dropped because they are requests to the agent's own export backend. */
  ownExportRecords = 0;
  private readonly excluded: Set<string>;
  /** Joins the packet path's hops into traces (when network spans are on). */
  readonly network: NetworkPathJoiner | undefined;

  constructor(private readonly opts: PipelineOptions) {
    this.network =
      opts.networkSpansHoldMs === undefined
        ? undefined
        : new NetworkPathJoiner(this.clock, { holdMs: opts.networkSpansHoldMs });
    this.services = new ServiceResolver({ enrichers: opts.enrichers });
    this.directory = new ServiceDirectory(this.services);
    const selection = opts.selection && !opts.selection.selectsAll ? opts.selection : undefined;
    const kernelPids = opts.selection?.kernelPids();
    // the aggregator validates its options before anything is attached
    this.aggregator = new L7Aggregator({
      ...opts.aggregator,
      listener: this.correlator,
      acceptProcess: selection?.accept,
    });
    this.excluded = new Set((opts.excludeServers ?? []).flatMap((e) => e.addrs.map((a) => `${a}|${e.port}`)));
    this.tracer = SocketTracer.open(kernelPids ? { ...opts.tracer, pids: kernelPids } : opts.tracer);
  }

  /** Drains the kernel ring, parses, correlates, and hands records and spans on. */
  pump(): void {
    const now = Date.now();
    this.opts.selection?.setNow(now);
    for (let b = this.tracer.drainOnce(); b; b = this.tracer.drainOnce()) {
      this.events += b.count;
      this.aggregator.ingestBatch(b);
    }
    if (now - this.lastTick >= 1000) {
      this.aggregator.tick();
      this.lastTick = now;
    }
    let records = this.aggregator.takeRecords();
    if (this.excluded.size && records.length) records = this.withoutOwnExports(records);
    if (!records.length) {
      this.recordWithServices(records, now);
      this.releaseNetwork(now, false);
      return;
    }
    this.opts.onRecords?.(records);
    this.recordWithServices(records, now);
    if (this.opts.onSpans) {
      const spans: Span[] = [];
      const from: RequestRecord[] = [];
      for (const r of records) {
        const s = recordToSpan(r, this.clock, this.services);
        if (s) {
          spans.push(s);
          from.push(r);
        }
      }
      if (this.network) this.network.addSpans(spans, from, now);
      else if (spans.length) this.opts.onSpans(spans);
    }
    this.releaseNetwork(now, false);
  }

  /** Request records observed at network interfaces (the packet path), for network spans. */
  addNetworkRecords(records: RequestRecord[]): void {
    this.network?.addNetwork(records, Date.now());
  }

  /** Hands on every span still waiting for network hops (end of a run, or a demo's report). */
  releaseHeldSpans(): void {
    this.releaseNetwork(Date.now(), true);
  }

  private releaseNetwork(now: number, all: boolean): void {
    if (!this.network || !this.opts.onSpans) return;
    const spans = this.network.release(now, all);
    if (spans.length) this.opts.onSpans(spans);
  }

  private withoutOwnExports(records: RequestRecord[]): RequestRecord[] {
    const kept = records.filter((r) => !this.excluded.has(`${r.serverAddr}|${r.serverPort}`));
    this.ownExportRecords += records.length - kept.length;
    return kept;
  }

  /**
   * Metrics need both ends of a request named, but the two sides of one request complete at different
   * times (a server's answer is drained before the client reads it, later still on a loaded machine).
   * Records are learned at once; those with both ends named go on now (on a kept-alive connection,
   * all but its first), the rest after METRICS_HOLD_MS, when their peers have been learned too.
   */
  private recordWithServices(records: RequestRecord[], nowMs: number): void {
    if (!this.opts.onRecordsWithServices) return;
    if (records.length) {
      this.directory.learn(records);
      const named: RequestRecord[] = [];
      const waiting: RequestRecord[] = [];
      for (const r of records) {
        const ends = this.directory.serviceOf(r);
        (ends.client !== undefined && ends.server !== undefined ? named : waiting).push(r);
      }
      if (named.length) this.opts.onRecordsWithServices(named, this.directory.serviceOf);
      if (waiting.length) this.held.push({ records: waiting, atMs: nowMs });
    }
    while (this.held.length && nowMs - (this.held[0] as { atMs: number }).atMs >= METRICS_HOLD_MS) {
      this.opts.onRecordsWithServices(
        (this.held.shift() as { records: RequestRecord[] }).records,
        this.directory.serviceOf,
      );
    }
  }

  close(): void {
    this.pump();
    this.releaseNetwork(Date.now(), true);
    for (const h of this.held) this.opts.onRecordsWithServices?.(h.records, this.directory.serviceOf);
    this.held = [];
    this.tracer.close();
  }
}
