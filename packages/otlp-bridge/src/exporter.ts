import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { compressionOf, grpcMetadata, type OfficialExporter, OtlpConnection } from "./otlp-connection.js";
import { grpcTraceExporter, httpTraceExporter } from "./otlp-exporters.js";
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
    const env = options.env ?? process.env;
    this.protocol = resolveProtocol(options, env, (msg, fields) => this.logger.warn(msg, fields));
    const common = {
      timeoutMillis: options.timeoutMillis,
      // one batch in flight from our loop, plus room for a forced flush
      concurrencyLimit: 2,
    };
    let make: () => OfficialExporter<ReadableSpan>;
    if (this.protocol === "grpc") {
      this.kind = "otlp-grpc";
      const url = options.endpoint ?? (options.env ? traceEndpointFromEnv(env, "grpc") : undefined);
      this.target = url ?? traceEndpointFromEnv(env, "grpc") ?? "http://localhost:4317";
      make = () =>
        grpcTraceExporter({
          ...common,
          url,
          compression: compressionOf(options.compression),
          metadata: options.headers ? grpcMetadata(options.headers) : undefined,
        });
    } else {
      this.kind = "otlp-http";
      const url =
        options.endpoint !== undefined
          ? httpTracesUrl(options.endpoint)
          : options.env
            ? traceEndpointFromEnv(env, "http/protobuf")
            : undefined;
      this.target = url ?? traceEndpointFromEnv(env, "http/protobuf") ?? "http://localhost:4318/v1/traces";
      make = () =>
        httpTraceExporter({
          ...common,
          url,
          headers: options.headers,
          compression: compressionOf(options.compression),
        });
    }
    this.connection = new OtlpConnection(this.protocol, make);
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

/** The traces endpoint configured in the environment, as the official exporter would derive it. */
export function traceEndpointFromEnv(env: NodeJS.ProcessEnv, protocol: OtlpProtocol): string | undefined {
  const specific = nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (specific) return specific.trim();
  const general = nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT)?.trim();
  if (!general) return undefined;
  if (protocol === "grpc") return general;
  return `${general.endsWith("/") ? general : `${general}/`}v1/traces`;
}

/** A base URL gets `/v1/traces`; a URL that already has a path is used as is. */
export function httpTracesUrl(endpoint: string): string {
  const trimmed = endpoint.trim();
  try {
    const u = new URL(trimmed);
    if (u.pathname === "" || u.pathname === "/") {
      u.pathname = "/v1/traces";
      return u.toString();
    }
    return trimmed;
  } catch {
    return trimmed;
  }
}

function nonBlank(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}

function portOf(endpoint: string): string | undefined {
  const s = endpoint.trim();
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`).port || undefined;
  } catch {
    return undefined;
  }
}
