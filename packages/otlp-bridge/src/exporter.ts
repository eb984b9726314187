import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { OtlpConnection } from "./otlp-connection.js";
import { nonBlank, traceTransport } from "./otlp-exporters.js";
import { type BatchingOptions, BatchingSink, type SendResult } from "./sink.js";

export type OtlpProtocol = "grpc" | "http/protobuf";

export interface OtlpExporterOptions extends BatchingOptions {
  /**
   * Transport. Default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL, then
   * inferred from the endpoint's port (4317 -> grpc, anything else -> http/protobuf, as Beyla does).
   */
  protocol?: OtlpProtocol;
  /**
   * Where to send. grpc: `http://host:4317` (http:// = plaintext, https:// or no scheme = TLS, as in
   * the official exporter). http/protobuf: a base URL (`http://host:4318`, `/v1/traces` is appended)
   * or a full URL with a path (used as is). Default: what the official exporter reads from
   * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317 / :4318.
   */
  endpoint?: string;
  /** Extra request headers (gRPC metadata for grpc). Merged with OTEL_EXPORTER_OTLP_[TRACES_]HEADERS. */
  headers?: Record<string, string>;
  /** Per-export timeout in ms (default: OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT, else 10000). */
  timeoutMillis?: number;
  /** Default: OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION, else none. */
  compression?: "gzip" | "none";
  /**
   * Injected environment (tests, or config layered by the agent): used for the protocol choice and,
   * when `endpoint` is not set, for the endpoint. Without it the official exporters read
   * process.env themselves (endpoint, headers, timeout, compression, TLS files).
   */
  env?: NodeJS.ProcessEnv;
}

/**
 * Spans -> OTLP through the official exporters (what @opentelemetry/exporter-trace-otlp-grpc and
 * -proto build, with Kalman's serializer: see otlp-exporters.ts), behind a bounded queue with
 * batching and retry. One batch is in flight at a time.
 */
export class OtlpSpanExporter extends BatchingSink {
  readonly kind: "otlp-grpc" | "otlp-http";
  readonly target: string;
  readonly protocol: OtlpProtocol;
  private readonly connection: OtlpConnection<ReadableSpan>;

  constructor(options: OtlpExporterOptions = {}) {
    super(options);
    this.protocol = resolveProtocol(options, options.env ?? process.env, (msg, fields) =>
      this.logger.warn(msg, fields),
    );
    const t = traceTransport(this.protocol, options);
    this.kind = t.kind;
    this.target = t.target;
    this.connection = new OtlpConnection(this.protocol, t.make);
  }

  protected send(batch: ReadableSpan[]): Promise<SendResult> {
    return this.connection.send(batch);
  }

  protected override async flushTransport(): Promise<void> {
    await this.connection.flush();
  }

  protected async closeTransport(): Promise<void> {
    await this.connection.shutdown();
  }
}

/** The protocol a configuration resolves to (config, then env, then inferred from the endpoint's port). */
export function resolveProtocol(
  options: { protocol?: string; endpoint?: string },
  env: NodeJS.ProcessEnv = process.env,
  warn?: (msg: string, fields?: object) => void,
): OtlpProtocol {
  const raw = (
    options.protocol ??
    nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ??
    nonBlank(env.OTEL_EXPORTER_OTLP_PROTOCOL)
  )?.trim();
  if (raw === "grpc" || raw === "http/protobuf") return raw;
  if (raw !== undefined) {
    warn?.("unsupported OTLP protocol, using http/protobuf", { protocol: raw });
    return "http/protobuf";
  }
  const endpoint =
    options.endpoint ?? nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return endpoint !== undefined && portOf(endpoint) === "4317" ? "grpc" : "http/protobuf";
}

function portOf(endpoint: string): string | undefined {
  const s = endpoint.trim();
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`).port || undefined;
  } catch {
    return undefined;
  }
}

export { httpTracesUrl, traceEndpointFromEnv } from "./otlp-exporters.js";
