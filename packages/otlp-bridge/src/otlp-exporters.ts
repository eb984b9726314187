// The official OTLP exporters (configuration from OTEL_EXPORTER_OTLP_*, HTTP and gRPC transports,
// retries, timeouts, compression, TLS) with Kalman's serializers in place of the transformer's: the
// same bytes (encoding.test.ts compares them), written in one pass into a reused buffer.
import type { OTLPExporterConfigBase } from "@opentelemetry/otlp-exporter-base";
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from "@opentelemetry/otlp-exporter-base/node-http";
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  type OTLPGRPCExporterConfigNode,
} from "@opentelemetry/otlp-grpc-exporter-base";
import {
  type IExporterMetricsHelper,
  type ISerializer,
  LogsExporterMetricsHelper,
  ProtobufLogsSerializer,
  ProtobufTraceSerializer,
  TraceExporterMetricsHelper,
} from "@opentelemetry/otlp-transformer";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { serializeLogs, serializeTraces } from "./encoding/otlp-proto.js";
import type { OtlpProtocol } from "./exporter.js";
import { compressionOf, grpcMetadata, MAX_CONCURRENT_EXPORTS, type OfficialExporter } from "./otlp-connection.js";

type HttpConfig = OTLPExporterConfigBase & { headers?: Record<string, string>; compression?: unknown };

/** What the official exporter packages pass for one signal, with Kalman's serializer. */
interface Signal<T> {
  env: "TRACES" | "LOGS";
  path: string;
  serializer: ISerializer<T[], unknown>;
  counts: IExporterMetricsHelper<T[]>;
  httpComponent: string;
  grpcComponent: string;
  grpcService: string;
  grpcMethod: string;
}

const TRACES: Signal<ReadableSpan> = {
  env: "TRACES",
  path: "v1/traces",
  serializer: { serializeRequest: serializeTraces, deserializeResponse: ProtobufTraceSerializer.deserializeResponse },
  counts: TraceExporterMetricsHelper,
  httpComponent: "otlp_http_span_exporter",
  grpcComponent: "otlp_grpc_span_exporter",
  grpcService: "TraceExportService",
  grpcMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
};

const LOGS: Signal<ReadableLogRecord> = {
  env: "LOGS",
  path: "v1/logs",
  serializer: { serializeRequest: serializeLogs, deserializeResponse: ProtobufLogsSerializer.deserializeResponse },
  counts: LogsExporterMetricsHelper,
  httpComponent: "otlp_http_log_exporter",
  grpcComponent: "otlp_grpc_log_exporter",
  grpcService: "LogsExportService",
  grpcMethod: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

const PROTOBUF = { "Content-Type": "application/x-protobuf" };

function httpExporter<T>(s: Signal<T>, config: HttpConfig): OfficialExporter<T> {
  const options = convertLegacyHttpOptions(config as never, s.env, s.path, PROTOBUF);
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(options, s.serializer, s.httpComponent, s.counts, undefined),
  );
}

function grpcExporter<T>(s: Signal<T>, config: OTLPGRPCExporterConfigNode): OfficialExporter<T> {
  const options = convertLegacyOtlpGrpcOptions(config, s.env);
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      options,
      s.serializer,
      s.grpcComponent,
      s.counts,
      undefined,
      s.grpcService,
      s.grpcMethod,
    ),
  );
}

/** What @opentelemetry/exporter-trace-otlp-proto builds, with Kalman's protobuf writer. */
export const httpTraceExporter = (config: HttpConfig) => httpExporter(TRACES, config);
/** What @opentelemetry/exporter-logs-otlp-proto builds, with Kalman's protobuf writer. */
export const httpLogExporter = (config: HttpConfig) => httpExporter(LOGS, config);

/** Where one signal goes and how: the sink's kind, its target for people, and a factory of exporters. */
export interface OtlpTransport<T> {
  kind: "otlp-grpc" | "otlp-http";
  target: string;
  make: () => OfficialExporter<T>;
}

/** Where and how a span or log exporter sends (SIGNAL: TRACES or LOGS). */
export interface OtlpTransportOptions {
  /**
   * grpc: `http://host:4317` (http:// = plaintext, https:// or no scheme = TLS, as in the official
   * exporter). http/protobuf: a base URL (`http://host:4318`, `/v1/traces` or `/v1/logs` is appended)
   * or a full URL with a path (used as is). Default: what the official exporter reads from
   * OTEL_EXPORTER_OTLP_SIGNAL_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4317 / :4318.
   */
  endpoint?: string;
  /** Extra request headers (gRPC metadata for grpc). Merged with OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS. */
  headers?: Record<string, string>;
  /** Per-export timeout in ms (default: OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT, else 10000). */
  timeoutMillis?: number;
  /** Default: OTEL_EXPORTER_OTLP_[SIGNAL_]COMPRESSION, else none. */
  compression?: "gzip" | "none";
  /**
   * Injected environment (tests, or config layered by the agent): used for the protocol choice and,
   * when `endpoint` is not set, for the endpoint. Without it the official exporters read
   * process.env themselves (endpoint, headers, timeout, compression, TLS files).
   */
  env?: NodeJS.ProcessEnv;
}

function transport<T>(s: Signal<T>, protocol: OtlpProtocol, options: OtlpTransportOptions): OtlpTransport<T> {
  const env = options.env ?? process.env;
  // the sink's loop bounds the batches in flight (maxConcurrentExports); room for one forced flush more
  const common = { timeoutMillis: options.timeoutMillis, concurrencyLimit: MAX_CONCURRENT_EXPORTS + 1 };
  const compression = compressionOf(options.compression);
  if (protocol === "grpc") {
    const url = options.endpoint ?? (options.env ? endpointFromEnv(env, protocol, s) : undefined);
    const metadata = options.headers ? grpcMetadata(options.headers) : undefined;
    return {
      kind: "otlp-grpc",
      target: url ?? endpointFromEnv(env, protocol, s) ?? "http://localhost:4317",
      make: () => grpcExporter(s, { ...common, url, compression, metadata }),
    };
  }
  const url =
    options.endpoint !== undefined
      ? signalUrl(options.endpoint, s.path)
      : options.env
        ? endpointFromEnv(env, protocol, s)
        : undefined;
  return {
    kind: "otlp-http",
    target: url ?? endpointFromEnv(env, protocol, s) ?? `http://localhost:4318/${s.path}`,
    make: () => httpExporter(s, { ...common, url, headers: options.headers, compression }),
  };
}

export const traceTransport = (protocol: OtlpProtocol, options: OtlpTransportOptions) =>
  transport(TRACES, protocol, options);
export const logTransport = (protocol: OtlpProtocol, options: OtlpTransportOptions) =>
  transport(LOGS, protocol, options);

/** A signal's endpoint from the environment, as the official exporter derives it. */
function endpointFromEnv<T>(env: NodeJS.ProcessEnv, protocol: OtlpProtocol, s: Signal<T>): string | undefined {
  const specific = nonBlank(env[`OTEL_EXPORTER_OTLP_${s.env}_ENDPOINT`]);
  if (specific) return specific.trim();
  const general = nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT)?.trim();
  if (!general) return undefined;
  if (protocol === "grpc") return general;
  return `${general.endsWith("/") ? general : `${general}/`}${s.path}`;
}

/** A base URL gets the signal's path; a URL that already has a path is used as is. */
function signalUrl(endpoint: string, path: string): string {
  const trimmed = endpoint.trim();
  try {
    const u = new URL(trimmed);
    if (u.pathname === "" || u.pathname === "/") {
      u.pathname = `/${path}`;
      return u.toString();
    }
    return trimmed;
  } catch {
    return trimmed;
  }
}

/** The traces endpoint configured in the environment, as the official exporter would derive it. */
export const traceEndpointFromEnv = (env: NodeJS.ProcessEnv, protocol: OtlpProtocol) =>
  endpointFromEnv(env, protocol, TRACES);
/** A base URL gets `/v1/traces`; a URL that already has a path is used as is. */
export const httpTracesUrl = (endpoint: string) => signalUrl(endpoint, TRACES.path);
/** A base URL gets `/v1/logs`; a URL that already has a path is used as is. */
export const httpLogsUrl = (endpoint: string) => signalUrl(endpoint, LOGS.path);

export function nonBlank(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}
