import type { Span } from "@kalman/span-correlator";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { type Logger, stderrWarnLogger } from "./logger.js";
import { BoundedQueue } from "./queue.js";
import { SpanConverter, type SpanConverterOptions } from "./spans.js";

/** Counters of a sink. Loss is never silent: every span that will not be delivered is in `dropped`. */
export interface SpanSinkStats {
  /** Spans waiting in the queue (never more than maxQueueSize). */
  queued: number;
  /** Spans in the batch being sent right now (at most maxBatchSize). */
  inFlight: number;
  /** Spans delivered (acknowledged by the backend, or written to the file). */
  exported: number;
  /** Spans given up on: queue overflow, rejected by the backend, invalid ids, or still queued at shutdown. */
  dropped: number;
  /** Export attempts (batches) that failed; a retried batch counts once per attempt. */
  failedExports: number;
  /** Message of the most recent failure, if any. */
  lastError?: string;
}

/** Where spans go: an OTLP exporter or the OTLP-JSON file sink. Same interface, so the agent can use either. */
export interface SpanSink {
  /** "otlp-grpc", "otlp-http" or "file". */
  readonly kind: "otlp-grpc" | "otlp-http" | "file";
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

/** Queueing, batching and retry options shared by every sink. */
export interface BatchingOptions {
  /** Queue bound in spans (default 8192). When full, the oldest span is dropped and counted. */
  maxQueueSize?: number;
  /** Spans per export (default 512). */
  maxBatchSize?: number;
  /** A partial batch is sent at least this often, in ms (default 1000). */
  flushIntervalMs?: number;
  /** First retry delay after a failed export, in ms (default 500); doubles per failure, with ±20% jitter. */
  retryInitialMs?: number;
  /** Retry delay cap, in ms (default 30000). */
  retryMaxMs?: number;
  logger?: Logger;
  /** A shared converter (resources are cached there), or options for a new one. */
  converter?: SpanConverter | SpanConverterOptions;
  /** Environment for OTEL_* settings this package reads itself (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Outcome of one send. `retryable: false` means the backend rejected the batch for good: it is dropped. */
export type SendResult = { ok: true } | { ok: false; error: unknown; retryable: boolean };

const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Bounded queue + batch loop + retry with backoff. Subclasses only implement send() (one batch)
 * and closeTransport().
 */
export abstract class BatchingSink implements SpanSink {
  abstract readonly kind: SpanSink["kind"];
  abstract readonly target: string;

  protected readonly logger: Logger;
  protected readonly converter: SpanConverter;
  private readonly queue: BoundedQueue<Span>;
  private readonly maxBatchSize: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly interval: NodeJS.Timeout;

  private inFlight = 0;
  private exported = 0;
  private dropped = 0;
  private failedExports = 0;
  private lastError: string | undefined;

  private draining: Promise<boolean> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 0;
  private failing = false;
  private closed = false;
  private lastDropLog = 0;
  private droppedAtLastLog = 0;
  private warnedInvalid = false;

  constructor(options: BatchingOptions = {}) {
    this.logger = options.logger ?? stderrWarnLogger;
    this.converter =
      options.converter instanceof SpanConverter
        ? options.converter
        : new SpanConverter({ env: options.env, ...options.converter });
    this.maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 512));
    this.queue = new BoundedQueue<Span>(Math.max(1, Math.floor(options.maxQueueSize ?? 8192)));
    this.retryInitialMs = Math.max(1, options.retryInitialMs ?? 500);
    this.retryMaxMs = Math.max(this.retryInitialMs, options.retryMaxMs ?? 30_000);
    this.interval = setInterval(() => this.kick(), Math.max(1, options.flushIntervalMs ?? 1000));
    this.interval.unref();
  }

  /** Sends one batch. May throw or reject: that counts as a retryable failure. */
  protected abstract send(batch: ReadableSpan[]): Promise<SendResult>;
  /** Waits for anything the transport still has in flight. */
  protected async flushTransport(): Promise<void> {}
  /** Releases the transport (connections, file handles). */
  protected abstract closeTransport(): Promise<void>;

  add(spans: readonly Span[]): void {
    try {
      if (this.closed) {
        this.noteDropped(spans.length, "sink is shut down");
        return;
      }
      let evicted = 0;
      for (const span of spans) if (this.queue.push(span)) evicted++;
      if (evicted) this.noteDropped(evicted, "queue full");
      if (this.queue.size >= this.maxBatchSize) this.kick();
    } catch (err) {
      // add() never throws; count what we could not take
      this.noteDropped(spans?.length ?? 0, `add failed: ${errorMessage(err)}`);
    }
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (this.queue.size > 0) await this.startDrain();
    try {
      await this.flushTransport();
    } catch (err) {
      this.logger.warn("flush of transport failed", { target: this.target, error: errorMessage(err) });
    }
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.interval);
    await this.flush();
    this.closed = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const left = this.queue.clear();
    if (left) this.noteDropped(left, "still queued at shutdown", true);
    try {
      await this.closeTransport();
    } catch (err) {
      this.logger.warn("closing transport failed", { target: this.target, error: errorMessage(err) });
    }
  }

  stats(): SpanSinkStats {
    return {
      queued: this.queue.size,
      inFlight: this.inFlight,
      exported: this.exported,
      dropped: this.dropped,
      failedExports: this.failedExports,
      lastError: this.lastError,
    };
  }

  /** Starts draining unless already draining or waiting to retry. */
  private kick(): void {
    if (this.draining || this.retryTimer || this.closed || this.queue.size === 0) return;
    void this.startDrain();
  }

  private startDrain(): Promise<boolean> {
    const p = this.drain().finally(() => {
      if (this.draining === p) this.draining = undefined;
    });
    this.draining = p;
    return p;
  }

  /** Sends batch after batch until the queue is empty (true) or an export fails (false, retry scheduled). */
  private async drain(): Promise<boolean> {
    while (this.queue.size > 0) {
      if (!(await this.sendOne())) {
        if (!this.closed) this.scheduleRetry();
        return false;
      }
    }
    return true;
  }

  private async sendOne(): Promise<boolean> {
    const taken = this.queue.take(this.maxBatchSize);
    const spans: Span[] = [];
    const readable: ReadableSpan[] = [];
    let invalid = 0;
    for (const span of taken) {
      let r: ReadableSpan | undefined;
      try {
        r = this.converter.convert(span);
      } catch {
        r = undefined;
      }
      if (r) {
        spans.push(span);
        readable.push(r);
      } else invalid++;
    }
    if (invalid) {
      this.dropped += invalid;
      if (!this.warnedInvalid) {
        this.warnedInvalid = true;
        this.logger.warn("dropping spans that cannot be exported (invalid W3C trace/span ids)", { count: invalid });
      }
    }
    if (readable.length === 0) return true;

    this.inFlight = readable.length;
    let result: SendResult;
    try {
      result = await this.send(readable);
    } catch (err) {
      result = { ok: false, error: err, retryable: true };
    } finally {
      this.inFlight = 0;
    }

    if (result.ok) {
      this.exported += readable.length;
      this.retryDelayMs = 0;
      if (this.failing) {
        this.failing = false;
        this.logger.info("export recovered", {
          target: this.target,
          failedExports: this.failedExports,
          dropped: this.dropped,
        });
      }
      return true;
    }

    this.failedExports++;
    this.lastError = errorMessage(result.error);
    if (!result.retryable) {
      this.noteDropped(spans.length, `rejected by backend: ${this.lastError}`, true);
      // the backend answered: it is up, so this is not a reason to back off
      return true;
    }
    if (!this.failing) {
      this.failing = true;
      this.logger.warn("export failed; retrying with backoff", {
        target: this.target,
        error: this.lastError,
        queued: this.queue.size,
      });
    } else {
      this.logger.debug?.("export failed again", { target: this.target, error: this.lastError });
    }
    const overflow = this.queue.unshiftAll(spans);
    if (overflow) this.noteDropped(overflow, "queue full while retrying");
    return false;
  }

  private scheduleRetry(): void {
    if (this.retryTimer) return;
    this.retryDelayMs = this.retryDelayMs ? Math.min(this.retryDelayMs * 2, this.retryMaxMs) : this.retryInitialMs;
    const delay = Math.max(1, Math.round(this.retryDelayMs * (0.8 + Math.random() * 0.4)));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.kick();
    }, delay);
    this.retryTimer.unref();
  }

  private noteDropped(n: number, reason: string, always = false): void {
    if (n <= 0) return;
    this.dropped += n;
    const now = Date.now();
    if (always || this.droppedAtLastLog === 0 || now - this.lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.logger.warn("dropping spans", {
        target: this.target,
        reason,
        count: n,
        droppedSinceLastReport: this.dropped - this.droppedAtLastLog,
        droppedTotal: this.dropped,
      });
      this.lastDropLog = now;
      this.droppedAtLastLog = this.dropped;
    }
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
