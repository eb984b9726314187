import type { Logger } from "./logger.js";
import { BoundedQueue } from "./queue.js";

/** Outcome of one send. `retryable: false` means the backend rejected the batch for good: it is dropped. */
export type SendResult = { ok: true } | { ok: false; error: unknown; retryable: boolean };

/** Counters of a sink. Loss is never silent: every item that will not be delivered is in `dropped`. */
export interface SinkStats {
  /** Items waiting in the queue (never more than maxQueueSize). */
  queued: number;
  /** Items in the batches being sent right now (at most maxBatchSize × maxConcurrentExports). */
  inFlight: number;
  /** Items delivered (acknowledged by the backend, or written to the file). */
  exported: number;
  /** Items given up on: queue overflow, rejected by the backend, not convertible, or still queued at shutdown. */
  dropped: number;
  /** Export attempts (batches) that failed; a retried batch counts once per attempt. */
  failedExports: number;
  /** Message of the most recent failure, if any. */
  lastError?: string;
}

/** Queueing, batching and retry options shared by every sink. */
export interface BatchLoopOptions {
  /** Queue bound in items (default 8192). When full, the oldest is dropped and counted. */
  maxQueueSize?: number;
  /** Items per export (default 512). */
  maxBatchSize?: number;
  /** A partial batch is sent at least this often, in ms (default 1000). */
  flushIntervalMs?: number;
  /** First retry delay after a failed export, in ms (default 500); doubles per failure, with ±20% jitter. */
  retryInitialMs?: number;
  /** Retry delay cap, in ms (default 30000). */
  retryMaxMs?: number;
  /**
   * Batches sent at once (default 1). Over a network, one export per round trip caps throughput at
   * maxBatchSize per RTT (about 10k items/s at 50 ms): the OTLP exporters send several.
   */
  maxConcurrentExports?: number;
}

const DROP_LOG_INTERVAL_MS = 10_000;

/**
 * Bounded queue + batch loop + retry with backoff, for items already converted to what the
 * transport sends (spans, log records). Subclasses implement send() (one batch) and closeTransport().
 */
export abstract class BatchLoop<T> {
  abstract readonly target: string;
  private readonly queue: BoundedQueue<T>;
  private readonly maxBatchSize: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly maxConcurrentExports: number;
  private readonly interval: NodeJS.Timeout;
  /** Items in the batches being sent. */
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

  /** `noun` names the items in log lines ("spans", "log records"). */
  constructor(
    protected readonly logger: Logger,
    private readonly noun: string,
    options: BatchLoopOptions = {},
  ) {
    this.maxBatchSize = Math.max(1, Math.floor(options.maxBatchSize ?? 512));
    this.queue = new BoundedQueue<T>(Math.max(1, Math.floor(options.maxQueueSize ?? 8192)));
    this.retryInitialMs = Math.max(1, options.retryInitialMs ?? 500);
    this.retryMaxMs = Math.max(this.retryInitialMs, options.retryMaxMs ?? 30_000);
    this.maxConcurrentExports = Math.max(1, Math.floor(options.maxConcurrentExports ?? 1));
    this.interval = setInterval(() => this.kick(), Math.max(1, options.flushIntervalMs ?? 1000));
    this.interval.unref();
  }

  /** Sends one batch. May throw or reject: that counts as a retryable failure. */
  protected abstract send(batch: T[]): Promise<SendResult>;
  /** Waits for anything the transport still has in flight. */
  protected async flushTransport(): Promise<void> {}
  /** Releases the transport (connections, file handles). */
  protected abstract closeTransport(): Promise<void>;

  /** Queues converted items; `unusable` counts inputs that could not be converted (dropped, with why). */
  protected enqueue(items: readonly T[], unusable = 0, why = ""): void {
    if (this.closed) {
      this.noteDropped(items.length + unusable, "sink is shut down");
      return;
    }
    if (unusable) this.noteDropped(unusable, why);
    let evicted = 0;
    for (const item of items) if (this.queue.push(item)) evicted++;
    if (evicted) this.noteDropped(evicted, "queue full");
    if (this.queue.size >= this.maxBatchSize) this.kick();
  }

  protected noteFailedAdd(n: number, err: unknown): void {
    this.noteDropped(n, `add failed: ${errorMessage(err)}`);
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

  stats(): SinkStats {
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

  /**
   * Sends batches, up to maxConcurrentExports at once, until the queue is empty (true) or an export
   * fails (false, retry scheduled): after a failure no new batch starts, and those in flight finish.
   */
  private async drain(): Promise<boolean> {
    const sending = new Set<Promise<boolean>>();
    let ok = true;
    for (;;) {
      while (ok && this.queue.size > 0 && sending.size < this.maxConcurrentExports) {
        const p: Promise<boolean> = this.sendOne().then((sent) => {
          sending.delete(p);
          return sent;
        });
        sending.add(p);
      }
      if (sending.size === 0) break;
      if (!(await Promise.race(sending))) ok = false;
    }
    if (!ok && !this.closed) this.scheduleRetry();
    return ok;
  }

  private async sendOne(): Promise<boolean> {
    const batch = this.queue.take(this.maxBatchSize);
    if (batch.length === 0) return true;
    this.inFlight += batch.length;
    let result: SendResult;
    try {
      result = await this.send(batch);
    } catch (err) {
      result = { ok: false, error: err, retryable: true };
    } finally {
      this.inFlight -= batch.length;
    }
    if (result.ok) {
      this.exported += batch.length;
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
      this.noteDropped(batch.length, `rejected by backend: ${this.lastError}`, true);
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
    const overflow = this.queue.unshiftAll(batch);
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
      this.logger.warn(`dropping ${this.noun}`, {
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
