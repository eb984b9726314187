// The official OTLP exporters (configuration from OTEL_EXPORTER_OTLP_*, HTTP and gRPC transports,
// retries, timeouts, compression, TLS) with Kalman's serializers in place of the transformer's: they
// take items encoded when they were queued (encoding/items.ts) and put on the wire the same bytes the
// official exporters would for those spans and log records (encoding.test.ts compares them).
import type { OTLPExporterConfigBase } from "@opentelemetry/otlp-exporter-base";
import { OTLPExporterBase } from "@opentelemetry/otlp-exporter-base";
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from "@opentelemetry/otlp-exporter-base/node-http";
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  type OTLPGRPCExporterConfigNode,
} from "@opentelemetry/otlp-grpc-exporter-base";
import { ProtobufLogsSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { EncodedItem } from "./encoding/items.js";
import { protoLogsRequest, protoTracesRequest } from "./encoding/otlp-proto.js";
import type { OfficialExporter } from "./otlp-connection.js";

type HttpConfig = OTLPExporterConfigBase & { headers?: Record<string, string>; compression?: unknown };

const traceSerializer = {
  serializeRequest: (spans: EncodedItem[]) => protoTracesRequest(spans),
  deserializeResponse: ProtobufTraceSerializer.deserializeResponse,
};
const logSerializer = {
  serializeRequest: (logs: EncodedItem[]) => protoLogsRequest(logs),
  deserializeResponse: ProtobufLogsSerializer.deserializeResponse,
};
const PROTOBUF = { "Content-Type": "application/x-protobuf" };
/** The exporters' self-observability counts items per request (as the transformer's helpers do). */
const spanCount = { name: "span" as const, countItems: (items: EncodedItem[]) => items.length };
const logCount = { name: "log" as const, countItems: (items: EncodedItem[]) => items.length };

/** What @opentelemetry/exporter-trace-otlp-proto builds, with Kalman's protobuf writer. */
export function httpTraceExporter(config: HttpConfig): OfficialExporter<EncodedItem> {
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(config as never, "TRACES", "v1/traces", PROTOBUF),
      traceSerializer,
      "otlp_http_span_exporter",
      spanCount,
      undefined,
    ),
  );
}

/** What @opentelemetry/exporter-trace-otlp-grpc builds, with Kalman's protobuf writer. */
export function grpcTraceExporter(config: OTLPGRPCExporterConfigNode): OfficialExporter<EncodedItem> {
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(config, "TRACES"),
      traceSerializer,
      "otlp_grpc_span_exporter",
      spanCount,
      undefined,
      "TraceExportService",
      "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    ),
  );
}

/** What @opentelemetry/exporter-logs-otlp-proto builds, with Kalman's protobuf writer. */
export function httpLogExporter(config: HttpConfig): OfficialExporter<EncodedItem> {
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(config as never, "LOGS", "v1/logs", PROTOBUF),
      logSerializer,
      "otlp_http_log_exporter",
      logCount,
      undefined,
    ),
  );
}

/** What @opentelemetry/exporter-logs-otlp-grpc builds, with Kalman's protobuf writer. */
export function grpcLogExporter(config: OTLPGRPCExporterConfigNode): OfficialExporter<EncodedItem> {
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(config, "LOGS"),
      logSerializer,
      "otlp_grpc_log_exporter",
      logCount,
      undefined,
      "LogsExportService",
      "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    ),
  );
}
