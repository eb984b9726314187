import { join, resolve } from "node:path";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { RotatingFile } from "./rotating-file.js";
import { type BatchingOptions, BatchingSink, type SendResult } from "./sink.js";

export interface FileSinkOptions extends BatchingOptions {
  /** Data directory (default "kalman-data", relative to the working directory). Created when missing. */
  dir?: string;
  /** File name inside dir (default "traces.jsonl"). */
  fileName?: string;
  /** Rotate before a write would take the file past this size (default 64 MiB). */
  maxBytes?: number;
  /** Rotated files kept: traces.jsonl.1 (newest) ... traces.jsonl.N (oldest). Default 5. */
  maxFiles?: number;
}

const NEWLINE = Buffer.from("\n");

/**
 * The embedded default when no OTLP endpoint is configured: OTLP-JSON lines in the format of the
 * Collector's file exporter (one ExportTraceServiceRequest JSON object per line, serialized by
 * @opentelemetry/otlp-transformer's JsonTraceSerializer), size-rotated.
 */
export class OtlpJsonFileSink extends BatchingSink {
  readonly kind = "file" as const;
  readonly target: string;
  readonly dir: string;
  private readonly file: RotatingFile;

  constructor(options: FileSinkOptions = {}) {
    super(options);
    this.dir = resolve(options.dir ?? "kalman-data");
    this.target = join(this.dir, options.fileName ?? "traces.jsonl");
    this.file = new RotatingFile(
      this.dir,
      this.target,
      Math.max(1, options.maxBytes ?? 64 * 1024 * 1024),
      Math.max(0, Math.floor(options.maxFiles ?? 5)),
    );
  }

  /** Path of the file being written. */
  get path(): string {
    return this.target;
  }

  protected async send(batch: ReadableSpan[]): Promise<SendResult> {
    const json = JsonTraceSerializer.serializeRequest(batch);
    if (!json || json.length === 0) return { ok: true };
    const line = Buffer.concat([json, NEWLINE]);
    try {
      await this.file.append(line);
      return { ok: true };
    } catch (error) {
      // e.g. ENOSPC, EACCES: keep the spans queued and retry; the file reopens next time
      return { ok: false, error, retryable: true };
    }
  }

  protected async closeTransport(): Promise<void> {
    await this.file.close();
  }

  protected override async flushTransport(): Promise<void> {
    await this.file.sync();
  }
}
