// Optional Prometheus scrape endpoint: @opentelemetry/exporter-prometheus as the MetricReader and
// serializer, served by our own HTTP server (127.0.0.1 by default, port 0 allowed) with metric names
// translated as the Collector's Prometheus exporter does (unit suffixes), so names match Tempo's.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type ExporterConfig, PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import type { MetricProducer } from "@opentelemetry/sdk-metrics";
import type { Logger } from "../logger.js";
import { errorMessage } from "../sink.js";

export interface PrometheusOptions {
  /** TCP port; 0 picks a free one (see MetricsPipeline.prometheusUrl). */
  port: number;
  /** Bind address. Default 127.0.0.1: exposing metrics to the network is an explicit choice. */
  host?: string;
  /** Scrape path. Default /metrics. */
  path?: string;
}

type CollectedMetrics = Awaited<ReturnType<PrometheusExporter["collect"]>>["resourceMetrics"];
type CollectedMetric = CollectedMetrics["scopeMetrics"][number]["metrics"][number];

/** Prometheus unit words for UCUM units, as in the OTLP -> Prometheus compatibility spec. */
const UNIT_WORDS: Record<string, string> = {
  d: "days",
  h: "hours",
  min: "minutes",
  s: "seconds",
  ms: "milliseconds",
  us: "microseconds",
  ns: "nanoseconds",
  By: "bytes",
  KiBy: "kibibytes",
  MiBy: "mebibytes",
  GiBy: "gibibytes",
  KBy: "kilobytes",
  MBy: "megabytes",
  GBy: "gigabytes",
  "%": "percent",
};

/** Singular words after "per" (`By/s` -> `bytes_per_second`). */
const PER_UNIT_WORDS: Record<string, string> = { s: "second", m: "minute", min: "minute", h: "hour", d: "day" };

/** The unit suffix Prometheus names get (`s` -> `seconds`, `By/s` -> `bytes_per_second`, `{request}` -> none). */
export function prometheusUnitSuffix(unit: string): string {
  const u = unit.replace(/\{[^}]*\}/g, "").trim();
  if (u === "" || u === "1") return "";
  const [num = "", per] = u.split("/", 2);
  const word = (x: string) => UNIT_WORDS[x] ?? x.replace(/[^a-zA-Z0-9]+/g, "_");
  const n = num === "" || num === "1" ? "" : word(num);
  const p = per ? `per_${PER_UNIT_WORDS[per] ?? word(per)}` : "";
  return n && p ? `${n}_${p}` : n || p;
}

/**
 * The Prometheus name of an OTel metric (before the serializer replaces invalid characters):
 * unit suffix appended unless already there, and `_total` kept last for monotonic counters.
 * E.g. http.server.request.duration (s) -> http_server_request_duration_seconds,
 * traces_service_graph_request_server (s) -> traces_service_graph_request_server_seconds.
 */
export function prometheusName(name: string, unit: string, monotonicCounter: boolean): string {
  let base = name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/__+/g, "_");
  const total = monotonicCounter && base.endsWith("_total");
  if (total) base = base.slice(0, -"_total".length);
  const suffix = prometheusUnitSuffix(unit);
  if (suffix && !base.endsWith(`_${suffix}`)) base = `${base}_${suffix}`;
  return total || monotonicCounter ? `${base}_total` : base;
}

/** SUM data points (DataPointType.SUM = 3 in sdk-metrics). */
const SUM = 3;

function renamed(rm: CollectedMetrics): CollectedMetrics {
  return {
    resource: rm.resource,
    scopeMetrics: rm.scopeMetrics.map((sm) => ({
      scope: sm.scope,
      metrics: sm.metrics.map((m): CollectedMetric => {
        const counter = (m.dataPointType as number) === SUM && (m as { isMonotonic?: boolean }).isMonotonic === true;
        const name = prometheusName(m.descriptor.name, m.descriptor.unit, counter);
        return name === m.descriptor.name ? m : ({ ...m, descriptor: { ...m.descriptor, name } } as CollectedMetric);
      }),
    })),
  };
}

/**
 * A Prometheus endpoint. `reader` joins the MeterProvider; `start()` binds the HTTP server.
 * Errors (port in use, ...) are logged, never thrown.
 */
export class PrometheusEndpoint {
  readonly reader: PrometheusExporter;
  private readonly serializer = new PrometheusSerializer();
  private readonly host: string;
  private readonly path: string;
  private server: Server | undefined;
  private boundUrl: string | undefined;

  constructor(
    private readonly options: PrometheusOptions,
    private readonly logger: Logger,
    metricProducers: MetricProducer[] = [],
  ) {
    this.host = options.host ?? "127.0.0.1";
    const path = options.path ?? "/metrics";
    this.path = path.startsWith("/") ? path : `/${path}`;
    // the exporter's own server does not take port 0 and binds all interfaces by default: ours serves it
    // (its sdk-metrics patch differs from ours; the producer interface is the same)
    this.reader = new PrometheusExporter({
      preventServerStart: true,
      metricProducers: metricProducers as unknown as ExporterConfig["metricProducers"],
    });
  }

  /** http://host:port/metrics once listening. */
  get url(): string | undefined {
    return this.boundUrl;
  }

  /** Binds; resolves to the URL, or undefined (logged) when it could not. */
  start(): Promise<string | undefined> {
    if (this.server) return Promise.resolve(this.boundUrl);
    const server = createServer((req, res) => this.handle(req, res));
    return new Promise((resolve) => {
      const onError = (err: Error) => {
        this.logger.warn("prometheus endpoint could not listen; scraping is off", {
          host: this.host,
          port: this.options.port,
          error: errorMessage(err),
        });
        server.close();
        resolve(undefined);
      };
      server.once("error", onError);
      server.listen(this.options.port, this.host, () => {
        server.off("error", onError);
        server.on("error", (err) => this.logger.warn("prometheus endpoint error", { error: errorMessage(err) }));
        // like the official exporter: a scrape endpoint alone does not keep the process alive
        server.unref();
        this.server = server;
        const { port } = server.address() as AddressInfo;
        const host = this.host.includes(":") ? `[${this.host}]` : this.host;
        this.boundUrl = `http://${host}:${port}${this.path}`;
        resolve(this.boundUrl);
      });
    });
  }

  /** Closes the server (open scrapes are dropped). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.boundUrl = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The current exposition text (what a scrape returns). */
  async scrape(): Promise<string> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length) this.logger.debug?.("prometheus collection errors", { errors: errors.map(errorMessage) });
    return this.serializer.serialize(renamed(resourceMetrics));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== this.path || (req.method !== "GET" && req.method !== "HEAD")) {
      res.writeHead(404).end();
      return;
    }
    this.scrape().then(
      (text) => {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(req.method === "HEAD" ? undefined : text);
      },
      (err) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`# failed to collect metrics: ${errorMessage(err)}`);
      },
    );
  }
}
