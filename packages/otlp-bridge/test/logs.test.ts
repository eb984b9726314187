import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestRecord } from "@kalman/flow-aggregator";
import type { HrTime, ServiceIdentity } from "@kalman/span-correlator";
import { afterEach, describe, expect, it } from "vitest";
import {
  createLogSink,
  KALMAN_SCOPE,
  type Logger,
  LogRecordConverter,
  type LogSink,
  logAttributes,
  logBody,
  OtlpJsonLogFileSink,
  OtlpLogExporter,
  resolveLogsProtocol,
  SpanConverter,
  severityOf,
} from "../src/index.js";
import { OtlpLogsGrpcReceiver, OtlpLogsHttpReceiver, type ReceivedLog } from "./support/otlp-logs-receiver.js";
import { syntheticRecord } from "./support/otlp-metrics-receiver.js";

const quiet: Logger = { warn() {}, info() {} };

const BASE_SEC = 1_760_000_000;
/** Deterministic monotonic -> wall clock: BASE_SEC + monoNs. */
const toHrTime = (ns: number): HrTime => [BASE_SEC + Math.floor(ns / 1e9), ns % 1e9];

const identities = new Map<string, ServiceIdentity>();
function serviceOf(r: RequestRecord): ServiceIdentity {
  let id = identities.get(r.comm);
  if (!id) {
    id = { serviceName: r.comm, attributes: { "process.pid": r.pid } };
    identities.set(r.comm, id);
  }
  return id;
}

const TRACE_A = "0af7651916cd43dd8448eb211c80319c";
const SPAN_A = "b7ad6b7169203331";
const TRACE_B = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_B = "00f067aa0ba902b7";
const SPAN_C = "1111111111111111";

/** HTTP 200, HTTP 500 (web), a postgresql query and a timeout (api). */
function fourRecords(): RequestRecord[] {
  return [
    syntheticRecord({
      comm: "web",
      pid: 10,
      requestType: "GET",
      resource: "/api/items",
      endpoint: "/api/items",
      code: 200,
      ms: 12.3,
      startNs: 5_000_000_000,
      reqTcpSeq: 12345,
      respTcpSeq: 67890,
      span: { traceId: TRACE_A, spanId: SPAN_A, linkedBy: "traceparent" },
    }),
    syntheticRecord({
      comm: "web",
      pid: 10,
      requestType: "POST",
      resource: "/api/orders",
      endpoint: "/api/orders",
      status: "server_error",
      code: 500,
      exception: "Internal Server Error",
      ms: 3,
      span: { traceId: TRACE_B, spanId: SPAN_B },
    }),
    syntheticRecord({
      comm: "api",
      pid: 20,
      protocol: "postgresql",
      version: undefined,
      observationPoint: "client",
      requestType: "SELECT",
      resource: "SELECT *\n  FROM items WHERE id = $1",
      endpoint: "items",
      domain: "shop",
      code: undefined,
      serverPort: 5432,
      ms: 0.8,
      span: { traceId: TRACE_B, spanId: SPAN_C, parentSpanId: SPAN_B },
    }),
    syntheticRecord({
      comm: "api",
      pid: 20,
      requestType: "GET",
      resource: "/slow",
      endpoint: "/slow",
      status: "timeout",
      code: undefined,
      ms: 5000,
      xRequestId: "req-42",
    }),
  ];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

function track<T extends LogSink>(sink: T): T {
  cleanups.push(() => sink.shutdown());
  return sink;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "kalman-logs-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function byBody(logs: ReceivedLog[], prefix: string): ReceivedLog {
  const l = logs.find((x) => typeof x.body === "string" && x.body.startsWith(prefix));
  if (!l) throw new Error(`no log starting with ${prefix}: ${logs.map((x) => String(x.body)).join(" | ")}`);
  return l;
}

const converterOptions = () => ({
  toHrTime,
  serviceOf,
  converter: new SpanConverter({ hostName: "test-host", resourceAttributes: { "deployment.environment.name": "t" } }),
});

describe("record -> log record", () => {
  it("builds a one-line body per protocol", () => {
    const [ok, err, pg, timeout] = fourRecords() as [RequestRecord, RequestRecord, RequestRecord, RequestRecord];
    expect(logBody(ok)).toBe("GET /api/items 200 12.3ms");
    expect(logBody(err)).toBe("POST /api/orders 500 3.0ms");
    expect(logBody(pg)).toBe("postgresql SELECT SELECT * FROM items WHERE id = $1 0.8ms");
    expect(logBody(timeout)).toBe("GET /slow timeout 5000.0ms");
    expect(logBody(syntheticRecord({ resource: `/${"x".repeat(400)}` }), 20)).toBe(`GET /${"x".repeat(19)}… 200 1.0ms`);
  });

  it("writes each field once: kalman.* only where no semconv attribute holds the value", () => {
    const keys = (r: RequestRecord) => Object.keys(logAttributes(r));
    const dup = ["kalman.code", "kalman.version", "kalman.request_type", "kalman.resource", "kalman.endpoint"];
    const http = keys(syntheticRecord({ resource: "/a/1", endpoint: "/a/{id}" }));
    expect(http).toEqual(expect.arrayContaining(["http.request.method", "url.path", "http.route", "thread.id"]));
    for (const k of [...dup, "kalman.req_tid"]) expect(http).not.toContain(k);
    // the client side has no route: its endpoint stays
    expect(keys(syntheticRecord({ observationPoint: "client", endpoint: "/a/{id}" }))).toContain("kalman.endpoint");
    // a Redis key is not query text: it stays as kalman.resource; the command is db.operation.name
    const redis = logAttributes(
      syntheticRecord({ protocol: "redis", version: "", requestType: "GET", resource: "user:1", code: undefined }),
    );
    expect(redis).toMatchObject({ "db.operation.name": "GET", "kalman.resource": "user:1" });
    expect(Object.keys(redis)).not.toContain("kalman.request_type");
    // pid and netns: on the log only when its resource does not hold the same value
    const r = syntheticRecord({});
    expect(logAttributes(r)).toMatchObject({ "process.pid": r.pid, "kalman.netns": r.netns });
    const same = { serviceName: "web", attributes: { "process.pid": r.pid, "kalman.netns": r.netns } };
    expect(Object.keys(logAttributes(r, same))).not.toContain("process.pid");
    expect(Object.keys(logAttributes(r, same))).not.toContain("kalman.netns");
    const other = { serviceName: "web", attributes: { "process.pid": r.pid + 1 } };
    expect(logAttributes(r, other)["process.pid"]).toBe(r.pid);
  });

  it("maps status to severity", () => {
    expect(severityOf("ok")).toEqual({ number: 9, text: "INFO" });
    expect(severityOf("client_error")).toEqual({ number: 13, text: "WARN" });
    expect(severityOf("server_error")).toEqual({ number: 17, text: "ERROR" });
    expect(severityOf("timeout")).toEqual({ number: 17, text: "ERROR" });
    expect(severityOf("unknown").text).toBe("INFO");
  });

  it("takes timestamps from the caller's clock and ids from record.span; reuses one resource per service", () => {
    const c = new LogRecordConverter(converterOptions());
    const [ok, , , timeout] = fourRecords() as [RequestRecord, RequestRecord, RequestRecord, RequestRecord];
    const a = c.convert(ok);
    expect(a.hrTime).toEqual([BASE_SEC + 5, 0]);
    expect(a.hrTimeObserved).toEqual([BASE_SEC + 5, 12_300_000]);
    expect(a.spanContext).toMatchObject({ traceId: TRACE_A, spanId: SPAN_A, traceFlags: 1 });
    expect(a.instrumentationScope).toBe(KALMAN_SCOPE);
    expect(c.convert(ok).resource).toBe(a.resource);
    expect(a.resource.attributes["service.name"]).toBe("web");
    expect(c.convert(timeout).spanContext).toBeUndefined();
    const bad = syntheticRecord({ span: { traceId: "nothex", spanId: SPAN_A } });
    expect(c.convert(bad).spanContext).toBeUndefined();
  });
});

describe("OTLP/gRPC log export (real receiver)", () => {
  it("delivers records as log records with body, severity, trace/span ids, attributes, one resource per service", async () => {
    const rx = await OtlpLogsGrpcReceiver.create();
    cleanups.push(() => rx.stop());
    const sink = track(
      createLogSink({
        ...converterOptions(),
        endpoint: rx.endpoint,
        protocol: "grpc",
        logger: quiet,
        env: {},
        flushIntervalMs: 60_000,
      }),
    );
    expect(sink.kind).toBe("otlp-grpc");
    sink.add(fourRecords());
    await sink.flush();
    const logs = await rx.waitForLogs(4);
    expect(logs).toHaveLength(4);
    expect(sink.stats()).toMatchObject({ exported: 4, dropped: 0, queued: 0, failedExports: 0 });

    // one request, one ResourceLogs per service
    expect(rx.requests).toHaveLength(1);
    const resources = rx.requests[0]?.resources ?? [];
    expect(resources.map((r) => r.attributes["service.name"]).sort()).toEqual(["api", "web"]);
    expect(resources.map((r) => r.logCount)).toEqual([2, 2]);
    for (const r of resources) {
      expect(r.attributes["host.name"]).toBe("test-host");
      expect(r.attributes["telemetry.distro.name"]).toBe("kalman");
      expect(r.attributes["deployment.environment.name"]).toBe("t");
    }

    const ok = byBody(logs, "GET /api/items");
    expect(ok.body).toBe("GET /api/items 200 12.3ms");
    expect(ok.severityNumber).toBe(9);
    expect(ok.severityText).toBe("INFO");
    expect(ok.traceId).toBe(TRACE_A);
    expect(ok.spanId).toBe(SPAN_A);
    expect(ok.flags).toBe(1);
    expect(ok.timeUnixNano).toBe(BigInt(BASE_SEC + 5) * 1_000_000_000n);
    expect(ok.observedTimeUnixNano).toBe(BigInt(BASE_SEC + 5) * 1_000_000_000n + 12_300_000n);
    expect(ok.scope).toEqual({ name: "kalman", version: KALMAN_SCOPE.version });
    expect(ok.serviceName).toBe("web");
    expect(ok.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/api/items",
      "http.response.status_code": 200,
      "server.address": "10.0.0.2",
      "server.port": 8080,
      "client.address": "10.0.0.1",
      "client.port": 40000,
      "network.transport": "tcp",
      "kalman.protocol": "http1",
      "kalman.observation_point": "server",
      "kalman.status": "ok",
      "kalman.duration_ns": 12_300_000,
      "kalman.request_bytes": 100,
      "kalman.response_bytes": 200,
      "kalman.req_tcp_seq": 12345,
      "kalman.resp_tcp_seq": 67890,
      "kalman.linked_by": "traceparent",
      "kalman.comm": "web",
    });
    // the resource carries the pid: not repeated on every record; start and end are the two timestamps
    expect(ok.attributes["process.pid"]).toBeUndefined();
    expect(resources.find((r) => r.attributes["service.name"] === "web")?.attributes["process.pid"]).toBe(10);
    expect(Object.keys(ok.attributes).filter((k) => k.endsWith("start_ns") || k.endsWith("end_ns"))).toEqual([]);

    const err = byBody(logs, "POST /api/orders");
    expect(err.severityNumber).toBe(17);
    expect(err.severityText).toBe("ERROR");
    expect(err.traceId).toBe(TRACE_B);
    expect(err.spanId).toBe(SPAN_B);
    expect(err.attributes).toMatchObject({
      "http.response.status_code": 500,
      "error.type": "500",
      "kalman.exception": "Internal Server Error",
    });

    const pg = byBody(logs, "postgresql SELECT");
    expect(pg.severityText).toBe("INFO");
    expect(pg.traceId).toBe(TRACE_B);
    expect(pg.spanId).toBe(SPAN_C);
    expect(pg.serviceName).toBe("api");
    expect(pg.attributes).toMatchObject({
      "db.system.name": "postgresql",
      "db.query.text": "SELECT *\n  FROM items WHERE id = $1",
      "db.operation.name": "SELECT",
      "db.namespace": "shop",
      "server.port": 5432,
      "kalman.protocol": "postgresql",
      "kalman.observation_point": "client",
      "kalman.parent_span_id": SPAN_B,
    });

    const timeout = byBody(logs, "GET /slow");
    expect(timeout.body).toBe("GET /slow timeout 5000.0ms");
    expect(timeout.severityNumber).toBe(17);
    expect(timeout.traceId).toBe("");
    expect(timeout.spanId).toBe("");
    expect(timeout.attributes).toMatchObject({
      "error.type": "timeout",
      "kalman.status": "timeout",
      "kalman.x_request_id": "req-42",
    });
  });

  it("drops and counts a batch the backend rejects for good; retries a retryable failure", async () => {
    const rx = await OtlpLogsGrpcReceiver.create();
    cleanups.push(() => rx.stop());
    const sink = track(
      new OtlpLogExporter({
        ...converterOptions(),
        endpoint: rx.endpoint,
        env: { OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: "grpc" },
        logger: quiet,
        flushIntervalMs: 60_000,
        retryInitialMs: 20,
        retryMaxMs: 50,
      }),
    );
    rx.rejectWith = 3; // INVALID_ARGUMENT: not retryable
    sink.add(fourRecords());
    await sink.flush();
    expect(sink.stats()).toMatchObject({ dropped: 4, exported: 0, failedExports: 1, queued: 0 });

    rx.rejectWith = 14; // UNAVAILABLE: retryable, stays queued
    sink.add(fourRecords().slice(0, 2));
    await sink.flush();
    expect(sink.stats()).toMatchObject({ dropped: 4, queued: 2, failedExports: 2 });
    rx.rejectWith = undefined;
    await rx.waitForLogs(2, 10_000);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ dropped: 4, exported: 2, queued: 0 });
  });
});

describe("OTLP/HTTP log export (real receiver)", () => {
  it("sends protobuf to /v1/logs", async () => {
    const rx = await OtlpLogsHttpReceiver.create();
    cleanups.push(() => rx.stop());
    const sink = track(
      createLogSink({
        ...converterOptions(),
        logger: quiet,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint },
        flushIntervalMs: 60_000,
      }),
    );
    expect(sink.kind).toBe("otlp-http");
    expect(sink.target).toBe(rx.logsUrl);
    sink.add(fourRecords());
    await sink.flush();
    const logs = await rx.waitForLogs(4);
    expect(byBody(logs, "GET /api/items").traceId).toBe(TRACE_A);
    expect(rx.requests[0]?.transport).toBe("http");
  });
});

describe("configuration", () => {
  it("uses the file sink without an endpoint, OTLP with one; LOGS_ variables win", () => {
    const file = track(createLogSink({ ...converterOptions(), env: {}, dir: "/tmp/kalman-logs-unused" }));
    expect(file.kind).toBe("file");
    expect(file.target).toBe("/tmp/kalman-logs-unused/logs.jsonl");

    const grpc = track(
      createLogSink({ ...converterOptions(), env: { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "http://collector:4317" } }),
    );
    expect(grpc.kind).toBe("otlp-grpc");
    expect(grpc.target).toBe("http://collector:4317");

    const http = track(
      createLogSink({
        ...converterOptions(),
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
          OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: "http/protobuf",
        },
      }),
    );
    expect(http.kind).toBe("otlp-http");
    expect(http.target).toBe("http://collector:4317/v1/logs");

    expect(
      resolveLogsProtocol(
        {},
        { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" },
      ),
    ).toBe("http/protobuf");
    expect(resolveLogsProtocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toBe("grpc");
    expect(track(createLogSink({ ...converterOptions(), env: { OTEL_LOGS_EXPORTER: "otlp" } })).kind).not.toBe("file");
  });
});

describe("file sink", () => {
  it("writes valid OTLP-JSON lines (ExportLogsServiceRequest per line)", async () => {
    const dir = await tempDir();
    const sink = track(createLogSink({ ...converterOptions(), dir, env: {}, logger: quiet, flushIntervalMs: 60_000 }));
    expect(sink).toBeInstanceOf(OtlpJsonLogFileSink);
    sink.add(fourRecords().slice(0, 2));
    await sink.flush();
    sink.add(fourRecords().slice(2));
    await sink.flush();
    const lines = (await readFile(join(dir, "logs.jsonl"), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    type JsonLog = {
      body: { stringValue: string };
      severityNumber: number;
      traceId?: string;
      spanId?: string;
      timeUnixNano: string | number;
      attributes: { key: string; value: Record<string, unknown> }[];
    };
    const parsed = lines.map(
      (l) =>
        JSON.parse(l) as {
          resourceLogs: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeLogs: { scope: { name: string }; logRecords: JsonLog[] }[];
          }[];
        },
    );
    const first = parsed[0]?.resourceLogs;
    expect(first).toHaveLength(1);
    const svc = first?.[0]?.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue;
    expect(svc).toBe("web");
    const recs = first?.[0]?.scopeLogs[0]?.logRecords ?? [];
    expect(first?.[0]?.scopeLogs[0]?.scope.name).toBe("kalman");
    expect(recs.map((r) => r.body.stringValue)).toEqual(["GET /api/items 200 12.3ms", "POST /api/orders 500 3.0ms"]);
    expect(recs[0]?.severityNumber).toBe(9);
    expect(recs[1]?.severityNumber).toBe(17);
    expect(recs[0]?.traceId).toBe(TRACE_A);
    expect(recs[0]?.spanId).toBe(SPAN_A);
    expect(String(recs[0]?.timeUnixNano)).toBe(`${BASE_SEC + 5}000000000`);
    expect(recs[0]?.attributes.find((a) => a.key === "http.request.method")?.value).toEqual({ stringValue: "GET" });
    const second = parsed[1]?.resourceLogs?.[0]?.scopeLogs[0]?.logRecords ?? [];
    expect(second.map((r) => r.body.stringValue)).toEqual([
      "postgresql SELECT SELECT * FROM items WHERE id = $1 0.8ms",
      "GET /slow timeout 5000.0ms",
    ]);
    expect(sink.stats()).toMatchObject({ exported: 4, dropped: 0 });
  });

  it("rotates by size like the trace file sink", async () => {
    const dir = await tempDir();
    const sink = track(
      new OtlpJsonLogFileSink({
        ...converterOptions(),
        dir,
        maxBytes: 500,
        maxFiles: 2,
        logger: quiet,
        flushIntervalMs: 60_000,
      }),
    );
    for (let i = 0; i < 5; i++) {
      sink.add([syntheticRecord({ comm: "web" })]);
      await sink.flush();
    }
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(["logs.jsonl", "logs.jsonl.1", "logs.jsonl.2"]);
    for (const f of files) {
      for (const line of (await readFile(join(dir, f), "utf8")).trimEnd().split("\n")) {
        expect(JSON.parse(line).resourceLogs).toHaveLength(1);
      }
    }
  });

  it("a full queue drops the oldest and counts them", async () => {
    const dir = await tempDir();
    const warnings: string[] = [];
    const sink = track(
      new OtlpJsonLogFileSink({
        ...converterOptions(),
        dir,
        maxQueueSize: 3,
        maxBatchSize: 100,
        flushIntervalMs: 60_000,
        logger: { warn: (m) => warnings.push(m), info() {} },
      }),
    );
    sink.add([1, 2, 3, 4, 5].map((i) => syntheticRecord({ resource: `/r${i}` })));
    expect(sink.stats()).toMatchObject({ queued: 3, dropped: 2, exported: 0 });
    expect(warnings).toContain("dropping log records");
    await sink.flush();
    expect(sink.stats()).toMatchObject({ queued: 0, dropped: 2, exported: 3 });
    const line = (await readFile(join(dir, "logs.jsonl"), "utf8")).trim();
    const bodies = (
      JSON.parse(line) as { resourceLogs: { scopeLogs: { logRecords: { body: { stringValue: string } }[] }[] }[] }
    ).resourceLogs.flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords.map((l) => l.body.stringValue)));
    expect(bodies).toEqual(["GET /r3 200 1.0ms", "GET /r4 200 1.0ms", "GET /r5 200 1.0ms"]);

    await sink.shutdown();
    sink.add([syntheticRecord()]);
    expect(sink.stats().dropped).toBe(3);
  });
});
