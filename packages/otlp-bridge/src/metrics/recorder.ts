// RequestRecords -> RED histograms (OTel semconv) and service graph metrics (servicegraph connector / Tempo).
import type { RequestRecord } from "@kalman/flow-aggregator";
import type { Counter, Histogram, MeterProvider } from "@opentelemetry/api";
import { type Logger, stderrWarnLogger } from "../logger.js";
import { errorMessage } from "../sink.js";
import { VERSION } from "../version.js";
import {
  type Attrs,
  connectionTypeOf,
  failedFor,
  peerClientName,
  peerServerName,
  redAttributes,
  redMetricFor,
  type Side,
} from "./attributes.js";
import {
  DB_DURATION_BUCKETS,
  HTTP_DURATION_BUCKETS,
  OVERFLOW_ATTRIBUTES,
  OVERFLOW_METRIC,
  RED_METRICS,
  type RedMetricKey,
  SERVICE_GRAPH_METRICS,
} from "./semconv.js";
import { EndpointTemplater, type EndpointTemplaterOptions, type EndpointTemplaterStats } from "./templating.js";

/**
 * The services at both ends of a request, as the agent knows them.
 *
 * `client` / `server`: the service name of that end, when the agent can resolve it (an observed
 * process, a container, a K8s workload). When undefined, the end is named by its address:
 * the server as the Host header (HTTP/gRPC) or `addr:port`, the client as its address.
 * The observing end (the client for a client-side record, the server for a server-side one)
 * falls back to the record's `comm`.
 *
 * `clientObserved` / `serverObserved` (default: whether the name is defined): whether that end's
 * own side of the request is (or will be) recorded too, by this agent or another one. This decides
 * which record counts the request on the service graph edge, so that it is counted once (see
 * MetricsRecorder.record).
 */
export interface ServiceNames {
  client?: string;
  server?: string;
  clientObserved?: boolean;
  serverObserved?: boolean;
}

export type ServiceOf = (r: RequestRecord) => ServiceNames | undefined;

export interface MetricsRecorderOptions {
  logger?: Logger;
  /** A shared templater, or options for a new one (default: 1000 templates per service). */
  templater?: EndpointTemplater | EndpointTemplaterOptions;
  /**
   * Distinct attribute sets kept per metric (default 2000). Past it, measurements go to one
   * overflow series with `otel.metric.overflow=true` and are counted (stats().overflow.series and
   * the `kalman.metrics.overflow` counter).
   */
  maxSeriesPerMetric?: number;
  /** RED histograms (default true). */
  red?: boolean;
  /** Service graph metrics (default true). */
  serviceGraph?: boolean;
  /** Bucket boundaries in seconds. Defaults: semconv HTTP buckets; semconv DB buckets for db.client. */
  buckets?: { default?: number[]; db?: number[]; serviceGraph?: number[] };
}

export interface MetricsRecorderStats {
  /** Records passed to record(). */
  records: number;
  /** Measurements recorded into a RED histogram. */
  red: number;
  /** Records that fed the service graph. */
  serviceGraph: number;
  /** Records with no RED measurement, by reason (loss is never silent). */
  skipped: {
    /** Seen at a network interface: a hop, not an end; counting it would count the request twice. */
    network: number;
    /** A DB / broker / DNS request seen in the server process: there is no semconv client metric for it. */
    serverSide: number;
    /** Non-finite or negative duration. */
    invalid: number;
    /** A protocol with no RED metric. */
    unsupported: number;
  };
  overflow: {
    /** Measurements that went to a metric's overflow series (cap: maxSeriesPerMetric). */
    series: number;
    /** Endpoints (routes, topics, gRPC methods) that became "_other" (cap: templates per service). */
    endpoints: number;
  };
  /** Distinct series admitted so far, over all metrics. */
  series: number;
  templates: EndpointTemplaterStats;
}

/** Instrumentation scope of the RED metrics. */
export const KALMAN_METER = "kalman";

/**
 * Keeps at most `max` distinct attribute sets; the rest are reported as overflow. Keys are the
 * attribute entries in insertion order (attribute sets are built in a fixed order).
 */
class SeriesLimiter {
  private readonly seen = new Set<string>();
  constructor(private readonly max: number) {}

  get size(): number {
    return this.seen.size;
  }

  admit(attrs: Attrs): boolean {
    let key = "";
    for (const k in attrs) key += `${k}\u0001${String(attrs[k])}\u0002`;
    if (this.seen.has(key)) return true;
    if (this.seen.size >= this.max) return false;
    this.seen.add(key);
    return true;
  }
}

interface Instrument<T extends Histogram | Counter> {
  name: string;
  inst: T;
  limiter: SeriesLimiter;
}

/**
 * Turns request records into metrics through an OpenTelemetry MeterProvider (usually the one from
 * createMetricsPipeline, whose views set the cardinality limits):
 *
 * - RED: the semconv duration histograms (seconds), see redMetricFor for which record feeds which.
 * - Service graph: traces_service_graph_request_total / _failed_total (counters) and
 *   traces_service_graph_request_server / _client (histograms, unit s), labels client, server,
 *   connection_type.
 *
 * record() is synchronous, allocation-light and never throws.
 */
export class MetricsRecorder {
  readonly templater: EndpointTemplater;
  private readonly logger: Logger;
  private readonly red: Record<RedMetricKey, Instrument<Histogram>> | undefined;
  private readonly graph:
    | {
        total: Instrument<Counter>;
        failed: Instrument<Counter>;
        server: Instrument<Histogram>;
        client: Instrument<Histogram>;
      }
    | undefined;
  private readonly overflowCounter: Counter;
  private readonly counts = {
    records: 0,
    red: 0,
    serviceGraph: 0,
    network: 0,
    serverSide: 0,
    invalid: 0,
    unsupported: 0,
    seriesOverflow: 0,
    endpointOverflow: 0,
  };
  private warnedServiceOf = false;
  private warnedRecord = false;

  constructor(meterProvider: MeterProvider, options: MetricsRecorderOptions = {}) {
    this.logger = options.logger ?? stderrWarnLogger;
    this.templater =
      options.templater instanceof EndpointTemplater ? options.templater : new EndpointTemplater(options.templater);
    const maxSeries = Math.max(1, Math.floor(options.maxSeriesPerMetric ?? 2000));
    const defaultBuckets = options.buckets?.default ?? [...HTTP_DURATION_BUCKETS];
    const dbBuckets = options.buckets?.db ?? [...DB_DURATION_BUCKETS];
    const graphBuckets = options.buckets?.serviceGraph ?? defaultBuckets;

    const meter = meterProvider.getMeter(KALMAN_METER, VERSION);
    this.overflowCounter = meter.createCounter(OVERFLOW_METRIC, {
      description:
        "Measurements recorded into an overflow series or endpoint bucket because a cardinality cap was hit.",
      unit: "{measurement}",
    });

    if (options.red !== false) {
      const red = {} as Record<RedMetricKey, Instrument<Histogram>>;
      for (const key of Object.keys(RED_METRICS) as RedMetricKey[]) {
        const { name, description } = RED_METRICS[key];
        red[key] = {
          name,
          inst: meter.createHistogram(name, {
            description,
            unit: "s",
            advice: { explicitBucketBoundaries: key === "dbClient" ? dbBuckets : defaultBuckets },
          }),
          limiter: new SeriesLimiter(maxSeries),
        };
      }
      this.red = red;
    }

    if (options.serviceGraph !== false) {
      // the connector's instrumentation scope, so the metrics land where its consumers look
      const g = meterProvider.getMeter(SERVICE_GRAPH_METRICS.scope);
      const counter = (name: string, description: string): Instrument<Counter> => ({
        name,
        inst: g.createCounter(name, { description }),
        limiter: new SeriesLimiter(maxSeries),
      });
      const histogram = (name: string, description: string): Instrument<Histogram> => ({
        name,
        inst: g.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: graphBuckets } }),
        limiter: new SeriesLimiter(maxSeries),
      });
      this.graph = {
        total: counter(SERVICE_GRAPH_METRICS.requestTotal, "Total count of requests between two nodes."),
        failed: counter(SERVICE_GRAPH_METRICS.requestFailedTotal, "Total count of failed requests between two nodes."),
        server: histogram(
          SERVICE_GRAPH_METRICS.requestServer,
          "Time for a request between two nodes as seen from the server.",
        ),
        client: histogram(
          SERVICE_GRAPH_METRICS.requestClient,
          "Time for a request between two nodes as seen from the client.",
        ),
      };
    }
  }

  /**
   * Records a batch. `serviceOf(r)` names the two ends (see ServiceNames). Never throws.
   *
   * Service graph rule (one count per request, as the connector does when it pairs a client span
   * with its server span):
   * - a client-side record counts the request on its edge (request_total, failed_total when it
   *   failed as the client sees it) and records its duration in _client; when the server end is not
   *   observed, its duration also goes to _server (the connector does the same for databases).
   * - a server-side record records its duration in _server; when the client end is not observed,
   *   it also counts the request (failed: 5xx-like or timeout) and records _client.
   * So a request seen at both ends is counted once, with both durations; a request seen at one end
   * is counted once too, with that end's duration for both histograms.
   * Records seen at a network interface ("network") are skipped: they are hops on the path.
   */
  record(records: readonly RequestRecord[], serviceOf: ServiceOf): void {
    for (const r of records) {
      try {
        this.recordOne(r, serviceOf);
      } catch (err) {
        if (!this.warnedRecord) {
          this.warnedRecord = true;
          this.logger.warn("metrics: a request record could not be recorded", { error: errorMessage(err) });
        }
        this.counts.invalid++;
      }
    }
  }

  stats(): MetricsRecorderStats {
    const c = this.counts;
    let series = 0;
    if (this.red) for (const k of Object.keys(this.red) as RedMetricKey[]) series += this.red[k].limiter.size;
    if (this.graph) {
      const g = this.graph;
      series += g.total.limiter.size + g.failed.limiter.size + g.server.limiter.size + g.client.limiter.size;
    }
    return {
      records: c.records,
      red: c.red,
      serviceGraph: c.serviceGraph,
      skipped: { network: c.network, serverSide: c.serverSide, invalid: c.invalid, unsupported: c.unsupported },
      overflow: { series: c.seriesOverflow, endpoints: c.endpointOverflow },
      series,
      templates: this.templater.stats(),
    };
  }

  private recordOne(r: RequestRecord, serviceOf: ServiceOf): void {
    this.counts.records++;
    const ns = r.durationNs;
    if (typeof ns !== "number" || !Number.isFinite(ns) || ns < 0) {
      this.counts.invalid++;
      return;
    }
    if (r.observationPoint === "network") {
      this.counts.network++;
      return;
    }
    const side: Side = r.observationPoint === "client" ? "client" : "server";
    const names = this.namesOf(r, serviceOf);
    const client = nonEmpty(names.client) ?? (side === "client" ? r.comm || "unknown" : peerClientName(r));
    const server = nonEmpty(names.server) ?? (side === "server" ? r.comm || "unknown" : peerServerName(r));
    const seconds = ns / 1e9;

    if (this.red) {
      const metric = redMetricFor(r.protocol, side);
      if (metric === "server_side") this.counts.serverSide++;
      else if (metric === undefined) this.counts.unsupported++;
      else {
        const inst = this.red[metric];
        const attrs = redAttributes(r, metric, side, side === "client" ? client : server, this.templater, () => {
          this.counts.endpointOverflow++;
          this.overflowCounter.add(1, { metric: inst.name, reason: "endpoint" });
        });
        this.recordHistogram(inst, seconds, attrs);
        this.counts.red++;
      }
    }

    if (this.graph) {
      const g = this.graph;
      const labels: Attrs = { client, server, connection_type: connectionTypeOf(r.protocol) };
      const otherObserved =
        side === "client"
          ? (names.serverObserved ?? nonEmpty(names.server) !== undefined)
          : (names.clientObserved ?? nonEmpty(names.client) !== undefined);
      const failed = failedFor(r, side);
      if (side === "client") {
        this.count(g, labels, failed);
        this.recordHistogram(g.client, seconds, labels);
        if (!otherObserved) this.recordHistogram(g.server, seconds, labels);
      } else {
        this.recordHistogram(g.server, seconds, labels);
        if (!otherObserved) {
          this.count(g, labels, failed);
          this.recordHistogram(g.client, seconds, labels);
        }
      }
      this.counts.serviceGraph++;
    }
  }

  private count(g: NonNullable<MetricsRecorder["graph"]>, labels: Attrs, failed: boolean): void {
    g.total.inst.add(1, this.limit(g.total, labels));
    if (failed) g.failed.inst.add(1, this.limit(g.failed, labels));
  }

  private recordHistogram(inst: Instrument<Histogram>, seconds: number, attrs: Attrs): void {
    inst.inst.record(seconds, this.limit(inst, attrs));
  }

  /** The attributes to record with: `attrs`, or the overflow marker past the metric's series cap. */
  private limit(inst: Instrument<Histogram | Counter>, attrs: Attrs): Attrs {
    if (inst.limiter.admit(attrs)) return attrs;
    this.counts.seriesOverflow++;
    this.overflowCounter.add(1, { metric: inst.name, reason: "series" });
    return OVERFLOW_ATTRIBUTES;
  }

  private namesOf(r: RequestRecord, serviceOf: ServiceOf): ServiceNames {
    try {
      return serviceOf(r) ?? {};
    } catch (err) {
      if (!this.warnedServiceOf) {
        this.warnedServiceOf = true;
        this.logger.warn("metrics: serviceOf threw; naming ends by address", { error: errorMessage(err) });
      }
      return {};
    }
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}
