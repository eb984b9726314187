import { SocketTracer, type SocketTracerOptions } from "@kalman/ebpf-receiver";
import { L7Aggregator, type L7AggregatorOptions, type RequestRecord } from "@kalman/flow-aggregator";
import {
  type Enricher,
  MonotonicClock,
  recordToSpan,
  ServiceResolver,
  type Span,
  SpanCorrelator,
} from "@kalman/span-correlator";
import { ServiceDirectory } from "./service-directory.js";

export interface PipelineOptions {
  /** Called with each batch of records and a function naming their two ends (for metrics). */
  onRecordsWithServices?: (records: RequestRecord[], serviceOf: ServiceDirectory["serviceOf"]) => void;
  tracer: SocketTracerOptions;
  aggregator?: Omit<L7AggregatorOptions, "listener">;
  onRecords?: (records: RequestRecord[]) => void;
  onSpans?: (spans: Span[]) => void;
  /** Extra process tags (K8s pod, workload, labels) on every service resource. */
  enrichers?: Enricher[];
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
  private held: RequestRecord[] = [];
  private lastTick = Date.now();
  events = 0;

  constructor(private readonly opts: PipelineOptions) {
    this.services = new ServiceResolver({ enrichers: opts.enrichers });
    this.directory = new ServiceDirectory(this.services);
    // the aggregator validates its options before anything is attached
    this.aggregator = new L7Aggregator({ ...opts.aggregator, listener: this.correlator });
    this.tracer = SocketTracer.open(opts.tracer);
  }

  /** Drains the kernel ring, parses, correlates, and hands records and spans on. */
  pump(): void {
    for (let b = this.tracer.drainOnce(); b; b = this.tracer.drainOnce()) {
      this.events += b.count;
      this.aggregator.ingestBatch(b);
    }
    const now = Date.now();
    if (now - this.lastTick >= 1000) {
      this.aggregator.tick();
      this.lastTick = now;
    }
    const records = this.aggregator.takeRecords();
    if (!records.length) {
      this.recordWithServices(records);
      return;
    }
    this.opts.onRecords?.(records);
    this.recordWithServices(records);
    if (this.opts.onSpans) {
      const spans: Span[] = [];
      for (const r of records) {
        const s = recordToSpan(r, this.clock, this.services);
        if (s) spans.push(s);
      }
      if (spans.length) this.opts.onSpans(spans);
    }
  }

  /**
   * Metrics need both ends of a request named, but the two sides of one request can complete in
   * consecutive pumps (a server's answer is drained before the client reads it). Records are learned
   * at once and handed on one pump later, when their peers have usually been learned too.
   */
  private recordWithServices(records: RequestRecord[]): void {
    if (!this.opts.onRecordsWithServices) return;
    this.directory.learn(records);
    if (this.held.length) this.opts.onRecordsWithServices(this.held, this.directory.serviceOf);
    this.held = records;
  }

  close(): void {
    this.pump();
    if (this.held.length) this.opts.onRecordsWithServices?.(this.held, this.directory.serviceOf);
    this.held = [];
    this.tracer.close();
  }
}
