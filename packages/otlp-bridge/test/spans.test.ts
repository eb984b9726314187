import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { KALMAN_SCOPE, resourceAttributesFromEnv, SpanConverter } from "../src/index.js";
import { BoundedQueue } from "../src/queue.js";
import { makeSpan, service } from "./support/spans.js";

describe("SpanConverter", () => {
  it("maps a Span onto the ReadableSpan shape", () => {
    const conv = new SpanConverter({ hostName: "h1", resourceAttributes: {} });
    const parent = makeSpan({ service: service("a") });
    const span = makeSpan({
      service: service("a", { "process.pid": 3 }),
      traceId: parent.traceId,
      parentSpanId: parent.spanId,
      kind: "client",
      status: { code: "error", message: "boom" },
      start: [100, 999_999_999],
      end: [101, 1],
      durationNs: Number.NaN,
      attributes: { k: "v" },
    });
    const r = conv.convert(span)!;
    expect(r.spanContext()).toMatchObject({ traceId: span.traceId, spanId: span.spanId, traceFlags: 1 });
    expect(r.parentSpanContext).toMatchObject({ traceId: span.traceId, spanId: parent.spanId, isRemote: false });
    expect(r.kind).toBe(SpanKind.CLIENT);
    expect(r.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(r.startTime).toEqual([100, 999_999_999]);
    expect(r.duration).toEqual([0, 2]); // computed from start/end when durationNs is unusable
    expect(r.ended).toBe(true);
    expect(r.instrumentationScope).toBe(KALMAN_SCOPE);
    expect(r.attributes).toEqual({ k: "v" });
    expect(r.resource.attributes).toMatchObject({ "service.name": "a", "process.pid": 3, "host.name": "h1" });
    expect(conv.convert({ ...span, parentSpanId: undefined })!.parentSpanContext).toBeUndefined();
    expect(conv.convert({ ...span, kind: "server" })!.kind).toBe(SpanKind.SERVER);
    expect(conv.convert({ ...span, status: { code: "unset" } })!.status).toEqual({ code: SpanStatusCode.UNSET });
  });

  it("rejects ids that are not W3C ids", () => {
    const conv = new SpanConverter();
    const ok = makeSpan({ service: service("a") });
    expect(conv.convert(ok)).toBeDefined();
    expect(conv.convert({ ...ok, traceId: ok.traceId.toUpperCase().replace(/[0-9]/g, "A") })).toBeUndefined();
    expect(conv.convert({ ...ok, traceId: "0".repeat(32) })).toBeUndefined();
    expect(conv.convert({ ...ok, spanId: ok.spanId.slice(1) })).toBeUndefined();
  });

  it("caches one Resource per service identity, bounded", () => {
    const conv = new SpanConverter({ maxResources: 2 });
    const a1 = conv.resourceFor(service("a", { x: 1 }));
    const a2 = conv.resourceFor(service("a", { x: 1 })); // equal content, different object
    expect(a2).toBe(a1);
    expect(conv.resourceFor(service("a", { x: 2 }))).not.toBe(a1);
    conv.resourceFor(service("b"));
    conv.resourceFor(service("c"));
    expect(conv.resourceCount).toBe(2);
    // service identity wins over base attributes, service.name over both
    const conv2 = new SpanConverter({ resourceAttributes: { env: "base", "service.name": "base" }, hostName: null });
    const r = conv2.resourceFor(service("svc", { env: "own", "service.name": "attr" }));
    expect(r.attributes).toMatchObject({ env: "own", "service.name": "svc" });
    expect(r.attributes["host.name"]).toBeUndefined();
  });

  it("parses OTEL_RESOURCE_ATTRIBUTES", () => {
    expect(resourceAttributesFromEnv({ OTEL_RESOURCE_ATTRIBUTES: " a=1, b = x%20y ,bad,=v" })).toEqual({
      a: "1",
      b: "x y",
    });
    expect(resourceAttributesFromEnv({})).toEqual({});
  });
});

describe("BoundedQueue", () => {
  it("evicts the oldest when full and reports it", () => {
    const q = new BoundedQueue<number>(3);
    expect([q.push(1), q.push(2), q.push(3), q.push(4)]).toEqual([false, false, false, true]);
    expect(q.size).toBe(3);
    expect(q.take(10)).toEqual([2, 3, 4]);
    expect(q.size).toBe(0);
  });

  it("puts a failed batch back in front, dropping its oldest when there is no room", () => {
    const q = new BoundedQueue<number>(4);
    q.push(10);
    q.push(11);
    expect(q.unshiftAll([1, 2])).toBe(0);
    expect(q.take(4)).toEqual([1, 2, 10, 11]);
    q.push(20);
    q.push(21);
    q.push(22);
    expect(q.unshiftAll([1, 2, 3])).toBe(2);
    expect(q.take(10)).toEqual([3, 20, 21, 22]);
  });
});
