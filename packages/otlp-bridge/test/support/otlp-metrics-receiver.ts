/**
 * Real OTLP metrics receivers for tests: a gRPC one (@grpc/grpc-js serving
 * opentelemetry.proto.collector.metrics.v1.MetricsService/Export) and an HTTP/protobuf one
 * (node:http, POST /v1/metrics). Both decode the real protobuf request with the generated protobufjs
 * code shipped in @opentelemetry/otlp-transformer 0.214.0 (the alias "otlp-transformer-pb"), so what
 * the tests see is what a Collector would see.
 *
 * Metrics are cumulative: every export resends every series. `latest()` keeps the newest point per
 * series (resource service.name + scope + metric name + attributes), which is what assertions want.
 *
 *   import { OtlpMetricsGrpcReceiver } from "../../otlp-bridge/test/support/otlp-metrics-receiver.js";
 *
 * `syntheticRecord()` builds RequestRecords (as the L7 parsers emit them) for metrics tests.
 */
import type { RequestRecord } from "@kalman/flow-aggregator";
import pbRoot from "otlp-transformer-pb/build/src/generated/root.js";
import {
  keyValues,
  type OtlpSignal,
  OtlpTestServer,
  type OtlpTransport,
  type PbKeyValue,
  type PbLong,
  type PbType,
  type ReceivedValue,
  waitUntil,
} from "./otlp-test-server.js";

export type MetricPointType = "sum" | "gauge" | "histogram" | "exponential_histogram" | "summary" | "unknown";

/** One decoded data point, flattened with its metric, scope and resource. */
export interface ReceivedMetricPoint {
  name: string;
  description: string;
  unit: string;
  type: MetricPointType;
  /** sum only. */
  isMonotonic?: boolean;
  temporality: "unspecified" | "delta" | "cumulative";
  attributes: Record<string, ReceivedValue>;
  /** sum / gauge value. */
  value?: number;
  /** histogram fields. */
  count?: number;
  sum?: number;
  min?: number;
  max?: number;
  bucketCounts?: number[];
  explicitBounds?: number[];
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  resource: Record<string, ReceivedValue>;
  /** resource["service.name"], when a string. */
  serviceName?: string;
  scope: { name: string; version: string };
  /** Index of the Export request this point came in. */
  request: number;
}

export interface ReceivedMetricsRequest {
  index: number;
  transport: "grpc" | "http";
  pointCount: number;
  /** resource service.name of each ResourceMetrics, in order. */
  services: (string | undefined)[];
  headers: Record<string, string>;
}

// ---- protobuf decoding --------------------------------------------------------------------------

type PbNum = number | PbLong | null | undefined;
interface PbNumberPoint {
  attributes?: PbKeyValue[] | null;
  startTimeUnixNano?: PbNum;
  timeUnixNano?: PbNum;
  value?: string;
  asDouble?: number | null;
  asInt?: PbNum;
}
interface PbHistogramPoint {
  attributes?: PbKeyValue[] | null;
  startTimeUnixNano?: PbNum;
  timeUnixNano?: PbNum;
  count?: PbNum;
  sum?: number | null;
  min?: number | null;
  max?: number | null;
  bucketCounts?: PbNum[] | null;
  explicitBounds?: number[] | null;
}
interface PbMetric {
  name?: string | null;
  description?: string | null;
  unit?: string | null;
  data?: string;
  sum?: { dataPoints?: PbNumberPoint[] | null; aggregationTemporality?: number | null; isMonotonic?: boolean | null };
  gauge?: { dataPoints?: PbNumberPoint[] | null };
  histogram?: { dataPoints?: PbHistogramPoint[] | null; aggregationTemporality?: number | null };
}
interface PbRequest {
  resourceMetrics?:
    | {
        resource?: { attributes?: PbKeyValue[] | null } | null;
        scopeMetrics?:
          | { scope?: { name?: string | null; version?: string | null } | null; metrics?: PbMetric[] | null }[]
          | null;
      }[]
    | null;
}
interface PbMetricsV1 {
  ExportMetricsServiceRequest: PbType<PbRequest>;
  ExportMetricsServiceResponse: PbType<object>;
}

const metricsV1 = (pbRoot as unknown as { opentelemetry: { proto: { collector: { metrics: { v1: PbMetricsV1 } } } } })
  .opentelemetry.proto.collector.metrics.v1;

const TEMPORALITY = ["unspecified", "delta", "cumulative"] as const;

function toNumber(v: PbNum): number {
  if (v == null) return 0;
  return typeof v === "number" ? v : Number(v.toString());
}

function toBigInt(v: PbNum): bigint {
  if (v == null) return 0n;
  return BigInt(typeof v === "number" ? Math.trunc(v) : v.toString());
}

/** Decodes a protobuf ExportMetricsServiceRequest into flattened data points. */
export function decodeMetricsRequest(
  body: Uint8Array,
  index = 0,
  transport: "grpc" | "http" = "grpc",
  headers: Record<string, string> = {},
): { request: ReceivedMetricsRequest; points: ReceivedMetricPoint[] } {
  const req = metricsV1.ExportMetricsServiceRequest.decode(body);
  const points: ReceivedMetricPoint[] = [];
  const services: (string | undefined)[] = [];
  for (const rm of req.resourceMetrics ?? []) {
    const resource = keyValues(rm.resource?.attributes);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined;
    services.push(serviceName);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = { name: sm.scope?.name ?? "", version: sm.scope?.version ?? "" };
      for (const m of sm.metrics ?? []) {
        const base = {
          name: m.name ?? "",
          description: m.description ?? "",
          unit: m.unit ?? "",
          resource,
          serviceName,
          scope,
          request: index,
        };
        if (m.data === "sum" || m.data === "gauge") {
          const data = m.data === "sum" ? m.sum : m.gauge;
          const sum = m.data === "sum" ? m.sum : undefined;
          for (const dp of data?.dataPoints ?? []) {
            points.push({
              ...base,
              type: m.data,
              isMonotonic: sum ? Boolean(sum.isMonotonic) : undefined,
              temporality: TEMPORALITY[sum?.aggregationTemporality ?? 0] ?? "unspecified",
              attributes: keyValues(dp.attributes),
              value: dp.value === "asInt" ? toNumber(dp.asInt) : (dp.asDouble ?? 0),
              startTimeUnixNano: toBigInt(dp.startTimeUnixNano),
              timeUnixNano: toBigInt(dp.timeUnixNano),
            });
          }
        } else if (m.data === "histogram") {
          for (const dp of m.histogram?.dataPoints ?? []) {
            points.push({
              ...base,
              type: "histogram",
              temporality: TEMPORALITY[m.histogram?.aggregationTemporality ?? 0] ?? "unspecified",
              attributes: keyValues(dp.attributes),
              count: toNumber(dp.count),
              sum: dp.sum ?? undefined,
              min: dp.min ?? undefined,
              max: dp.max ?? undefined,
              bucketCounts: (dp.bucketCounts ?? []).map(toNumber),
              explicitBounds: [...(dp.explicitBounds ?? [])],
              startTimeUnixNano: toBigInt(dp.startTimeUnixNano),
              timeUnixNano: toBigInt(dp.timeUnixNano),
            });
          }
        } else {
          const type: MetricPointType =
            m.data === "exponentialHistogram" ? "exponential_histogram" : m.data === "summary" ? "summary" : "unknown";
          points.push({
            ...base,
            type,
            temporality: "unspecified",
            attributes: {},
            startTimeUnixNano: 0n,
            timeUnixNano: 0n,
          });
        }
      }
    }
  }
  return { request: { index, transport, pointCount: points.length, services, headers }, points };
}

/** Stable key of a series: resource service.name, scope, metric name and sorted attributes. */
export function seriesKey(p: ReceivedMetricPoint): string {
  const attrs = Object.keys(p.attributes)
    .sort()
    .map((k) => `${k}=${JSON.stringify(p.attributes[k])}`)
    .join(",");
  return `${p.serviceName ?? ""}|${p.scope.name}|${p.name}|${attrs}`;
}

/** Whether `p` has every attribute of `attrs` (with equal values). */
export function hasAttributes(p: ReceivedMetricPoint, attrs: Record<string, ReceivedValue>): boolean {
  for (const [k, v] of Object.entries(attrs)) if (p.attributes[k] !== v) return false;
  return true;
}

// ---- shared collection ----------------------------------------------------------------------------

/** Points kept in `points` (history); `latest()` is bounded by the number of series. */
const MAX_HISTORY = 50_000;

const METRICS: OtlpSignal = {
  grpcPath: "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
  httpPath: "/v1/metrics",
  emptyResponse: Buffer.from(metricsV1.ExportMetricsServiceResponse.encode({}).finish()),
};

abstract class MetricsReceiver extends OtlpTestServer {
  /** Recent points in arrival order (at most 50,000; the oldest are dropped). */
  readonly points: ReceivedMetricPoint[] = [];
  readonly requests: ReceivedMetricsRequest[] = [];
  private readonly newest = new Map<string, ReceivedMetricPoint>();

  clear(): void {
    this.points.length = 0;
    this.requests.length = 0;
    this.newest.clear();
  }

  /** The newest point of every series received so far. */
  latest(): ReceivedMetricPoint[] {
    return [...this.newest.values()];
  }

  /** Newest points of metric `name` (optionally of service `service`) having the attributes `attrs`. */
  find(name: string, attrs: Record<string, ReceivedValue> = {}, service?: string): ReceivedMetricPoint[] {
    return this.latest().filter(
      (p) => p.name === name && (service === undefined || p.serviceName === service) && hasAttributes(p, attrs),
    );
  }

  /** Resolves once `predicate(latest())` holds; rejects after `timeoutMs` with what was received. */
  waitFor(
    predicate: (latest: ReceivedMetricPoint[]) => boolean,
    timeoutMs = 20_000,
    what = "condition",
  ): Promise<void> {
    return waitUntil(
      () => predicate(this.latest()),
      timeoutMs,
      () => `${what} (OTLP metrics receiver got ${this.newest.size} series in ${this.requests.length} requests)`,
    );
  }

  protected record(body: Uint8Array, transport: OtlpTransport, headers: Record<string, string>): void {
    const { request, points } = decodeMetricsRequest(body, this.requests.length, transport, headers);
    this.requests.push(request);
    for (const p of points) {
      this.points.push(p);
      this.newest.set(seriesKey(p), p);
    }
    if (this.points.length > MAX_HISTORY) this.points.splice(0, this.points.length - MAX_HISTORY);
  }
}

/** OTLP/gRPC metrics receiver on 127.0.0.1. */
export class OtlpMetricsGrpcReceiver extends MetricsReceiver {
  constructor() {
    super("grpc", METRICS);
  }

  static create(port = 0): Promise<OtlpMetricsGrpcReceiver> {
    return new OtlpMetricsGrpcReceiver().start(port);
  }
}

/** OTLP/HTTP (protobuf) metrics receiver on 127.0.0.1, path /v1/metrics. */
export class OtlpMetricsHttpReceiver extends MetricsReceiver {
  constructor() {
    super("http", METRICS);
  }

  static create(port = 0): Promise<OtlpMetricsHttpReceiver> {
    return new OtlpMetricsHttpReceiver().start(port);
  }

  get metricsUrl(): string {
    return this.signalUrl;
  }
}

// ---- synthetic request records ------------------------------------------------------------------------

let nextConn = 1;

/**
 * A RequestRecord with plausible defaults (an HTTP/1.1 GET answered 200 in 1 ms, seen at the
 * server 10.0.0.2:8080 from 10.0.0.1), overridden by `fields`. `ms` sets the duration.
 */
export function syntheticRecord(fields: Partial<RequestRecord> & { ms?: number } = {}): RequestRecord {
  const { ms, ...rest } = fields;
  const durationNs = ms !== undefined ? Math.round(ms * 1e6) : (rest.durationNs ?? 1e6);
  const startNs = rest.startNs ?? 1_000_000_000;
  return {
    protocol: "http1",
    version: "1.1",
    requestType: "GET",
    endpoint: "/",
    resource: "/",
    status: "ok",
    code: 200,
    requestBytes: 100,
    responseBytes: 200,
    pid: 1000,
    reqTid: 1000,
    comm: "app",
    observationPoint: "server",
    transport: "tcp",
    clientAddr: "10.0.0.1",
    clientPort: 40000,
    serverAddr: "10.0.0.2",
    serverPort: 8080,
    connId: nextConn++,
    netns: 4026531840,
    cgroupId: 1,
    ...rest,
    startNs,
    durationNs,
    endNs: startNs + durationNs,
  };
}
