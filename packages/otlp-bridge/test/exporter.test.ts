import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../src/index.js";
import { OtlpSpanExporter } from "../src/index.js";
import { OtlpGrpcReceiver, OtlpHttpReceiver, type ReceivedSpan } from "./support/otlp-receiver.js";
import { makeSpan, manySpans, newTraceId, service } from "./support/spans.js";

const quiet: Logger = { warn() {}, info() {} };

/** A small trace over two services: frontend (server -> client) -> backend (server, failing). */
function threeSpanTrace() {
  const traceId = newTraceId();
  const frontend = service("frontend", { "process.pid": 101, "k8s.namespace.name": "shop" });
  const backend = service("backend", { "process.pid": 202 });
  const root = makeSpan({
    traceId,
    service: frontend,
    name: "GET /checkout",
    kind: "server",
    attributes: { "http.request.method": "GET", "http.response.status_code": 200, "url.path": "/checkout" },
  });
  const call = makeSpan({
    traceId,
    parentSpanId: root.spanId,
    service: frontend,
    name: "POST",
    kind: "client",
    start: [1_760_000_000, 500_000],
    end: [1_760_000_000, 2_000_000],
    durationNs: 1_500_000,
    attributes: { "server.port": 8080, ratio: 0.25, "kalman.tls": true },
    linkedBy: "thread",
  });
  const served = makeSpan({
    traceId,
    parentSpanId: call.spanId,
    service: backend,
    name: "POST /pay",
    kind: "server",
    status: { code: "error", message: "HTTP 503" },
    attributes: { "http.response.status_code": 503 },
    linkedBy: "tcp_seq",
  });
  return { traceId, root, call, served };
}

function byId(spans: ReceivedSpan[], id: string): ReceivedSpan {
  const s = spans.find((x) => x.spanId === id);
  if (!s) throw new Error(`span ${id} not received`);
  return s;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function grpcReceiver(): Promise<OtlpGrpcReceiver> {
  const r = await OtlpGrpcReceiver.create();
  cleanups.push(() => r.stop());
  return r;
}

function exporter(opts: ConstructorParameters<typeof OtlpSpanExporter>[0]): OtlpSpanExporter {
  const e = new OtlpSpanExporter({ logger: quiet, ...opts });
  cleanups.push(() => e.shutdown());
  return e;
}

describe("OtlpSpanExporter over gRPC", () => {
  it("delivers spans with ids, parents, kinds, status, attributes and one resource per service", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint });
    expect(exp.kind).toBe("otlp-grpc");
    const { traceId, root, call, served } = threeSpanTrace();
    exp.add([root, call, served]);
    await exp.flush();

    expect(receiver.spans).toHaveLength(3);
    expect(receiver.decodeErrors).toBe(0);
    const r = byId(receiver.spans, root.spanId);
    const c = byId(receiver.spans, call.spanId);
    const s = byId(receiver.spans, served.spanId);
    for (const x of [r, c, s]) expect(x.traceId).toBe(traceId);
    expect(r.parentSpanId).toBeUndefined();
    expect(c.parentSpanId).toBe(root.spanId);
    expect(s.parentSpanId).toBe(call.spanId);
    expect([r.name, c.name, s.name]).toEqual(["GET /checkout", "POST", "POST /pay"]);
    expect([r.kind, c.kind, s.kind]).toEqual(["server", "client", "server"]);
    expect(r.status).toEqual({ code: "unset", message: "" });
    expect(s.status).toEqual({ code: "error", message: "HTTP 503" });
    expect(r.attributes).toEqual({
      "http.request.method": "GET",
      "http.response.status_code": 200,
      "url.path": "/checkout",
    });
    expect(c.attributes).toMatchObject({
      "server.port": 8080,
      ratio: 0.25,
      "kalman.tls": true,
      "kalman.linked_by": "thread",
    });
    expect(s.attributes["kalman.linked_by"]).toBe("tcp_seq");
    // times: HrTime -> unix nanos
    expect(c.startTimeUnixNano).toBe(1_760_000_000_000_500_000n);
    expect(c.endTimeUnixNano).toBe(1_760_000_000_002_000_000n);
    // a server span's parent is remote (in the caller's process); a client span's is local
    expect(s.flags & 0x300).toBe(0x300);
    expect(c.flags & 0x300).toBe(0x100);
    expect(s.flags & 0xff).toBe(1);

    // one ResourceSpans per service, each with its own resource
    expect(receiver.requests).toHaveLength(1);
    const resources = receiver.requests[0]!.resources;
    expect(resources.map((x) => x.attributes["service.name"]).sort()).toEqual(["backend", "frontend"]);
    const fe = resources.find((x) => x.attributes["service.name"] === "frontend")!;
    expect(fe.spanCount).toBe(2);
    expect(fe.attributes).toMatchObject({ "process.pid": 101, "k8s.namespace.name": "shop", "kalman.agent": "kalman" });
    expect(typeof fe.attributes["host.name"]).toBe("string");
    expect(s.serviceName).toBe("backend");
    expect(s.resource["process.pid"]).toBe(202);
    expect(s.scope.name).toBe("kalman");

    expect(exp.stats()).toMatchObject({ queued: 0, inFlight: 0, exported: 3, dropped: 0, failedExports: 0 });
  });

  it("sends batches of at most maxBatchSize spans and exports everything", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint, maxBatchSize: 100, maxQueueSize: 2000 });
    const spans = manySpans(1234, service("bulk"));
    for (let i = 0; i < spans.length; i += 50) exp.add(spans.slice(i, i + 50));
    await exp.flush();
    expect(receiver.spans).toHaveLength(1234);
    expect(new Set(receiver.spans.map((s) => s.spanId)).size).toBe(1234);
    expect(Math.max(...receiver.requests.map((r) => r.spanCount))).toBeLessThanOrEqual(100);
    expect(receiver.requests.length).toBeGreaterThanOrEqual(13);
    expect(exp.stats()).toMatchObject({ exported: 1234, dropped: 0, queued: 0 });
  });

  it("sends a partial batch on the flush interval without flush()", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint, flushIntervalMs: 50 });
    const span = makeSpan({ service: service("ticker") });
    exp.add([span]);
    await receiver.waitFor((s) => s.some((x) => x.spanId === span.spanId), 20_000, "the span");
    expect(exp.stats().exported).toBe(1);
  });

  it("a backend far away: several Exports are pending at once on the one channel", async () => {
    const receiver = await grpcReceiver();
    receiver.answerDelayMs = 100;
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint, maxBatchSize: 100, maxConcurrentExports: 3 });
    const spans = manySpans(900, service("far-grpc"));
    exp.add(spans);
    await exp.flush();
    expect(receiver.maxPending).toBeGreaterThanOrEqual(2);
    expect(receiver.maxPending).toBeLessThanOrEqual(3);
    expect(new Set(receiver.spans.map((s) => s.spanId))).toEqual(new Set(spans.map((s) => s.spanId)));
    expect(receiver.spans).toHaveLength(900);
    expect(exp.stats()).toMatchObject({ exported: 900, dropped: 0, failedExports: 0 });
  });

  it("passes configured headers as gRPC metadata", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint, headers: { "x-kalman-tenant": "t1" } });
    exp.add([makeSpan({ service: service("h") })]);
    await exp.flush();
    expect(receiver.requests[0]?.headers["x-kalman-tenant"]).toBe("t1");
  });

  it("drops (and counts) a batch the backend rejects for good, without retrying it", async () => {
    const receiver = await grpcReceiver();
    receiver.rejectWith = 3; // INVALID_ARGUMENT: not retryable per the OTLP spec
    const warnings: string[] = [];
    const exp = new OtlpSpanExporter({
      protocol: "grpc",
      endpoint: receiver.endpoint,
      maxBatchSize: 10,
      logger: { warn: (m) => warnings.push(m), info() {} },
    });
    cleanups.push(() => exp.shutdown());
    exp.add(manySpans(25, service("rejected")));
    await exp.flush();
    expect(exp.stats()).toMatchObject({ queued: 0, exported: 0, dropped: 25, failedExports: 3 });
    expect(exp.stats().lastError).toMatch(/INVALID_ARGUMENT|rejected/);
    expect(warnings.some((w) => w.includes("dropping"))).toBe(true);

    receiver.rejectWith = undefined;
    const ok = makeSpan({ service: service("accepted") });
    exp.add([ok]);
    await exp.flush();
    expect(receiver.spans.map((s) => s.spanId)).toEqual([ok.spanId]);
  });

  it("backend down: the queue stays bounded, drops are counted, add() never throws; export resumes on restart", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({
      protocol: "grpc",
      endpoint: receiver.endpoint,
      maxQueueSize: 1000,
      maxBatchSize: 200,
      retryInitialMs: 50,
      retryMaxMs: 400,
      timeoutMillis: 2000,
    });
    // warm up: the connection works
    exp.add([makeSpan({ service: service("warm") })]);
    await exp.flush();
    expect(receiver.spans).toHaveLength(1);

    await receiver.stop();
    let added = 1;
    const svc = service("storm");
    for (let round = 0; round < 20; round++) {
      const batch = manySpans(500, svc, `down-${round}`);
      expect(() => exp.add(batch)).not.toThrow();
      added += batch.length;
      const st = exp.stats();
      expect(st.queued).toBeLessThanOrEqual(1000);
      expect(st.inFlight).toBeLessThanOrEqual(200 * 8); // maxBatchSize × the batches in flight at once
      if (round % 5 === 0) await exp.flush(); // an attempt against the dead backend
    }
    await exp.flush();
    const down = exp.stats();
    expect(down.queued).toBeLessThanOrEqual(1000);
    expect(down.failedExports).toBeGreaterThan(0);
    expect(down.lastError).toBeTruthy();
    expect(down.dropped).toBeGreaterThanOrEqual(added - 1 - 1000 - 200);
    // every span is accounted for
    expect(down.exported + down.dropped + down.queued + down.inFlight).toBe(added);
    expect(receiver.spans).toHaveLength(1);

    await receiver.restart();
    const later = makeSpan({ service: service("after-restart"), name: "later" });
    exp.add([later]);
    added++;
    await receiver.waitFor((s) => s.some((x) => x.spanId === later.spanId), 30_000, "the span added after restart");
    await exp.flush();
    const up = exp.stats();
    expect(up.queued).toBe(0);
    expect(up.exported + up.dropped).toBe(added);
    // what was still queued when the backend came back was delivered, once
    expect(receiver.spans.length).toBe(up.exported);
    expect(new Set(receiver.spans.map((s) => s.spanId)).size).toBe(receiver.spans.length);
    expect(up.exported).toBeGreaterThan(1 + 1);
  });

  it("counts spans with invalid ids as dropped instead of sending garbage", async () => {
    const receiver = await grpcReceiver();
    const exp = exporter({ protocol: "grpc", endpoint: receiver.endpoint });
    const good = makeSpan({ service: service("v") });
    exp.add([
      makeSpan({ service: service("v"), traceId: "xyz" }),
      makeSpan({ service: service("v"), spanId: "0".repeat(16) }),
      good,
    ]);
    await exp.flush();
    expect(receiver.spans.map((s) => s.spanId)).toEqual([good.spanId]);
    expect(exp.stats()).toMatchObject({ exported: 1, dropped: 2 });
  });

  it("after shutdown, add() counts instead of queueing", async () => {
    const receiver = await grpcReceiver();
    const exp = new OtlpSpanExporter({ protocol: "grpc", endpoint: receiver.endpoint, logger: quiet });
    await exp.shutdown();
    expect(() => exp.add(manySpans(3, service("late")))).not.toThrow();
    expect(exp.stats()).toMatchObject({ queued: 0, dropped: 3 });
  });
});

describe("OtlpSpanExporter over HTTP/protobuf", () => {
  it("delivers the same trace to an OTLP/HTTP receiver", async () => {
    const receiver = await OtlpHttpReceiver.create();
    cleanups.push(() => receiver.stop());
    const exp = exporter({ protocol: "http/protobuf", endpoint: receiver.endpoint });
    expect(exp.kind).toBe("otlp-http");
    expect(exp.target).toBe(receiver.tracesUrl);
    const { traceId, root, call, served } = threeSpanTrace();
    exp.add([root, call, served]);
    await exp.flush();
    expect(receiver.spans).toHaveLength(3);
    expect(receiver.requests[0]?.headers["content-type"]).toBe("application/x-protobuf");
    const s = byId(receiver.spans, served.spanId);
    expect(s.traceId).toBe(traceId);
    expect(s.parentSpanId).toBe(call.spanId);
    expect(s.kind).toBe("server");
    expect(s.status).toEqual({ code: "error", message: "HTTP 503" });
    expect(byId(receiver.spans, call.spanId).kind).toBe("client");
    expect(receiver.requests[0]!.resources.map((x) => x.attributes["service.name"]).sort()).toEqual([
      "backend",
      "frontend",
    ]);
  });

  it("a backend far away: several batches are in flight at once, and every span arrives once", async () => {
    const receiver = await OtlpHttpReceiver.create();
    cleanups.push(() => receiver.stop());
    receiver.answerDelayMs = 100;
    const exp = exporter({ protocol: "http/protobuf", endpoint: receiver.endpoint, maxBatchSize: 100 });
    const spans = manySpans(1000, service("far"));
    exp.add(spans);
    await exp.flush();
    // one batch per round trip would have kept the receiver at one Export pending; at most 8 (the default)
    expect(receiver.maxPending).toBeGreaterThanOrEqual(2);
    expect(receiver.maxPending).toBeLessThanOrEqual(8);
    expect(receiver.requests.length).toBe(10);
    expect(new Set(receiver.spans.map((s) => s.spanId))).toEqual(new Set(spans.map((s) => s.spanId)));
    expect(receiver.spans).toHaveLength(1000);
    expect(exp.stats()).toMatchObject({ exported: 1000, dropped: 0, failedExports: 0 });
  });

  it("retries after the HTTP backend comes back", async () => {
    const receiver = await OtlpHttpReceiver.create();
    cleanups.push(() => receiver.stop());
    const exp = exporter({
      protocol: "http/protobuf",
      endpoint: receiver.endpoint,
      retryInitialMs: 50,
      retryMaxMs: 300,
      timeoutMillis: 500,
    });
    await receiver.stop();
    const spans = manySpans(10, service("http-down"));
    exp.add(spans);
    await exp.flush();
    expect(exp.stats().failedExports).toBeGreaterThan(0);
    expect(exp.stats().queued).toBe(10);
    await receiver.restart();
    await receiver.waitForSpans(10, 30_000);
    expect(new Set(receiver.spans.map((s) => s.spanId))).toEqual(new Set(spans.map((s) => s.spanId)));
  });
});
