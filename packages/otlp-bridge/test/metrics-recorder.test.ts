import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterEach, describe, expect, it } from "vitest";
import {
  createMetricsPipeline,
  DB_DURATION_BUCKETS,
  HTTP_DURATION_BUCKETS,
  type Logger,
  type MetricsPipeline,
  type MetricsPipelineConfig,
  type ServiceOf,
} from "../src/index.js";
import {
  OtlpMetricsGrpcReceiver,
  OtlpMetricsHttpReceiver,
  type ReceivedMetricPoint,
  syntheticRecord as rec,
} from "./support/otlp-metrics-receiver.js";

const quiet: Logger = { warn() {}, info() {} };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function grpcReceiver(): Promise<OtlpMetricsGrpcReceiver> {
  const r = await OtlpMetricsGrpcReceiver.create();
  cleanups.push(() => r.stop());
  return r;
}

function pipeline(config: MetricsPipelineConfig): MetricsPipeline {
  const p = createMetricsPipeline({
    logger: quiet,
    exportIntervalMillis: 500,
    hostName: "test-host",
    env: {},
    ...config,
  });
  cleanups.push(() => p.shutdown());
  return p;
}

// ---- the scenario: frontend -> backend (both observed) -> redis, postgres, kafka (not observed) ----

const FRONTEND = "10.0.0.1";
const BACKEND = "10.0.0.2";
/** Processes the agent observes, by client address and by server address:port. */
const CLIENTS: Record<string, string> = { [FRONTEND]: "frontend", [BACKEND]: "backend" };
const SERVERS: Record<string, string> = { [`${BACKEND}:8080`]: "backend", "10.0.0.6:6379": "cache" };
const serviceOf: ServiceOf = (r) => ({
  client: CLIENTS[r.clientAddr],
  server: SERVERS[`${r.serverAddr}:${r.serverPort}`],
});

const toBackend = { clientAddr: FRONTEND, serverAddr: BACKEND, serverPort: 8080, domain: "backend.svc:8080" };
const fromBackend = { clientAddr: BACKEND, observationPoint: "client" as const, comm: "backend" };
const redis = {
  ...fromBackend,
  protocol: "redis" as const,
  version: "RESP2",
  serverAddr: "10.0.0.3",
  serverPort: 6379,
};
const pg = {
  ...fromBackend,
  protocol: "postgresql" as const,
  version: "3.0",
  serverAddr: "10.0.0.4",
  serverPort: 5432,
};

function scenario(): RequestRecord[] {
  return [
    // HTTP, seen at the backend (server side)
    rec({ ...toBackend, requestType: "GET", endpoint: "/users/123", code: 200, ms: 3 }),
    rec({ ...toBackend, requestType: "GET", endpoint: "/users/456", code: 404, status: "client_error", ms: 7 }),
    rec({
      ...toBackend,
      requestType: "POST",
      endpoint: "/orders/550e8400-e29b-41d4-a716-446655440000",
      code: 500,
      status: "server_error",
      exception: "Internal Server Error",
      ms: 120,
    }),
    // the same three, seen at the frontend (client side)
    rec({ ...toBackend, observationPoint: "client", requestType: "GET", endpoint: "/users/123", code: 200, ms: 4 }),
    rec({
      ...toBackend,
      observationPoint: "client",
      requestType: "GET",
      endpoint: "/users/456",
      code: 404,
      status: "client_error",
      ms: 8,
    }),
    rec({
      ...toBackend,
      observationPoint: "client",
      requestType: "POST",
      endpoint: "/orders/550e8400-e29b-41d4-a716-446655440000",
      code: 500,
      status: "server_error",
      ms: 130,
    }),
    // external callers of the backend (client not observed)
    rec({ clientAddr: "198.51.100.7", serverAddr: BACKEND, requestType: "GET", endpoint: "/health", ms: 1 }),
    rec({
      clientAddr: "198.51.100.7",
      serverAddr: BACKEND,
      requestType: "GET",
      endpoint: "/health",
      code: 503,
      status: "server_error",
      ms: 2,
    }),
    // redis client calls from the backend
    rec({ ...redis, requestType: "GET", endpoint: "GET", resource: "user:1", code: undefined, ms: 0.5 }),
    rec({ ...redis, requestType: "SET", endpoint: "SET", resource: "user:1", code: undefined, ms: 0.8 }),
    rec({
      ...redis,
      requestType: "INCR",
      endpoint: "INCR",
      resource: "user:1",
      code: undefined,
      status: "server_error",
      exception: "WRONGTYPE Operation against a key holding the wrong kind of value",
      attributes: { "db.system.name": "redis", "db.response.status_code": "WRONGTYPE" },
      ms: 0.6,
    }),
    // postgresql client calls from the backend
    rec({
      ...pg,
      requestType: "SELECT",
      endpoint: "SELECT users",
      resource: "SELECT * FROM users WHERE id = ?",
      domain: "shop",
      code: undefined,
      attributes: { "db.system.name": "postgresql", "db.response.returned_rows": 1 },
      ms: 2,
    }),
    rec({
      ...pg,
      requestType: "INSERT",
      endpoint: "INSERT orders",
      resource: "INSERT INTO orders VALUES (?, ?)",
      domain: "shop",
      code: undefined,
      status: "client_error",
      exception: "duplicate key value violates unique constraint",
      attributes: { "db.system.name": "postgresql", "db.response.status_code": "23505" },
      ms: 1.5,
    }),
    // a kafka produce from the backend
    rec({
      ...fromBackend,
      protocol: "kafka",
      version: "9",
      requestType: "Produce",
      endpoint: "Produce orders",
      resource: "orders",
      domain: "backend-producer",
      code: undefined,
      serverAddr: "10.0.0.5",
      serverPort: 9092,
      attributes: { "messaging.system": "kafka", "messaging.destination.name": "orders" },
      ms: 5,
    }),
    // dns lookups from the frontend
    rec({
      protocol: "dns",
      transport: "udp",
      observationPoint: "client",
      comm: "frontend",
      clientAddr: FRONTEND,
      serverAddr: "10.0.0.53",
      serverPort: 53,
      requestType: "A",
      resource: "backend.svc",
      endpoint: "backend.svc",
      code: 0,
      version: undefined,
      attributes: { "dns.question.name": "backend.svc", "dns.answers": 1 },
      ms: 1,
    }),
    rec({
      protocol: "dns",
      transport: "udp",
      observationPoint: "client",
      comm: "frontend",
      clientAddr: FRONTEND,
      serverAddr: "10.0.0.53",
      serverPort: 53,
      requestType: "A",
      resource: "nope.example",
      endpoint: "nope.example",
      code: 3,
      status: "client_error",
      exception: "NXDOMAIN",
      version: undefined,
      attributes: { "dns.question.name": "nope.example", "dns.answers": 0 },
      ms: 1,
    }),
    // a redis request seen inside redis-server ("cache"): no db.client metric, only its server-side edge
    rec({
      protocol: "redis",
      version: "RESP2",
      comm: "redis-server",
      clientAddr: BACKEND,
      serverAddr: "10.0.0.6",
      serverPort: 6379,
      requestType: "GET",
      endpoint: "GET",
      code: undefined,
      ms: 0.2,
    }),
    // seen at a network interface: a hop, skipped
    rec({ ...toBackend, observationPoint: "network", interface: "eth0", endpoint: "/users/123", ms: 3 }),
  ];
}

const DURATION_METRICS = [
  "http.server.request.duration",
  "http.client.request.duration",
  "db.client.operation.duration",
  "messaging.client.operation.duration",
  "dns.lookup.duration",
];

function one(points: ReceivedMetricPoint[], what: string): ReceivedMetricPoint {
  if (points.length !== 1) throw new Error(`expected exactly one ${what}, got ${points.length}`);
  return points[0] as ReceivedMetricPoint;
}

/** Index of the bucket a value falls in (upper bounds inclusive, as OTel does). */
function bucketOf(bounds: readonly number[], v: number): number {
  const i = bounds.findIndex((b) => v <= b);
  return i < 0 ? bounds.length : i;
}

function expectSingleValueHistogram(p: ReceivedMetricPoint, seconds: number, bounds: readonly number[]): void {
  expect(p.type).toBe("histogram");
  expect(p.temporality).toBe("cumulative");
  expect(p.unit).toBe("s");
  expect(p.count).toBe(1);
  expect(p.sum).toBeCloseTo(seconds, 9);
  expect(p.explicitBounds).toEqual([...bounds]);
  const expected = new Array(bounds.length + 1).fill(0);
  expected[bucketOf(bounds, seconds)] = 1;
  expect(p.bucketCounts).toEqual(expected);
}

describe("MetricsRecorder -> OTLP/gRPC metrics receiver", () => {
  it("exports RED histograms and service graph edges for HTTP, redis, postgresql, kafka and dns", async () => {
    const rx = await grpcReceiver();
    const p = pipeline({ endpoint: rx.endpoint, protocol: "grpc" });
    expect(p.kind).toBe("otlp-grpc");
    expect(p.target).toBe(rx.endpoint);
    p.record(scenario(), serviceOf);

    await rx.waitFor(
      (latest) =>
        DURATION_METRICS.every((n) => latest.some((x) => x.name === n)) &&
        latest.some((x) => x.name === "traces_service_graph_request_total"),
      20_000,
      "every metric",
    );

    // ---- http.server.request.duration: at the backend, one resource per service, templated routes
    const server = rx.find("http.server.request.duration");
    expect(new Set(server.map((x) => x.serviceName))).toEqual(new Set(["backend"]));
    expect(server).toHaveLength(5);
    const ok = one(
      rx.find("http.server.request.duration", { "http.response.status_code": 200, "http.route": "/users/{id}" }),
      "200",
    );
    expect(ok.attributes).toEqual({
      "http.request.method": "GET",
      "http.route": "/users/{id}",
      "http.response.status_code": 200,
      "server.address": BACKEND,
      "server.port": 8080,
      "network.protocol.version": "1.1",
    });
    expect(ok.resource).toMatchObject({
      "service.name": "backend",
      "host.name": "test-host",
      "telemetry.distro.name": "kalman",
    });
    expect(ok.scope.name).toBe("kalman");
    expectSingleValueHistogram(ok, 0.003, HTTP_DURATION_BUCKETS);
    // a 404 is not a server error: no error.type on the server side
    const notFound = one(rx.find("http.server.request.duration", { "http.response.status_code": 404 }), "404");
    expect(notFound.attributes["error.type"]).toBeUndefined();
    expectSingleValueHistogram(notFound, 0.007, HTTP_DURATION_BUCKETS);
    const failed = one(rx.find("http.server.request.duration", { "http.response.status_code": 500 }), "500");
    expect(failed.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/orders/{id}",
      "error.type": "500",
    });
    expectSingleValueHistogram(failed, 0.12, HTTP_DURATION_BUCKETS);
    expect(rx.find("http.server.request.duration", { "http.route": "/health", "error.type": "503" })).toHaveLength(1);

    // ---- http.client.request.duration: at the frontend; 4xx and 5xx are client errors
    const client = rx.find("http.client.request.duration");
    expect(client).toHaveLength(3);
    expect(new Set(client.map((x) => x.serviceName))).toEqual(new Set(["frontend"]));
    const c404 = one(rx.find("http.client.request.duration", { "http.response.status_code": 404 }), "client 404");
    expect(c404.attributes).toEqual({
      "http.request.method": "GET",
      "url.template": "/users/{id}",
      "http.response.status_code": 404,
      "error.type": "404",
      "server.address": "backend.svc",
      "server.port": 8080,
      "network.protocol.version": "1.1",
    });
    expectSingleValueHistogram(c404, 0.008, HTTP_DURATION_BUCKETS);
    expect(one(rx.find("http.client.request.duration", { "error.type": "500" }), "client 500").count).toBe(1);
    expect(
      one(rx.find("http.client.request.duration", { "http.response.status_code": 200 }), "client 200").attributes[
        "error.type"
      ],
    ).toBeUndefined();

    // ---- db.client.operation.duration: redis and postgresql, semconv DB buckets
    const db = rx.find("db.client.operation.duration");
    expect(db).toHaveLength(5);
    expect(new Set(db.map((x) => x.serviceName))).toEqual(new Set(["backend"]));
    const get = one(rx.find("db.client.operation.duration", { "db.operation.name": "GET" }), "redis GET");
    expect(get.attributes).toEqual({
      "db.system.name": "redis",
      "db.operation.name": "GET",
      "server.address": "10.0.0.3",
      "server.port": 6379,
    });
    expectSingleValueHistogram(get, 0.0005, DB_DURATION_BUCKETS);
    expect(one(rx.find("db.client.operation.duration", { "db.operation.name": "INCR" }), "INCR").attributes).toEqual({
      "db.system.name": "redis",
      "db.operation.name": "INCR",
      "server.address": "10.0.0.3",
      "server.port": 6379,
      "error.type": "WRONGTYPE",
      "db.response.status_code": "WRONGTYPE",
    });
    const select = one(rx.find("db.client.operation.duration", { "db.operation.name": "SELECT" }), "SELECT");
    expect(select.attributes).toEqual({
      "db.system.name": "postgresql",
      "db.operation.name": "SELECT",
      "db.collection.name": "users",
      "db.namespace": "shop",
      "server.address": "10.0.0.4",
      "server.port": 5432,
    });
    expectSingleValueHistogram(select, 0.002, DB_DURATION_BUCKETS);
    expect(
      one(rx.find("db.client.operation.duration", { "db.operation.name": "INSERT" }), "INSERT").attributes,
    ).toMatchObject({
      "db.collection.name": "orders",
      "error.type": "23505",
    });
    // the request seen inside redis-server is not a client operation
    expect(rx.find("db.client.operation.duration", { "server.address": "10.0.0.6" })).toHaveLength(0);

    // ---- messaging and dns
    const produce = one(rx.find("messaging.client.operation.duration"), "kafka produce");
    expect(produce.serviceName).toBe("backend");
    expect(produce.attributes).toEqual({
      "messaging.system": "kafka",
      "messaging.operation.name": "send",
      "messaging.operation.type": "send",
      "messaging.destination.name": "orders",
      "server.address": "10.0.0.5",
      "server.port": 9092,
    });
    expectSingleValueHistogram(produce, 0.005, HTTP_DURATION_BUCKETS);
    const dns = rx.find("dns.lookup.duration");
    expect(dns).toHaveLength(2);
    expect(one(rx.find("dns.lookup.duration", { "dns.question.name": "backend.svc" }), "dns ok").attributes).toEqual({
      "dns.question.name": "backend.svc",
    });
    expect(one(rx.find("dns.lookup.duration", { "dns.question.name": "nope.example" }), "nxdomain").attributes).toEqual(
      {
        "dns.question.name": "nope.example",
        "error.type": "NXDOMAIN",
      },
    );

    // ---- service graph: exactly these edges, counted once per request
    const total = rx.find("traces_service_graph_request_total");
    for (const x of total) {
      expect(x.type).toBe("sum");
      expect(x.isMonotonic).toBe(true);
      expect(x.temporality).toBe("cumulative");
      expect(x.scope.name).toBe("traces_service_graph");
      expect(x.serviceName).toBe("kalman"); // the agent's resource, as the connector's own
    }
    const edges = (points: ReceivedMetricPoint[], field: "value" | "count") =>
      Object.fromEntries(
        points.map((x) => [
          `${x.attributes.client} -> ${x.attributes.server} [${x.attributes.connection_type}]`,
          x[field],
        ]),
      );
    expect(edges(total, "value")).toEqual({
      "frontend -> backend []": 3,
      "198.51.100.7 -> backend []": 2,
      "backend -> 10.0.0.3:6379 [database]": 3,
      "backend -> 10.0.0.4:5432 [database]": 2,
      "backend -> 10.0.0.5:9092 [messaging_system]": 1,
      "frontend -> 10.0.0.53:53 []": 2,
    });
    expect(edges(rx.find("traces_service_graph_request_failed_total"), "value")).toEqual({
      "frontend -> backend []": 2,
      "198.51.100.7 -> backend []": 1,
      "backend -> 10.0.0.3:6379 [database]": 1,
      "backend -> 10.0.0.4:5432 [database]": 1,
      "frontend -> 10.0.0.53:53 []": 1,
    });
    for (const x of total) expect(Object.keys(x.attributes).sort()).toEqual(["client", "connection_type", "server"]);
    // server-side durations: from the server's own records where observed, else the client's
    expect(edges(rx.find("traces_service_graph_request_server"), "count")).toEqual({
      "frontend -> backend []": 3,
      "198.51.100.7 -> backend []": 2,
      "backend -> 10.0.0.3:6379 [database]": 3,
      "backend -> 10.0.0.4:5432 [database]": 2,
      "backend -> 10.0.0.5:9092 [messaging_system]": 1,
      "frontend -> 10.0.0.53:53 []": 2,
      "backend -> cache [database]": 1,
    });
    expect(edges(rx.find("traces_service_graph_request_client"), "count")).toEqual({
      "frontend -> backend []": 3,
      "198.51.100.7 -> backend []": 2,
      "backend -> 10.0.0.3:6379 [database]": 3,
      "backend -> 10.0.0.4:5432 [database]": 2,
      "backend -> 10.0.0.5:9092 [messaging_system]": 1,
      "frontend -> 10.0.0.53:53 []": 2,
    });
    const fb = one(rx.find("traces_service_graph_request_server", { client: "frontend", server: "backend" }), "edge");
    expect(fb.unit).toBe("s");
    expect(fb.sum).toBeCloseTo(0.003 + 0.007 + 0.12, 9);
    const fbClient = one(
      rx.find("traces_service_graph_request_client", { client: "frontend", server: "backend" }),
      "e",
    );
    expect(fbClient.sum).toBeCloseTo(0.004 + 0.008 + 0.13, 9);

    expect(p.stats()).toMatchObject({
      records: 18,
      red: 16,
      serviceGraph: 17,
      skipped: { network: 1, serverSide: 1, invalid: 0, unsupported: 0 },
      overflow: { series: 0, endpoints: 0 },
    });
    // the receiver may see a request before the exporter sees its answer: flush, then count
    await p.forceFlush();
    expect(p.stats().export.exported).toBeGreaterThan(0);
    expect(rx.decodeErrors).toBe(0);
  });

  it("exports gRPC calls as rpc.* durations and templates MQTT topics as messaging.destination.template", async () => {
    const rx = await grpcReceiver();
    const p = pipeline({ endpoint: rx.endpoint, protocol: "grpc" });
    const grpcCall = {
      protocol: "grpc" as const,
      version: "2",
      requestType: "/shop.v1.Orders/Create",
      endpoint: "/shop.v1.Orders/Create",
      domain: "orders:50051",
      clientAddr: "10.0.0.1",
      serverAddr: "10.0.0.7",
      serverPort: 50051,
      attributes: { "rpc.system": "grpc", "rpc.service": "shop.v1.Orders", "rpc.method": "Create" },
    };
    const names: ServiceOf = () => ({ client: "checkout", server: "orders" });
    p.record(
      [
        rec({ ...grpcCall, code: 0, ms: 4 }),
        rec({ ...grpcCall, code: 13, status: "server_error", exception: "INTERNAL", ms: 9 }),
        rec({ ...grpcCall, observationPoint: "client", code: 0, ms: 5 }),
        rec({ ...grpcCall, observationPoint: "client", code: 5, status: "client_error", ms: 2 }),
        rec({
          protocol: "mqtt",
          version: "5",
          observationPoint: "client",
          requestType: "PUBLISH",
          endpoint: "devices/12345/telemetry",
          resource: "devices/12345/telemetry",
          code: undefined,
          serverAddr: "10.0.0.8",
          serverPort: 1883,
          attributes: { "messaging.system": "mqtt", "messaging.destination.name": "devices/12345/telemetry" },
          ms: 3,
        }),
      ],
      (r) => (r.protocol === "mqtt" ? { client: "sensor" } : names(r)),
    );
    await rx.waitFor(
      (l) =>
        ["rpc.server.call.duration", "rpc.client.call.duration", "messaging.client.operation.duration"].every((n) =>
          l.some((x) => x.name === n),
        ),
      20_000,
      "rpc and messaging metrics",
    );
    expect(
      one(rx.find("rpc.server.call.duration", { "rpc.grpc.status_code": 0 }, "orders"), "rpc ok").attributes,
    ).toEqual({
      "rpc.system": "grpc",
      "rpc.service": "shop.v1.Orders",
      "rpc.method": "Create",
      "rpc.grpc.status_code": 0,
      "server.address": "10.0.0.7",
      "server.port": 50051,
    });
    expect(
      one(rx.find("rpc.server.call.duration", { "rpc.grpc.status_code": 13 }), "rpc 13").attributes["error.type"],
    ).toBe("13");
    const client = rx.find("rpc.client.call.duration", {}, "checkout");
    expect(
      client.map((x) => [
        x.attributes["rpc.grpc.status_code"],
        x.attributes["error.type"],
        x.attributes["server.address"],
      ]),
    ).toEqual(
      expect.arrayContaining([
        [0, undefined, "orders"],
        [5, "5", "orders"],
      ]),
    );
    expect(client).toHaveLength(2);
    const mqtt = one(rx.find("messaging.client.operation.duration", {}, "sensor"), "mqtt publish");
    expect(mqtt.attributes).toEqual({
      "messaging.system": "mqtt",
      "messaging.operation.name": "publish",
      "messaging.operation.type": "send",
      "messaging.destination.template": "devices/{id}/telemetry",
      "server.address": "10.0.0.8",
      "server.port": 1883,
    });
    const edges = rx.find("traces_service_graph_request_total");
    expect(edges.map((x) => [x.attributes.client, x.attributes.server, x.attributes.connection_type, x.value])).toEqual(
      expect.arrayContaining([
        ["checkout", "orders", "", 2],
        ["sensor", "10.0.0.8:1883", "messaging_system", 1],
      ]),
    );
    expect(edges).toHaveLength(2);
  });

  it("exports over HTTP/protobuf when the environment says so, with the env endpoint and headers", async () => {
    const rx = await OtlpMetricsHttpReceiver.create();
    cleanups.push(() => rx.stop());
    const p = pipeline({
      env: {
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: rx.metricsUrl,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf",
      },
      headers: { "x-tenant": "t1" },
    });
    expect(p.kind).toBe("otlp-http");
    expect(p.target).toBe(rx.metricsUrl);
    p.record([rec({ ms: 12, endpoint: "/items/42" })], () => ({ server: "shop" }));
    await rx.waitFor((l) => l.some((x) => x.name === "http.server.request.duration"), 20_000, "http histogram");
    const h = one(rx.find("http.server.request.duration", {}, "shop"), "shop histogram");
    expect(h.attributes["http.route"]).toBe("/items/{id}");
    expectSingleValueHistogram(h, 0.012, HTTP_DURATION_BUCKETS);
    expect(rx.requests[0]?.headers["x-tenant"]).toBe("t1");
    expect(rx.requests[0]?.transport).toBe("http");
  });

  it("counts failed exports, logs once, and recovers with the cumulative totals", async () => {
    const rx = await grpcReceiver();
    rx.rejectWith = 14; // UNAVAILABLE
    const warnings: string[] = [];
    const infos: string[] = [];
    const p = pipeline({
      endpoint: rx.endpoint,
      protocol: "grpc",
      logger: { warn: (m) => warnings.push(m), info: (m) => infos.push(m) },
    });
    p.record([rec({ ms: 1 }), rec({ ms: 2 })], () => ({ server: "svc" }));
    const deadline = Date.now() + 20_000;
    while (p.stats().export.failedExports < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(p.stats().export.failedExports).toBeGreaterThanOrEqual(2);
    expect(warnings.filter((w) => w.includes("metrics export failed"))).toHaveLength(1);
    rx.rejectWith = undefined;
    await rx.waitFor((l) => l.some((x) => x.name === "http.server.request.duration"), 20_000, "recovery");
    expect(one(rx.find("http.server.request.duration", {}, "svc"), "svc").count).toBe(2);
    // the receiver may see the request before the exporter sees its answer
    await p.forceFlush();
    const until = Date.now() + 20_000;
    while (!infos.some((m) => m.includes("recovered")) && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    expect(infos.some((m) => m.includes("recovered"))).toBe(true);
  });

  it("never throws on bad input and counts what it skipped", () => {
    const p = pipeline({ exporter: "none", prometheus: false });
    expect(p.kind).toBe("none");
    const bad = [
      rec({ durationNs: Number.NaN }),
      rec({ durationNs: -5 }),
      null as unknown as RequestRecord,
      rec({ ms: 1 }),
    ];
    expect(() => p.recorder.record(bad, () => ({}))).not.toThrow();
    expect(() =>
      p.recorder.record([rec({ ms: 1 })], () => {
        throw new Error("resolver down");
      }),
    ).not.toThrow();
    const s = p.recorder.stats();
    expect(s.records).toBe(5);
    expect(s.skipped.invalid).toBe(3);
    expect(s.red).toBe(2);
  });
});
