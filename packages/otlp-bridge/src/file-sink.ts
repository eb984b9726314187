import { type FileHandle, mkdir, open, rename, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
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
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private fh: FileHandle | undefined;
  private size = 0;

  constructor(options: FileSinkOptions = {}) {
    super(options);
    this.dir = resolve(options.dir ?? "kalman-data");
    this.target = join(this.dir, options.fileName ?? "traces.jsonl");
    this.maxBytes = Math.max(1, options.maxBytes ?? 64 * 1024 * 1024);
    this.maxFiles = Math.max(0, Math.floor(options.maxFiles ?? 5));
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
      let fh = await this.handle();
      if (this.size > 0 && this.size + line.length > this.maxBytes) {
        await this.rotate();
        fh = await this.handle();
      }
      await fh.appendFile(line);
      this.size += line.length;
      return { ok: true };
    } catch (error) {
      // e.g. ENOSPC, EACCES: keep the spans queued and retry; reopen next time
      await this.closeHandle();
      return { ok: false, error, retryable: true };
    }
  }

  protected async closeTransport(): Promise<void> {
    await this.closeHandle();
  }

  protected override async flushTransport(): Promise<void> {
    await this.fh?.datasync();
  }

  private async handle(): Promise<FileHandle> {
    if (this.fh) return this.fh;
    await mkdir(this.dir, { recursive: true });
    const fh = await open(this.target, "a");
    try {
      this.size = (await fh.stat()).size;
    } catch {
      this.size = 0;
    }
    this.fh = fh;
    return fh;
  }

  private async closeHandle(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh) {
      try {
        await fh.close();
      } catch {
        // already closed or gone
      }
    }
  }

  /** traces.jsonl -> .1 -> .2 ... -> .maxFiles; the oldest falls off. */
  private async rotate(): Promise<void> {
    await this.closeHandle();
    const base = this.target;
    if (this.maxFiles === 0) {
      await unlinkIfExists(base);
    } else {
      for (let i = this.maxFiles - 1; i >= 1; i--) await renameIfExists(`${base}.${i}`, `${base}.${i + 1}`);
      await renameIfExists(base, `${base}.1`);
    }
    this.size = 0;
  }
}

async function renameIfExists(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}
