import { DisabledSink, exporterIsNone } from "./disabled-sink.js";
import { type OtlpExporterOptions, OtlpSpanExporter } from "./exporter.js";
import { type FileSinkOptions, OtlpJsonFileSink } from "./file-sink.js";
import type { SpanSink } from "./sink.js";

export { DisabledSink, exporterIsNone } from "./disabled-sink.js";
export { encodeTraceRequest } from "./encode.js";
export {
  httpTracesUrl,
  type OtlpExporterOptions,
  type OtlpProtocol,
  OtlpSpanExporter,
  resolveProtocol,
} from "./exporter.js";
export { type FileSinkOptions, OtlpJsonFileSink } from "./file-sink.js";
export type { Logger } from "./logger.js";
export {
  createMetricsPipeline,
  httpMetricsUrl,
  type MetricsPipeline,
  type MetricsPipelineConfig,
  type MetricsPipelineStats,
  resolveMetricsProtocol,
} from "./metrics/pipeline.js";
export { type PrometheusOptions, prometheusName } from "./metrics/prometheus.js";
export {
  MetricsRecorder,
  type MetricsRecorderOptions,
  type MetricsRecorderStats,
  type ServiceNames,
  type ServiceOf,
} from "./metrics/recorder.js";
export {
  type ConnectionType,
  DB_DURATION_BUCKETS,
  HTTP_DURATION_BUCKETS,
  RED_METRICS,
  SERVICE_GRAPH_METRICS,
} from "./metrics/semconv.js";
export type { MetricExportStats } from "./metrics/service-resources.js";
export {
  EndpointTemplater,
  type EndpointTemplaterOptions,
  type EndpointTemplaterStats,
  ID_PLACEHOLDER,
  isIdSegment,
  OVERFLOW_ENDPOINT,
  templatePath,
} from "./metrics/templating.js";
export type { BatchingOptions, SpanSink, SpanSinkStats } from "./sink.js";
export { KALMAN_SCOPE, resourceAttributesFromEnv, SpanConverter, type SpanConverterOptions } from "./spans.js";
export { VERSION } from "./version.js";
export { warmUpEncoders } from "./warm-up.js";

export interface SpanSinkConfig extends OtlpExporterOptions, FileSinkOptions {
  /**
   * "otlp": always export over OTLP (to the configured endpoint, else the exporter's localhost default).
   * "file": always write OTLP-JSON lines. "auto" (default): OTLP when an endpoint is configured
   * (config `endpoint`, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) or
   * OTEL_TRACES_EXPORTER=otlp, else the file sink in `dir` (default "kalman-data"). "none" (or, in
   * "auto", OTEL_TRACES_EXPORTER=none): a sink that takes nothing.
   */
  sink?: "auto" | "otlp" | "file" | "none";
}

/** Picks the sink: the OTLP exporter (gRPC or HTTP/protobuf) when an endpoint is configured, else the file sink. */
export function createSpanSink(config: SpanSinkConfig = {}): SpanSink {
  const env = config.env ?? process.env;
  const mode = config.sink ?? "auto";
  if (mode === "none" || (mode === "auto" && exporterIsNone(env.OTEL_TRACES_EXPORTER)))
    return new DisabledSink("(OTEL_TRACES_EXPORTER=none)");
  if (mode === "otlp" || (mode === "auto" && otlpConfigured(config, env))) return new OtlpSpanExporter(config);
  return new OtlpJsonFileSink(config);
}

function otlpConfigured(config: SpanSinkConfig, env: NodeJS.ProcessEnv): boolean {
  if (config.endpoint?.trim()) return true;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()) return true;
  return env.OTEL_TRACES_EXPORTER?.split(",").some((e) => e.trim() === "otlp") ?? false;
}

export {
  type LogBatchingOptions,
  LogBatchingSink,
  type LogSink,
  type LogSinkStats,
} from "./logs/batching.js";
export {
  createLogSink,
  httpLogsUrl,
  type LogFileSinkOptions,
  type LogSinkConfig,
  OtlpJsonLogFileSink,
  OtlpLogExporter,
  type OtlpLogExporterOptions,
  resolveLogsProtocol,
} from "./logs/exporter.js";
export { flowLogAttributes, flowLogBody, flowLogRecord, NETWORK_OBSERVER } from "./logs/flows.js";
export {
  LogRecordConverter,
  type LogRecordConverterOptions,
  logAttributes,
  logBody,
  severityOf,
} from "./logs/records.js";
export {
  type FlowMetricsOptions,
  FlowMetricsRecorder,
  type FlowMetricsStats,
  TCP_LATENCY_BUCKETS,
} from "./metrics/flow-metrics.js";
