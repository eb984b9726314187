// SmartEncoding: the tag dictionary's bounds, and the encoded ("ids") path exporting exactly what the
// SDK string path exports for the same records.
import type { L7ProtocolName, RequestRecord, ResponseStatus } from "@kalman/flow-aggregator";
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  MeterProvider,
  type MetricProducer,
  MetricReader,
  type MetricReaderOptions,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { describe, expect, it } from "vitest";
import { MetricsRecorder, type MetricsRecorderOptions, type ServiceOf } from "../src/index.js";
import { OVERFLOW_TAG, TagDictionary } from "../src/metrics/dictionary.js";
import { syntheticRecord as rec } from "./support/otlp-metrics-receiver.js";

class TestReader extends MetricReader {
  constructor(options?: MetricReaderOptions) {
    super(options);
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

describe("TagDictionary", () => {
  it("gives one id per string, resolves it back, and sends strings past the cap to the counted overflow id", () => {
    const d = new TagDictionary(4); // overflow id + 3 strings
    const a = d.intern("frontend");
    const b = d.intern("backend");
    expect(d.intern("frontend")).toBe(a);
    expect(a).not.toBe(b);
    expect(d.resolve(a)).toBe("frontend");
    expect(d.resolve(b)).toBe("backend");
    const c = d.intern("/users/{id}");
    expect(new Set([a, b, c, TagDictionary.OVERFLOW_ID]).size).toBe(4);
    expect(d.intern("one too many")).toBe(TagDictionary.OVERFLOW_ID);
    expect(d.intern("another")).toBe(TagDictionary.OVERFLOW_ID);
    expect(d.resolve(TagDictionary.OVERFLOW_ID)).toBe(OVERFLOW_TAG);
    expect(d.find("one too many")).toBe(-1);
    // known strings keep their ids once full
    expect(d.intern("backend")).toBe(b);
    expect(d.stats()).toEqual({ entries: 4, overflowed: 2 });
    expect(d.size).toBe(4);
  });
});

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROTOCOLS: L7ProtocolName[] = ["http1", "http2", "grpc", "dns", "redis", "mysql", "postgresql", "kafka", "mqtt"];
const STATUSES: ResponseStatus[] = ["ok", "ok", "ok", "client_error", "server_error", "timeout", "unknown"];
const METHODS = ["GET", "POST", "get", "BREW", "SELECT", "INSERT", "Produce", "Fetch", "PUBLISH", "SUBSCRIBE", "A", ""];
const CODES = [undefined, 0, 200, 201, 404, 500, 503, 2, 14, 1062, -3, 1.5, 70_000];

/** Random records over every protocol, side, status and odd value the recorder takes. */
function randomRecords(n: number, seed: number): RequestRecord[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const out: RequestRecord[] = [];
  for (let i = 0; i < n; i++) {
    const protocol = pick(PROTOCOLS);
    const id = Math.floor(rnd() * 50);
    const path = pick([
      `/users/${id}`,
      `/orders/${id}/items`,
      "/health",
      `/p${Math.floor(rnd() * 30)}`,
      "/svc.Greeter/SayHello",
      `/svc.Other/M${Math.floor(rnd() * 4)}`,
      `SELECT t${Math.floor(rnd() * 3)}`,
      `orders.${id}`,
      "",
    ]);
    const attributes: Record<string, string | number> = {};
    if (rnd() < 0.2) attributes["db.response.status_code"] = pick(["42P01", "ERR", 1146]);
    if (rnd() < 0.1) attributes["messaging.destination.name"] = pick(["orders", `tenant/${id}/events`]);
    if (rnd() < 0.1) attributes["dns.question.name"] = `host${id % 5}.example`;
    const u = rnd();
    // some durations sit exactly on a bucket boundary (upper bounds are inclusive)
    const durationNs =
      u < 0.02
        ? pick([Number.NaN, -1, Number.POSITIVE_INFINITY])
        : u < 0.3
          ? pick([1e6, 5e6, 1e7, 2.5e7, 1e8, 5e8, 1e9, 0])
          : rnd() * 3e9;
    out.push(
      rec({
        protocol,
        version: pick(["1.1", "2", "RESP2", undefined]),
        requestType: pick(METHODS),
        endpoint: rnd() < 0.8 ? path : undefined,
        resource: path || undefined,
        domain: pick([undefined, "backend.svc:8080", "[::1]:443", "db1", "api.example.com"]),
        status: pick(STATUSES),
        code: pick(CODES),
        exception: rnd() < 0.2 ? "ERROR relation does not exist" : undefined,
        observationPoint: pick(["client", "server", "server", "network"] as const),
        comm: pick(["nginx", "node", "", "redis-server"]),
        clientAddr: pick(["10.0.0.1", "10.0.0.2", "10.0.0.7"]),
        serverAddr: pick(["10.0.0.2", "10.0.0.3", "fd00::5"]),
        serverPort: pick([8080, 6379, 5432, 9092, 53]),
        attributes,
        durationNs,
      }),
    );
  }
  return out;
}

const serviceOf: ServiceOf = (r) => ({
  client: r.clientAddr === "10.0.0.1" ? "frontend" : r.clientAddr === "10.0.0.2" ? "backend" : undefined,
  server: r.serverPort === 8080 ? "backend" : r.serverPort === 6379 ? "" : undefined,
  serverObserved: r.serverPort === 5432 ? true : undefined,
});

interface Normalized {
  scope: string;
  name: string;
  unit: string;
  description: string;
  type: string;
  points: Array<{ attributes: string; value: unknown }>;
}

/** Collections without timestamps or ordering: what a backend would store. */
function normalize(rm: ResourceMetrics): Normalized[] {
  const out: Normalized[] = [];
  for (const sm of rm.scopeMetrics)
    for (const m of sm.metrics) {
      const points = (m.dataPoints as DataPoint<unknown>[]).map((dp) => {
        const attrs = Object.entries(dp.attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        let value = dp.value;
        if (typeof value === "object" && value !== null) {
          const h = value as Histogram;
          value = {
            count: h.count,
            sum: round(h.sum as number),
            min: h.min,
            max: h.max,
            boundaries: h.buckets.boundaries,
            counts: h.buckets.counts,
          };
        } else value = round(value as number);
        return { attributes: JSON.stringify(attrs), value };
      });
      points.sort((a, b) => (a.attributes < b.attributes ? -1 : a.attributes > b.attributes ? 1 : 0));
      out.push({
        scope: sm.scope.name,
        name: m.descriptor.name,
        unit: m.descriptor.unit,
        description: m.descriptor.description,
        type: `${m.dataPointType}/${m.descriptor.valueType}/${m.aggregationTemporality}`,
        points,
      });
    }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Sums are added in the same order on both paths; rounding only guards against -0 vs 0 style noise. */
function round(v: number): number {
  return Math.round(v * 1e9) / 1e9;
}

function recorderWith(encoding: "ids" | "strings", options: MetricsRecorderOptions) {
  const holder: { recorder?: MetricsRecorder } = {};
  const producer: MetricProducer = {
    collect: (o) => {
      const p = holder.recorder?.metricProducer();
      if (!p) throw new Error("no producer");
      return p.collect(o);
    },
  };
  const reader = new TestReader({ metricProducers: encoding === "ids" ? [producer] : [] });
  const provider = new MeterProvider({ readers: [reader] });
  const recorder = new MetricsRecorder(provider, { ...options, encoding, logger: { warn() {}, info() {} } });
  holder.recorder = recorder;
  return { recorder, reader };
}

describe("encoded metrics path", () => {
  const cases: Array<[string, MetricsRecorderOptions]> = [
    ["default caps", {}],
    ["tight caps (series and endpoint overflow)", { maxSeriesPerMetric: 25, templater: { maxTemplatesPerService: 6 } }],
    // the shared graph label table (4 x the series cap) fills up too: instruments then look labels up themselves
    ["caps of 2 (graph label table full)", { maxSeriesPerMetric: 2, templater: { maxTemplatesPerService: 2 } }],
  ];
  for (const [label, options] of cases)
    it(`exports exactly what the string path exports for the same records (${label})`, async () => {
      for (const seed of [1, 2, 3]) {
        const records = randomRecords(3000, seed);
        const strings = recorderWith("strings", options);
        const ids = recorderWith("ids", options);
        // in batches, with a collection in between, as the pipeline does
        for (let i = 0; i < records.length; i += 500) {
          strings.recorder.record(records.slice(i, i + 500), serviceOf);
          ids.recorder.record(records.slice(i, i + 500), serviceOf);
          if (i === 1000) {
            await strings.reader.collect();
            await ids.reader.collect();
          }
        }
        const a = normalize((await strings.reader.collect()).resourceMetrics);
        const b = normalize((await ids.reader.collect()).resourceMetrics);
        expect(a.length).toBeGreaterThan(8);
        expect(b).toEqual(a);
        const { tags, ...idStats } = ids.recorder.stats();
        expect(idStats).toEqual(strings.recorder.stats());
        expect(tags?.overflowed).toBe(0);
        expect(idStats.red).toBeGreaterThan(500);
        if (options.maxSeriesPerMetric) expect(idStats.overflow.series).toBeGreaterThan(0);
        if (options.templater) expect(idStats.overflow.endpoints).toBeGreaterThan(0);
      }
    });

  it("past the tag dictionary's cap, new values become _other and are counted", async () => {
    const { recorder, reader } = recorderWith("ids", { maxTags: 12, serviceGraph: false });
    const records = Array.from({ length: 40 }, (_, i) =>
      rec({ requestType: "GET", endpoint: `/route${i}`, code: 200, observationPoint: "server", comm: "api" }),
    );
    recorder.record(records, () => ({}));
    const s = recorder.stats();
    expect(s.tags?.entries).toBe(12);
    expect(s.tags?.overflowed).toBeGreaterThan(0);
    const [http] = normalize((await reader.collect()).resourceMetrics).filter(
      (m) => m.name === "http.server.request.duration",
    );
    const routes = http?.points.map(
      (p) => (JSON.parse(p.attributes) as [string, unknown][]).find(([k]) => k === "http.route")?.[1],
    );
    expect(routes).toContain("_other");
    expect(routes).toContain("/route0");
    const total = http?.points.reduce((n, p) => n + (p.value as { count: number }).count, 0);
    expect(total).toBe(40);
  });

  it("a delta reader gets the counts of each interval, a cumulative one the totals", async () => {
    const { recorder } = recorderWith("ids", { serviceGraph: false });
    const delta = recorder.metricProducer(() => AggregationTemporality.DELTA);
    const cumulative = recorder.metricProducer();
    const countOf = async (p: typeof delta) => {
      const r = await p?.collect();
      const m = r?.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
      return (m?.[0]?.dataPoints[0]?.value as Histogram | undefined)?.count ?? 0;
    };
    recorder.record([rec({ ms: 1 }), rec({ ms: 2 })], () => ({}));
    expect(await countOf(delta)).toBe(2);
    expect(await countOf(cumulative)).toBe(2);
    recorder.record([rec({ ms: 3 })], () => ({}));
    expect(await countOf(delta)).toBe(1);
    expect(await countOf(cumulative)).toBe(3);
    expect(await countOf(delta)).toBe(0);
  });
});
