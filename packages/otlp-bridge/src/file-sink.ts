import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { tracesJson } from "./encoding/otlp-json.js";
import { type JsonFileOptions, JsonLinesFile } from "./rotating-file.js";
import { type BatchingOptions, BatchingSink, type SendResult } from "./sink.js";

export interface FileSinkOptions extends BatchingOptions, JsonFileOptions {}

/**
 * The embedded default when no OTLP endpoint is configured: OTLP-JSON lines in the format of the
 * Collector's file exporter (one ExportTraceServiceRequest JSON object per line, the text
 * @opentelemetry/otlp-transformer's JsonTraceSerializer writes; see encoding/otlp-json.ts) in
 * `<dir>/traces.jsonl`, size-rotated.
 */
export class OtlpJsonFileSink extends BatchingSink {
  readonly kind = "file" as const;
  readonly target: string;
  readonly dir: string;
  private readonly file: JsonLinesFile;

  constructor(options: FileSinkOptions = {}) {
    super(options);
    this.file = new JsonLinesFile(options, "traces.jsonl");
    this.dir = this.file.dir;
    this.target = this.file.path;
  }

  /** Path of the file being written. */
  get path(): string {
    return this.target;
  }

  protected send(batch: ReadableSpan[]): Promise<SendResult> {
    return this.file.write(tracesJson(batch));
  }

  protected async closeTransport(): Promise<void> {
    await this.file.close();
  }

  protected override async flushTransport(): Promise<void> {
    await this.file.sync();
  }
}
