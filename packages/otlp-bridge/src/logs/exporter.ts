import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { DisabledSink, exporterIsNone } from "../disabled-sink.js";
import { logsJson } from "../encoding/otlp-json.js";
import { type OtlpProtocol, resolveProtocol } from "../exporter.js";
import { OtlpConnection, otlpConcurrency } from "../otlp-connection.js";
import { logTransport, nonBlank, type OtlpTransportOptions } from "../otlp-exporters.js";
import { type JsonFileOptions, JsonLinesFile } from "../rotating-file.js";
import type { SendResult } from "../sink.js";
import { type LogBatchingOptions, LogBatchingSink, type LogSink } from "./batching.js";

export interface OtlpLogExporterOptions extends LogBatchingOptions, OtlpTransportOptions {
  /** Default: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, else by port (4317 -> grpc). */
  protocol?: OtlpProtocol;
}

export interface LogFileSinkOptions extends LogBatchingOptions, JsonFileOptions {}

export interface LogSinkConfig extends OtlpLogExporterOptions, LogFileSinkOptions {
  /**
   * "otlp": always OTLP. "file": always OTLP-JSON lines. "auto" (default): OTLP when an endpoint is
   * configured (config `endpoint`, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT) or
   * OTEL_LOGS_EXPORTER lists otlp; else `<dir>/logs.jsonl`. "none" (or, in "auto",
   * OTEL_LOGS_EXPORTER=none): a sink that takes nothing.
   */
  sink?: "auto" | "otlp" | "file" | "none";
}

/** Request records as OTLP logs: the OTLP log exporter when an endpoint is configured, else `<dir>/logs.jsonl`. */
export function createLogSink(config: LogSinkConfig = {}): LogSink {
  const env = config.env ?? process.env;
  const mode = config.sink ?? "auto";
  if (mode === "none" || (mode === "auto" && exporterIsNone(env.OTEL_LOGS_EXPORTER)))
    return new DisabledSink("(OTEL_LOGS_EXPORTER=none)");
  if (mode === "otlp" || (mode === "auto" && logsOtlpConfigured(config, env))) return new OtlpLogExporter(config);
  return new OtlpJsonLogFileSink(config);
}

function logsOtlpConfigured(config: LogSinkConfig, env: NodeJS.ProcessEnv): boolean {
  if (config.endpoint?.trim()) return true;
  if (nonBlank(env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT) || nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT)) return true;
  return env.OTEL_LOGS_EXPORTER?.split(",").some((e) => e.trim() === "otlp") ?? false;
}

/** The trace side's resolveProtocol, fed the LOGS_ variables in place of the TRACES_ ones. */
export function resolveLogsProtocol(
  options: { protocol?: string; endpoint?: string },
  env: NodeJS.ProcessEnv = process.env,
  warn?: (msg: string, fields?: object) => void,
): OtlpProtocol {
  return resolveProtocol(
    {
      protocol: options.protocol ?? nonBlank(env.OTEL_EXPORTER_OTLP_LOGS_PROTOCOL),
      endpoint: options.endpoint ?? nonBlank(env.OTEL_EXPORTER_OTLP_LOGS_ENDPOINT),
    },
    { ...env, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: undefined, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined },
    warn,
  );
}

/**
 * Log records -> OTLP through the official exporters (what @opentelemetry/exporter-logs-otlp-grpc and
 * -proto build, with Kalman's serializer: see otlp-exporters.ts), behind the bounded queue with batching
 * and retry. Same retry and reconnect rules as OtlpSpanExporter.
 */
export class OtlpLogExporter extends LogBatchingSink {
  readonly kind: "otlp-grpc" | "otlp-http";
  readonly target: string;
  readonly protocol: OtlpProtocol;
  private readonly connection: OtlpConnection<ReadableLogRecord>;

  constructor(options: OtlpLogExporterOptions = {}) {
    super({ ...options, maxConcurrentExports: otlpConcurrency(options.maxConcurrentExports) });
    const env = options.env ?? process.env;
    this.protocol = resolveLogsProtocol(options, env, (msg, fields) => this.logger.warn(msg, fields));
    const t = logTransport(this.protocol, options);
    this.kind = t.kind;
    this.target = t.target;
    this.connection = new OtlpConnection(this.protocol, t.make);
  }

  protected send(batch: ReadableLogRecord[]): Promise<SendResult> {
    return this.connection.send(batch);
  }

  protected override async flushTransport(): Promise<void> {
    await this.connection.flush();
  }

  protected async closeTransport(): Promise<void> {
    await this.connection.shutdown();
  }
}

/**
 * The embedded default: one ExportLogsServiceRequest JSON object per line (the Collector's file
 * exporter format: the text JsonLogsSerializer writes, see encoding/otlp-json.ts), in `<dir>/logs.jsonl`, rotated by size like
 * the trace file sink.
 */
export class OtlpJsonLogFileSink extends LogBatchingSink {
  readonly kind = "file" as const;
  readonly target: string;
  readonly dir: string;
  private readonly file: JsonLinesFile;

  constructor(options: LogFileSinkOptions = {}) {
    super(options);
    this.file = new JsonLinesFile(options, "logs.jsonl");
    this.dir = this.file.dir;
    this.target = this.file.path;
  }

  get path(): string {
    return this.target;
  }

  protected send(batch: ReadableLogRecord[]): Promise<SendResult> {
    return this.file.write(logsJson(batch));
  }

  protected override async flushTransport(): Promise<void> {
    await this.file.sync();
  }

  protected async closeTransport(): Promise<void> {
    await this.file.close();
  }
}

export { httpLogsUrl } from "../otlp-exporters.js";
