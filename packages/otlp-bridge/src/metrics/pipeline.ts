// MeterProvider + readers: OTLP (official gRPC / HTTP-protobuf metric exporters) every N seconds, and an
// optional Prometheus scrape endpoint. The recorder turns request records into the metrics.
import { hostname } from "node:os";
import type { RequestRecord } from "@kalman/flow-aggregator";
import type { Attributes } from "@opentelemetry/api";
import { OTLPMetricExporter as GrpcMetricExporter } from "@opentelemetry/exporter-metrics-otlp-grpc";
import { OTLPMetricExporter as HttpProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { createEmptyMetadata } from "@opentelemetry/otlp-grpc-exporter-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  type AggregationTemporality,
  type IMetricReader,
  type InstrumentType,
  MeterProvider,
  type MetricProducer,
  PeriodicExportingMetricReader,
  type ViewOptions,
} from "@opentelemetry/sdk-metrics";
import { type OtlpProtocol, resolveProtocol } from "../exporter.js";
import { stderrWarnLogger } from "../logger.js";
import { errorMessage } from "../sink.js";
import { resourceAttributesFromEnv } from "../spans.js";
import { VERSION } from "../version.js";
import { PrometheusEndpoint, type PrometheusOptions } from "./prometheus.js";
import { MetricsRecorder, type MetricsRecorderOptions, type MetricsRecorderStats, type ServiceOf } from "./recorder.js";
import { type MetricExporterLike, type MetricExportStats, ServiceResourceExporter } from "./service-resources.js";

export interface MetricsPipelineConfig extends MetricsRecorderOptions {
  /**
   * "otlp": always export over OTLP (to the configured endpoint, else the exporter's localhost default).
   * "none": no OTLP export (Prometheus only, if on). "auto" (default): OTEL_METRICS_EXPORTER when set
   * (otlp in its list -> OTLP); else OTLP when an endpoint is configured (config `endpoint`,
   * OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT); else none.
   * There is no file fallback for metrics: with no endpoint they go to Prometheus (if on) or nowhere.
   */
  exporter?: "auto" | "otlp" | "none";
  /** Default: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, else by port (4317 -> grpc). */
  protocol?: OtlpProtocol;
  /** grpc: `http://host:4317`; http/protobuf: a base URL (`/v1/metrics` is appended) or a full URL. */
  endpoint?: string;
  /** Extra headers / gRPC metadata (merged with OTEL_EXPORTER_OTLP_[METRICS_]HEADERS by the exporter). */
  headers?: Record<string, string>;
  /** Per-export timeout in ms (default: OTEL_EXPORTER_OTLP_[METRICS_]TIMEOUT, else 10000). */
  timeoutMillis?: number;
  compression?: "gzip" | "none";
  /** Export interval in ms (default OTEL_METRIC_EXPORT_INTERVAL, else 10000). */
  exportIntervalMillis?: number;
  /**
   * Prometheus scrape endpoint: OFF by default. `{ port }` turns it on, bound to 127.0.0.1 unless
   * `host` says otherwise; `false` keeps it off even when OTEL_METRICS_EXPORTER lists "prometheus"
   * (which otherwise turns it on at OTEL_EXPORTER_PROMETHEUS_HOST:OTEL_EXPORTER_PROMETHEUS_PORT,
   * default 127.0.0.1:9464).
   */
  prometheus?: PrometheusOptions | false;
  /**
   * Resource attributes of an observed service (process, container, K8s tags: the agent's
   * ServiceResolver.attributesOfService), added to that service's resource on OTLP export.
   */
  serviceResourceAttributes?: (service: string) => Attributes | undefined;
  /** Attributes on every resource (default: the agent's OTEL_RESOURCE_ATTRIBUTES). */
  resourceAttributes?: Attributes;
  /** host.name on every resource (default os.hostname(); null leaves it out). */
  hostName?: string | null;
  /** Environment for OTEL_* settings (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface MetricsPipelineStats extends MetricsRecorderStats {
  export: MetricExportStats;
}

/** What createMetricsPipeline returns. */
export interface MetricsPipeline {
  /** "otlp-grpc", "otlp-http" or "none" (no OTLP export). */
  readonly kind: "otlp-grpc" | "otlp-http" | "none";
  /** OTLP destination for logs and the CLI ("none" when off). */
  readonly target: string;
  readonly meterProvider: MeterProvider;
  readonly recorder: MetricsRecorder;
  /** Resolves once the Prometheus endpoint is listening (or failed, logged); at once when it is off. */
  readonly ready: Promise<void>;
  /** http://127.0.0.1:<port>/metrics once listening; undefined when off or not bound. */
  readonly prometheusUrl: string | undefined;
  /** recorder.record, skipped when the metrics go nowhere. Never throws. */
  record(records: readonly RequestRecord[], serviceOf: ServiceOf): void;
  /** Collects and exports now (OTLP); resolves after one attempt. */
  forceFlush(): Promise<void>;
  /** Final export, then closes the exporters and the Prometheus server. Never throws. */
  shutdown(): Promise<void>;
  stats(): MetricsPipelineStats;
}

/**
 * Builds the metrics side of the bridge: a MeterProvider (one resource per observed service on
 * OTLP), the RED / service graph recorder, a PeriodicExportingMetricReader over the official OTLP
 * metric exporter, and an optional Prometheus endpoint. Binds no port unless Prometheus is asked for.
 */
export function createMetricsPipeline(config: MetricsPipelineConfig = {}): MetricsPipeline {
  const env = config.env ?? process.env;
  const logger = config.logger ?? stderrWarnLogger;
  const maxSeries = Math.max(1, Math.floor(config.maxSeriesPerMetric ?? 2000));

  // the recorder is made after the provider (it needs it); its measurements reach each reader
  // through a producer ("ids" encoding), looked up at the first collection
  let recorderRef: MetricsRecorder | undefined;
  const producerFor = (temporalityOf?: (type: InstrumentType) => AggregationTemporality): MetricProducer => {
    let inner: MetricProducer | undefined;
    return {
      async collect(options) {
        inner ??= recorderRef?.metricProducer(temporalityOf);
        if (inner) return inner.collect(options);
        return { resourceMetrics: { resource: EMPTY_RESOURCE, scopeMetrics: [] }, errors: [] };
      },
    };
  };

  const readers: IMetricReader[] = [];
  let exporter: ServiceResourceExporter | undefined;
  let kind: MetricsPipeline["kind"] = "none";
  let target = "none";
  if (otlpWanted(config, env)) {
    const otlp = buildOtlpExporter(config, env);
    kind = otlp.kind;
    target = otlp.target;
    exporter = new ServiceResourceExporter(otlp.exporter, logger, target, 1024, config.serviceResourceAttributes);
    const interval = positive(config.exportIntervalMillis) ?? positive(num(env.OTEL_METRIC_EXPORT_INTERVAL)) ?? 10_000;
    const timeout = Math.min(positive(num(env.OTEL_METRIC_EXPORT_TIMEOUT)) ?? 30_000, interval);
    const otlpExporter = exporter;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter,
        exportIntervalMillis: interval,
        exportTimeoutMillis: timeout,
        metricProducers: [producerFor((t) => otlpExporter.selectAggregationTemporality(t))],
      }),
    );
  }

  const promOptions = prometheusOptions(config, env);
  const prometheus = promOptions ? new PrometheusEndpoint(promOptions, logger, [producerFor()]) : undefined;
  // exporter-prometheus is built against sdk-metrics 2.12.0; its reader works with the 2.12.1 provider
  if (prometheus) readers.push(prometheus.reader as unknown as IMetricReader);

  const resource = resourceFromAttributes(baseResourceAttributes(config, env));
  // SDK-level backstop for the recorder's own per-metric cap (+1 for its overflow series, +1 for the SDK's)
  const views: ViewOptions[] = [{ instrumentName: "*", aggregationCardinalityLimit: maxSeries + 2 }];
  const meterProvider = new MeterProvider({ resource, views, readers });
  const recorder = new MetricsRecorder(meterProvider, { ...config, logger, maxSeriesPerMetric: maxSeries });
  recorderRef = recorder;
  const enabled = readers.length > 0;
  if (!enabled) logger.info("metrics: no OTLP endpoint and no Prometheus endpoint; metrics are not exported");

  const ready = prometheus ? prometheus.start().then(() => undefined) : Promise.resolve();
  let closed = false;

  return {
    kind,
    target,
    meterProvider,
    recorder,
    ready,
    get prometheusUrl() {
      return prometheus?.url;
    },
    record(records, serviceOf) {
      if (!enabled || closed) return;
      recorder.record(records, serviceOf);
    },
    async forceFlush() {
      try {
        await meterProvider.forceFlush();
      } catch (err) {
        logger.warn("metrics flush failed", { target, error: errorMessage(err) });
      }
    },
    async shutdown() {
      if (closed) return;
      closed = true;
      await ready;
      try {
        await meterProvider.shutdown();
      } catch (err) {
        logger.warn("metrics shutdown failed", { target, error: errorMessage(err) });
      }
      await prometheus?.close();
    },
    stats() {
      return { ...recorder.stats(), export: exporter?.stats() ?? { exported: 0, failedExports: 0 } };
    },
  };
}

/** The metrics OTLP protocol: config, OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, else by port. */
export function resolveMetricsProtocol(
  options: { protocol?: string; endpoint?: string },
  env: NodeJS.ProcessEnv = process.env,
  warn?: (msg: string, fields?: object) => void,
): OtlpProtocol {
  // the trace-side resolution, fed the METRICS_ variables in place of the TRACES_ ones
  return resolveProtocol(
    {
      protocol: options.protocol ?? nonBlank(env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL),
      endpoint: options.endpoint ?? nonBlank(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT),
    },
    { ...env, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: undefined, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: undefined },
    warn,
  );
}

/** A base URL gets `/v1/metrics`; a URL that already has a path is used as is. */
export function httpMetricsUrl(endpoint: string): string {
  const trimmed = endpoint.trim();
  try {
    const u = new URL(trimmed);
    if (u.pathname === "" || u.pathname === "/") {
      u.pathname = "/v1/metrics";
      return u.toString();
    }
    return trimmed;
  } catch {
    return trimmed;
  }
}

/** The metrics endpoint configured in the environment, as the official exporter would derive it. */
export function metricsEndpointFromEnv(env: NodeJS.ProcessEnv, protocol: OtlpProtocol): string | undefined {
  const specific = nonBlank(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
  if (specific) return specific.trim();
  const general = nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT)?.trim();
  if (!general) return undefined;
  if (protocol === "grpc") return general;
  return `${general.endsWith("/") ? general : `${general}/`}v1/metrics`;
}

function otlpWanted(config: MetricsPipelineConfig, env: NodeJS.ProcessEnv): boolean {
  const mode = config.exporter ?? "auto";
  if (mode !== "auto") return mode === "otlp";
  const listed = nonBlank(env.OTEL_METRICS_EXPORTER);
  if (listed !== undefined) return listed.split(",").some((e) => e.trim() === "otlp");
  if (config.endpoint?.trim()) return true;
  return Boolean(nonBlank(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) || nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT));
}

function prometheusOptions(config: MetricsPipelineConfig, env: NodeJS.ProcessEnv): PrometheusOptions | undefined {
  if (config.prometheus === false) return undefined;
  if (config.prometheus) return config.prometheus;
  const listed = nonBlank(env.OTEL_METRICS_EXPORTER);
  if (!listed?.split(",").some((e) => e.trim() === "prometheus")) return undefined;
  const port = num(env.OTEL_EXPORTER_PROMETHEUS_PORT);
  return {
    host: nonBlank(env.OTEL_EXPORTER_PROMETHEUS_HOST)?.trim() ?? "127.0.0.1",
    port: port !== undefined && port >= 0 && port < 65536 ? Math.floor(port) : 9464,
  };
}

function buildOtlpExporter(
  config: MetricsPipelineConfig,
  env: NodeJS.ProcessEnv,
): { kind: "otlp-grpc" | "otlp-http"; target: string; exporter: MetricExporterLike } {
  const protocol = resolveMetricsProtocol(config, env, (msg, fields) =>
    (config.logger ?? stderrWarnLogger).warn(msg, fields),
  );
  const compression =
    config.compression === undefined
      ? undefined
      : config.compression === "gzip"
        ? CompressionAlgorithm.GZIP
        : CompressionAlgorithm.NONE;
  const common = { timeoutMillis: config.timeoutMillis, compression, concurrencyLimit: 8 };
  if (protocol === "grpc") {
    const url = config.endpoint ?? (config.env ? metricsEndpointFromEnv(env, "grpc") : undefined);
    let metadata: ReturnType<typeof createEmptyMetadata> | undefined;
    if (config.headers) {
      metadata = createEmptyMetadata();
      for (const [k, v] of Object.entries(config.headers)) metadata.set(k, v);
    }
    return {
      kind: "otlp-grpc",
      target: url ?? metricsEndpointFromEnv(env, "grpc") ?? "http://localhost:4317",
      exporter: new GrpcMetricExporter({ ...common, url, metadata }) as unknown as MetricExporterLike,
    };
  }
  const url =
    config.endpoint !== undefined
      ? httpMetricsUrl(config.endpoint)
      : config.env
        ? metricsEndpointFromEnv(env, "http/protobuf")
        : undefined;
  return {
    kind: "otlp-http",
    target: url ?? metricsEndpointFromEnv(env, "http/protobuf") ?? "http://localhost:4318/v1/metrics",
    exporter: new HttpProtoMetricExporter({ ...common, url, headers: config.headers }) as unknown as MetricExporterLike,
  };
}

/** The agent's resource: OTEL_RESOURCE_ATTRIBUTES < host.name, telemetry.distro.* < service.name (OTEL_SERVICE_NAME or "kalman"). */
function baseResourceAttributes(config: MetricsPipelineConfig, env: NodeJS.ProcessEnv): Attributes {
  const a: Attributes = { ...(config.resourceAttributes ?? resourceAttributesFromEnv(env)) };
  const host = config.hostName === undefined ? hostname() : config.hostName;
  if (host !== null && a["host.name"] === undefined) a["host.name"] = host;
  a["telemetry.distro.name"] = "kalman";
  a["telemetry.distro.version"] = VERSION;
  a["kalman.agent"] = "kalman";
  a["service.name"] = nonBlank(env.OTEL_SERVICE_NAME)?.trim() ?? (a["service.name"] as string | undefined) ?? "kalman";
  return a;
}

const EMPTY_RESOURCE = resourceFromAttributes({});

function nonBlank(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}
