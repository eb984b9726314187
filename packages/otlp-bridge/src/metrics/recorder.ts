// RequestRecords -> RED histograms (OTel semconv) and service graph metrics (servicegraph connector / Tempo).
import type { RequestRecord } from "@kalman/flow-aggregator";
import type { Counter, Histogram, MeterProvider } from "@opentelemetry/api";
import type { AggregationTemporality, InstrumentType, MetricProducer } from "@opentelemetry/sdk-metrics";
import { type Logger, stderrWarnLogger } from "../logger.js";
import { errorMessage } from "../sink.js";
import { VERSION } from "../version.js";
import {
  type AttributeWriter,
  type Attrs,
  connectionTypeOf,
  type EndpointSource,
  failedFor,
  ObjectWriter,
  peerClientName,
  peerServerName,
  redMetricFor,
  type Side,
  writeRedAttributes,
} from "./attributes.js";
import type { TagDictionaryStats } from "./dictionary.js";
import { EncodedStore } from "./encoded-store.js";
import {
  DB_DURATION_BUCKETS,
  HTTP_DURATION_BUCKETS,
  OVERFLOW_ATTRIBUTES,
  OVERFLOW_METRIC,
  RED_METRICS,
  type RedMetricKey,
  SERVICE_GRAPH_METRICS,
} from "./semconv.js";
import {
  GRAPH_CLIENT,
  GRAPH_FAILED,
  GRAPH_SERVER,
  GRAPH_TOTAL,
  type GraphInstrument,
  type MeasurementStore,
} from "./store.js";
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
  /**
   * "ids" (default, SmartEncoding): series are keyed by dictionary ids in typed arrays and read by
   * the metric readers through metricProducer(); strings are resolved once per series at collection.
   * "strings": OpenTelemetry SDK instruments fed attribute objects (the reference path; the
   * equivalence test and `pnpm bench:metrics` compare the two).
   */
  encoding?: "ids" | "strings";
  /** "ids" encoding: distinct tag strings kept (default 65536); past it, values become "_other" (counted). */
  maxTags?: number;
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
  /** The tag dictionary ("ids" encoding only). */
  tags?: TagDictionaryStats;
}

/** Instrumentation scope of the RED metrics. */
export const KALMAN_METER = "kalman";

/**
 * Keeps at most `max` distinct attribute sets; the rest are reported as overflow. Keys are the
 * attribute entries in insertion order (attribute sets are built in a fixed order).
 */
export class SeriesLimiter {
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

interface StoreOptions {
  maxSeries: number;
  buckets: { default: number[]; db: number[]; serviceGraph: number[] };
  red: boolean;
  serviceGraph: boolean;
  templater: EndpointTemplater;
}

/** The string path: OpenTelemetry SDK instruments fed attribute objects, capped by SeriesLimiter. */
class SdkStore implements MeasurementStore {
  readonly endpoints: EndpointSource;
  private readonly red: Partial<Record<RedMetricKey, Instrument<Histogram>>> = {};
  private readonly graphs: Array<Instrument<Histogram> | Instrument<Counter>> = [];
  private writer = new ObjectWriter();
  private labels: Attrs = {};

  constructor(meterProvider: MeterProvider, o: StoreOptions) {
    const templater = o.templater;
    this.endpoints = { template: (s, e) => templater.template(s, e), overflow() {} };
    const meter = meterProvider.getMeter(KALMAN_METER, VERSION);
    if (o.red) {
      for (const key of Object.keys(RED_METRICS) as RedMetricKey[]) {
        const { name, description } = RED_METRICS[key];
        this.red[key] = {
          name,
          inst: meter.createHistogram(name, {
            description,
            unit: "s",
            advice: { explicitBucketBoundaries: key === "dbClient" ? o.buckets.db : o.buckets.default },
          }),
          limiter: new SeriesLimiter(o.maxSeries),
        };
      }
    }
    if (o.serviceGraph) {
      // the connector's instrumentation scope, so the metrics land where its consumers look
      const g = meterProvider.getMeter(SERVICE_GRAPH_METRICS.scope);
      const counter = (name: string, description: string): Instrument<Counter> => ({
        name,
        inst: g.createCounter(name, { description }),
        limiter: new SeriesLimiter(o.maxSeries),
      });
      const histogram = (name: string, description: string): Instrument<Histogram> => ({
        name,
        inst: g.createHistogram(name, {
          description,
          unit: "s",
          advice: { explicitBucketBoundaries: o.buckets.serviceGraph },
        }),
        limiter: new SeriesLimiter(o.maxSeries),
      });
      this.graphs[GRAPH_TOTAL] = counter(
        SERVICE_GRAPH_METRICS.requestTotal,
        "Total count of requests between two nodes.",
      );
      this.graphs[GRAPH_FAILED] = counter(
        SERVICE_GRAPH_METRICS.requestFailedTotal,
        "Total count of failed requests between two nodes.",
      );
      this.graphs[GRAPH_SERVER] = histogram(
        SERVICE_GRAPH_METRICS.requestServer,
        "Time for a request between two nodes as seen from the server.",
      );
      this.graphs[GRAPH_CLIENT] = histogram(
        SERVICE_GRAPH_METRICS.requestClient,
        "Time for a request between two nodes as seen from the client.",
      );
    }
  }

  beginRed(): AttributeWriter {
    this.writer = new ObjectWriter();
    return this.writer;
  }

  commitRed(metric: RedMetricKey, durationNs: number): boolean {
    const inst = this.red[metric] as Instrument<Histogram>;
    const attrs = this.writer.a;
    const admitted = inst.limiter.admit(attrs);
    inst.inst.record(durationNs / 1e9, admitted ? attrs : OVERFLOW_ATTRIBUTES);
    return admitted;
  }

  beginGraph(client: string, server: string, connectionType: string): void {
    this.labels = { client, server, connection_type: connectionType };
  }

  graph(instrument: GraphInstrument, durationNs: number): boolean {
    const g = this.graphs[instrument] as Instrument<Histogram> | Instrument<Counter>;
    const admitted = g.limiter.admit(this.labels);
    const attrs = admitted ? this.labels : OVERFLOW_ATTRIBUTES;
    if (instrument === GRAPH_TOTAL || instrument === GRAPH_FAILED) (g.inst as Counter).add(1, attrs);
    else (g.inst as Histogram).record(durationNs / 1e9, attrs);
    return admitted;
  }

  seriesCount(): number {
    let n = 0;
    for (const k of Object.keys(this.red) as RedMetricKey[]) n += this.red[k]?.limiter.size ?? 0;
    for (const g of this.graphs) n += g.limiter.size;
    return n;
  }
}

/** Names of the service graph instruments, for the overflow counter. */
const GRAPH_NAMES = [
  SERVICE_GRAPH_METRICS.requestTotal,
  SERVICE_GRAPH_METRICS.requestFailedTotal,
  SERVICE_GRAPH_METRICS.requestServer,
  SERVICE_GRAPH_METRICS.requestClient,
];

/**
 * Turns request records into metrics through an OpenTelemetry MeterProvider (usually the one from
 * createMetricsPipeline, whose views set the cardinality limits):
 *
 * - RED: the semconv duration histograms (seconds), see redMetricFor for which record feeds which.
 * - Service graph: traces_service_graph_request_total / _failed_total (counters) and
 *   traces_service_graph_request_server / _client (histograms, unit s), labels client, server,
 *   connection_type.
 *
 * With the default "ids" encoding the measurements live in an EncodedStore, which the metric
 * readers collect through metricProducer(); with "strings" they go to SDK instruments.
 * record() is synchronous, allocation-light and never throws.
 */
export class MetricsRecorder {
  readonly templater: EndpointTemplater;
  readonly encoding: "ids" | "strings";
  private readonly logger: Logger;
  private readonly store: MeasurementStore;
  private readonly encoded: EncodedStore | undefined;
  private readonly redOn: boolean;
  private readonly graphOn: boolean;
  /** Overflowed measurements per metric name, by reason: read by the kalman.metrics.overflow callback. */
  private readonly overflowed = { series: new Map<string, number>(), endpoint: new Map<string, number>() };
  /** The last server end named by address (addr:port), kept to not build the same string per record. */
  private readonly peerNames = new Map<string, Map<number, string>>();
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
  private currentRedMetric = "";
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
    this.redOn = options.red !== false;
    this.graphOn = options.serviceGraph !== false;
    this.encoding = options.encoding ?? "ids";

    const meter = meterProvider.getMeter(KALMAN_METER, VERSION);
    // an observable counter: an overflowed measurement only adds 1 to a number (this runs per record past a cap)
    meter
      .createObservableCounter(OVERFLOW_METRIC, {
        description:
          "Measurements recorded into an overflow series or endpoint bucket because a cardinality cap was hit.",
        unit: "{measurement}",
      })
      .addCallback((result) => {
        for (const reason of ["series", "endpoint"] as const)
          for (const [metric, n] of this.overflowed[reason]) result.observe(n, { metric, reason });
      });
    const storeOptions: StoreOptions = {
      maxSeries,
      buckets: { default: defaultBuckets, db: dbBuckets, serviceGraph: graphBuckets },
      red: this.redOn,
      serviceGraph: this.graphOn,
      templater: this.templater,
    };
    if (this.encoding === "ids") {
      this.encoded = new EncodedStore({
        ...storeOptions,
        maxSeriesPerMetric: maxSeries,
        maxTags: options.maxTags,
      });
      this.store = this.encoded;
    } else this.store = new SdkStore(meterProvider, storeOptions);
    this.store.endpoints.overflow = () => {
      this.counts.endpointOverflow++;
      addOne(this.overflowed.endpoint, this.currentRedMetric);
    };
  }

  /**
   * The MetricProducer a metric reader needs to see the "ids" measurements (pass it in the reader's
   * `metricProducers`; one per reader). Undefined with "strings" (the SDK instruments are read directly).
   */
  metricProducer(temporalityOf?: (type: InstrumentType) => AggregationTemporality): MetricProducer | undefined {
    return this.encoded?.producer(temporalityOf);
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
    const s: MetricsRecorderStats = {
      records: c.records,
      red: c.red,
      serviceGraph: c.serviceGraph,
      skipped: { network: c.network, serverSide: c.serverSide, invalid: c.invalid, unsupported: c.unsupported },
      overflow: { series: c.seriesOverflow, endpoints: c.endpointOverflow },
      series: this.store.seriesCount(),
      templates: this.templater.stats(),
    };
    if (this.encoded) s.tags = this.encoded.dictionaryStats();
    return s;
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
    const server = nonEmpty(names.server) ?? (side === "server" ? r.comm || "unknown" : this.peerServerName(r));
    const store = this.store;

    if (this.redOn) {
      const metric = redMetricFor(r.protocol, side);
      if (metric === "server_side") this.counts.serverSide++;
      else if (metric === undefined) this.counts.unsupported++;
      else {
        const name = RED_METRICS[metric].name;
        this.currentRedMetric = name;
        const w = store.beginRed(metric);
        writeRedAttributes(r, metric, side, side === "client" ? client : server, store.endpoints, w);
        if (!store.commitRed(metric, ns)) this.seriesOverflow(name);
        this.counts.red++;
      }
    }

    if (this.graphOn) {
      store.beginGraph(client, server, connectionTypeOf(r.protocol));
      const otherObserved =
        side === "client"
          ? (names.serverObserved ?? nonEmpty(names.server) !== undefined)
          : (names.clientObserved ?? nonEmpty(names.client) !== undefined);
      const failed = failedFor(r, side);
      if (side === "client") {
        this.count(failed);
        this.graph(GRAPH_CLIENT, ns);
        if (!otherObserved) this.graph(GRAPH_SERVER, ns);
      } else {
        this.graph(GRAPH_SERVER, ns);
        if (!otherObserved) {
          this.count(failed);
          this.graph(GRAPH_CLIENT, ns);
        }
      }
      this.counts.serviceGraph++;
    }
  }

  private count(failed: boolean): void {
    this.graph(GRAPH_TOTAL, 1);
    if (failed) this.graph(GRAPH_FAILED, 1);
  }

  private graph(instrument: GraphInstrument, durationNs: number): void {
    if (!this.store.graph(instrument, durationNs)) this.seriesOverflow(GRAPH_NAMES[instrument] as string);
  }

  private seriesOverflow(metric: string): void {
    this.counts.seriesOverflow++;
    addOne(this.overflowed.series, metric);
  }

  /** peerServerName(r); `addr:port` names are kept per address and port (bounded), not built per record. */
  private peerServerName(r: RequestRecord): string {
    if ((r.protocol === "http1" || r.protocol === "http2" || r.protocol === "grpc") && r.domain)
      return peerServerName(r);
    let ports = this.peerNames.get(r.serverAddr);
    if (ports === undefined) {
      if (this.peerNames.size >= 4096) this.peerNames.clear();
      ports = new Map();
      this.peerNames.set(r.serverAddr, ports);
    }
    let name = ports.get(r.serverPort);
    if (name === undefined) {
      name = peerServerName(r);
      if (ports.size >= 256) ports.clear();
      ports.set(r.serverPort, name);
    }
    return name;
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

function addOne(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}
