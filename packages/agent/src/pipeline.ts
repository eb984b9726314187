import { SocketTracer, type SocketTracerOptions } from "@kalman/ebpf-receiver";
import { L7Aggregator, type L7AggregatorOptions, type RequestRecord } from "@kalman/flow-aggregator";
import { MonotonicClock, recordToSpan, ServiceResolver, type Span, SpanCorrelator } from "@kalman/span-correlator";

export interface PipelineOptions {
  tracer: SocketTracerOptions;
  aggregator?: Omit<L7AggregatorOptions, "listener">;
  onRecords?: (records: RequestRecord[]) => void;
  onSpans?: (spans: Span[]) => void;
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
  private readonly services = new ServiceResolver();
  private lastTick = Date.now();
  events = 0;

  constructor(private readonly opts: PipelineOptions) {
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
    if (!records.length) return;
    this.opts.onRecords?.(records);
    if (this.opts.onSpans) {
      const spans: Span[] = [];
      for (const r of records) {
        const s = recordToSpan(r, this.clock, this.services);
        if (s) spans.push(s);
      }
      if (spans.length) this.opts.onSpans(spans);
    }
  }

  close(): void {
    this.pump();
    this.tracer.close();
  }
}
