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

const traceSerializer = {
  serializeRequest: (spans: ReadableSpan[]) => serializeTraces(spans),
  deserializeResponse: ProtobufTraceSerializer.deserializeResponse,
};
const logSerializer = {
  serializeRequest: (logs: ReadableLogRecord[]) => serializeLogs(logs),
  deserializeResponse: ProtobufLogsSerializer.deserializeResponse,
};
const PROTOBUF = { "Content-Type": "application/x-protobuf" };

/** What @opentelemetry/exporter-trace-otlp-proto builds, with Kalman's protobuf writer. */
export function httpTraceExporter(config: HttpConfig): OfficialExporter<ReadableSpan> {
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(config as never, "TRACES", "v1/traces", PROTOBUF),
      traceSerializer,
      "otlp_http_span_exporter",
      TraceExporterMetricsHelper,
      undefined,
    ),
  );
}

/** What @opentelemetry/exporter-trace-otlp-grpc builds, with Kalman's protobuf writer. */
export function grpcTraceExporter(config: OTLPGRPCExporterConfigNode): OfficialExporter<ReadableSpan> {
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(config, "TRACES"),
      traceSerializer,
      "otlp_grpc_span_exporter",
      TraceExporterMetricsHelper,
      undefined,
      "TraceExportService",
      "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    ),
  );
}

/** What @opentelemetry/exporter-logs-otlp-proto builds, with Kalman's protobuf writer. */
export function httpLogExporter(config: HttpConfig): OfficialExporter<ReadableLogRecord> {
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(config as never, "LOGS", "v1/logs", PROTOBUF),
      logSerializer,
      "otlp_http_log_exporter",
      LogsExporterMetricsHelper,
      undefined,
    ),
  );
}

/** What @opentelemetry/exporter-logs-otlp-grpc builds, with Kalman's protobuf writer. */
export function grpcLogExporter(config: OTLPGRPCExporterConfigNode): OfficialExporter<ReadableLogRecord> {
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(config, "LOGS"),
      logSerializer,
      "otlp_grpc_log_exporter",
      LogsExporterMetricsHelper,
      undefined,
      "LogsExportService",
      "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    ),
  );
}
