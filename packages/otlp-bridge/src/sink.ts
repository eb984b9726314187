import type { Span } from "@kalman/span-correlator";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { BatchLoop, type BatchLoopOptions, type SinkStats } from "./batch-loop.js";
import { type Logger, stderrWarnLogger } from "./logger.js";
import { SpanConverter, type SpanConverterOptions } from "./spans.js";

export { errorMessage, type SendResult } from "./batch-loop.js";

/** Counters of a span sink. Loss is never silent: every span that will not be delivered is in `dropped`. */
export type SpanSinkStats = SinkStats;

/** Where spans go: an OTLP exporter or the OTLP-JSON file sink. Same interface, so the agent can use either. */
export interface SpanSink {
  /** "otlp-grpc", "otlp-http", "file", or "none" (traces turned off). */
  readonly kind: "otlp-grpc" | "otlp-http" | "file" | "none";
  /** Human-readable destination (endpoint URL or file path), for logs and the CLI. */
  readonly target: string;
  /** Non-blocking: queues the spans (dropping and counting the oldest when full). Never throws. */
  add(spans: readonly Span[]): void;
  /** Sends what is queued now; resolves after one attempt per batch (does not wait out a dead backend). */
  flush(): Promise<void>;
  /** Flushes, releases the transport; spans still queued afterwards are counted as dropped. */
  shutdown(): Promise<void>;
  stats(): SpanSinkStats;
}

/** Queueing, batching and retry options of a span sink. */
export interface BatchingOptions extends BatchLoopOptions {
  logger?: Logger;
  /** A shared converter (resources are cached there), or options for a new one. */
  converter?: SpanConverter | SpanConverterOptions;
  /** Environment for OTEL_* settings this package reads itself (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * The shared batch loop for spans: spans are converted to ReadableSpans as they are added (invalid
 * W3C ids are dropped and counted), then queued, batched and retried. Subclasses implement send().
 */
export abstract class BatchingSink extends BatchLoop<ReadableSpan> implements SpanSink {
  abstract readonly kind: SpanSink["kind"];
  protected readonly converter: SpanConverter;
  private warnedInvalid = false;

  constructor(options: BatchingOptions = {}) {
    super(options.logger ?? stderrWarnLogger, "spans", options);
    this.converter =
      options.converter instanceof SpanConverter
        ? options.converter
        : new SpanConverter({ env: options.env, ...options.converter });
  }

  add(spans: readonly Span[]): void {
    try {
      const readable: ReadableSpan[] = [];
      for (const span of spans) {
        let r: ReadableSpan | undefined;
        try {
          r = this.converter.convert(span);
        } catch {
          r = undefined;
        }
        if (r) readable.push(r);
      }
      const invalid = spans.length - readable.length;
      if (invalid && !this.warnedInvalid) {
        this.warnedInvalid = true;
        this.logger.warn("dropping spans that cannot be exported (invalid W3C trace/span ids)", { count: invalid });
      }
      this.enqueue(readable, invalid, "invalid W3C trace/span ids");
    } catch (err) {
      // add() never throws; count what we could not take
      this.noteFailedAdd(spans?.length ?? 0, err);
    }
  }
}
