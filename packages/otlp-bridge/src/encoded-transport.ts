import { OTLPExporterBase, type OTLPExporterNodeConfigBase } from "@opentelemetry/otlp-exporter-base";
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from "@opentelemetry/otlp-exporter-base/node-http";
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
  type OTLPGRPCExporterConfigNode,
} from "@opentelemetry/otlp-grpc-exporter-base";
import { ProtobufLogsSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";

/** An OTLP export request already encoded as protobuf, and how many spans or log records it holds. */
export interface EncodedRequest {
  bytes: Uint8Array;
  count: number;
}

type Signal = "traces" | "logs";

const SIGNALS = {
  traces: {
    env: "TRACES",
    path: "v1/traces",
    item: "span",
    grpcService: "TraceExportService",
    grpcMethod: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    deserialize: (data: Uint8Array) => ProtobufTraceSerializer.deserializeResponse(data),
  },
  logs: {
    env: "LOGS",
    path: "v1/logs",
    item: "log",
    grpcService: "LogsExportService",
    grpcMethod: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    deserialize: (data: Uint8Array) => ProtobufLogsSerializer.deserializeResponse(data),
  },
} as const;

/**
 * The official OTLP exporter of a signal, built the way @opentelemetry/exporter-trace-otlp-grpc /
 * -proto (and the logs ones) build theirs, from the same public pieces (configuration from
 * OTEL_EXPORTER_OTLP_* env, grpc-js / node:http transport, retries, concurrency limit, partial-success
 * handling), with one difference: the request it is handed is already encoded (see encoding/), so the
 * serializer passes the bytes through instead of walking ReadableSpans again.
 */
export function encodedGrpcExporter(
  signal: Signal,
  config: OTLPGRPCExporterConfigNode,
): OTLPExporterBase<EncodedRequest> {
  const s = SIGNALS[signal];
  return new OTLPExporterBase(
    createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(config, s.env),
      { serializeRequest: (r: EncodedRequest) => r.bytes, deserializeResponse: s.deserialize },
      `otlp_grpc_${s.item}_exporter`,
      { name: s.item, countItems: (r: EncodedRequest) => r.count },
      undefined,
      s.grpcService,
      s.grpcMethod,
    ),
  );
}

/** As encodedGrpcExporter, over HTTP/protobuf (POST <endpoint>/v1/traces or /v1/logs). */
export function encodedHttpExporter(
  signal: Signal,
  config: OTLPExporterNodeConfigBase,
): OTLPExporterBase<EncodedRequest> {
  const s = SIGNALS[signal];
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(config, s.env, s.path, { "Content-Type": "application/x-protobuf" }),
      { serializeRequest: (r: EncodedRequest) => r.bytes, deserializeResponse: s.deserialize },
      `otlp_http_${s.item}_exporter`,
      { name: s.item, countItems: (r: EncodedRequest) => r.count },
      undefined,
    ),
  );
}
