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
import type { OfficialExporter } from "./otlp-connection.js";

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
/** What @opentelemetry/exporter-trace-otlp-grpc builds, with Kalman's protobuf writer. */
export const grpcTraceExporter = (config: OTLPGRPCExporterConfigNode) => grpcExporter(TRACES, config);
/** What @opentelemetry/exporter-logs-otlp-proto builds, with Kalman's protobuf writer. */
export const httpLogExporter = (config: HttpConfig) => httpExporter(LOGS, config);
/** What @opentelemetry/exporter-logs-otlp-grpc builds, with Kalman's protobuf writer. */
export const grpcLogExporter = (config: OTLPGRPCExporterConfigNode) => grpcExporter(LOGS, config);
