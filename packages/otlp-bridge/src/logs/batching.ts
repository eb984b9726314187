import type { FlowRecord, RequestRecord } from "@kalman/flow-aggregator";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { BatchLoop, type BatchLoopOptions, errorMessage, type SinkStats } from "../batch-loop.js";
import { type Logger, stderrWarnLogger } from "../logger.js";
import { LogRecordConverter, type LogRecordConverterOptions } from "./records.js";

/** Counters of a log sink. Loss is never silent: every record that will not be delivered is in `dropped`. */
export type LogSinkStats = SinkStats;

/** Where request logs go: an OTLP log exporter or the OTLP-JSON file. Same shape as SpanSink. */
export interface LogSink {
  /** "otlp-grpc", "otlp-http", "file", or "none" (logs turned off). */
  readonly kind: "otlp-grpc" | "otlp-http" | "file" | "none";
  /** Endpoint URL or file path, for logs and the CLI. */
  readonly target: string;
  /** Converts and queues (dropping and counting the oldest when full). Synchronous, never throws. */
  add(records: readonly RequestRecord[]): void;
  /** Flow log records (L4 flows from packets), converted and queued like add(). */
  addFlows(records: readonly FlowRecord[]): void;
  /** Sends what is queued now; one attempt per batch (does not wait out a dead backend). */
  flush(): Promise<void>;
  /** Flushes and releases the transport; records still queued afterwards are counted as dropped. */
  shutdown(): Promise<void>;
  stats(): LogSinkStats;
}

export interface LogBatchingOptions extends LogRecordConverterOptions, BatchLoopOptions {
  logger?: Logger;
  /** A ready LogRecordConverter (else one is made from the converter options above). */
  logConverter?: LogRecordConverter;
}

/**
 * The shared batch loop for log records: records are converted in add() (so the service is
 * resolved while the process is alive), then queued, batched and retried. Subclasses implement send().
 */
export abstract class LogBatchingSink extends BatchLoop<ReadableLogRecord> implements LogSink {
  abstract readonly kind: LogSink["kind"];
  readonly converter: LogRecordConverter;

  constructor(options: LogBatchingOptions = {}) {
    super(options.logger ?? stderrWarnLogger, "log records", options);
    this.converter = options.logConverter ?? new LogRecordConverter(options);
  }

  add(records: readonly RequestRecord[]): void {
    this.convertAndQueue(records, (r) => this.converter.convert(r));
  }

  addFlows(records: readonly FlowRecord[]): void {
    this.convertAndQueue(records, (f) => this.converter.convertFlow(f));
  }

  private convertAndQueue<T>(records: readonly T[], convert: (r: T) => ReadableLogRecord): void {
    try {
      const logs: ReadableLogRecord[] = [];
      let firstError: unknown;
      for (const r of records) {
        try {
          logs.push(convert(r));
        } catch (err) {
          firstError ??= err;
        }
      }
      const bad = records.length - logs.length;
      this.enqueue(logs, bad, bad ? `conversion failed: ${errorMessage(firstError)}` : "");
    } catch (err) {
      this.noteFailedAdd(records?.length ?? 0, err);
    }
  }
}
