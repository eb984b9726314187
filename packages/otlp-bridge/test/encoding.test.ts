// The hand-written OTLP encoders against the official serializers of @opentelemetry/otlp-transformer:
// the same spans and log records must give the very same bytes (protobuf) and text (JSON).
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import type { FlowRecord } from "@kalman/flow-aggregator";
import type { HrTime, ServiceIdentity } from "@kalman/span-correlator";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import {
  JsonLogsSerializer,
  JsonTraceSerializer,
  ProtobufLogsSerializer,
  ProtobufTraceSerializer,
} from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { describe, expect, it } from "vitest";
import { logsJson, tracesJson } from "../src/encoding/otlp-json.js";
import { serializeLogs, serializeTraces } from "../src/encoding/otlp-proto.js";
import { ProtoWriter } from "../src/encoding/proto-writer.js";
import { KALMAN_SCOPE, LogRecordConverter, SpanConverter } from "../src/index.js";
import { httpLogExporter, httpTraceExporter } from "../src/otlp-exporters.js";
import { syntheticRecord } from "./support/otlp-metrics-receiver.js";
import { makeSpan, newSpanId, newTraceId, service } from "./support/spans.js";

const text = new TextDecoder();
const BASE_SEC = 1_760_000_000;
const toHrTime = (ns: number): HrTime => [BASE_SEC + Math.floor(ns / 1e9), ns % 1e9];

/** Attribute values of every kind the transformer handles, including the awkward ones. */
const ODD_VALUES: Record<string, unknown> = {
  ascii: "GET /api/items/42",
  unicode: "héllo wörld ✓ 𝄞",
  quote: 'say "hi"\\ and \n newline \u0001 ctrl',
  lone: "bad \ud800 surrogate",
  empty: "",
  zero: 0,
  int: 8080,
  big: 2 ** 40 + 3,
  huge: 2 ** 62,
  negative: -42,
  negativeBig: -(2 ** 40) - 5,
  float: 3.25,
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  yes: true,
  no: false,
  bytes: new Uint8Array([0, 1, 2, 250, 255]),
  list: ["a", 1, 2.5, true, ["nested"]],
  map: { inner: "v", n: 7, deeper: { x: "y" } },
  missing: undefined,
  long: "x".repeat(300),
  veryLong: "y".repeat(20_000),
};

function readableSpans(): ReadableSpan[] {
  const converter = new SpanConverter({ hostName: "h", env: {} });
  const a = service("frontend", { "process.pid": 10, "container.id": "c".repeat(64) });
  const b = service("api ✓", { "process.pid": 11, list: ["x", "y"] as never });
  const trace = newTraceId();
  const spans = [
    makeSpan({ service: a, traceId: trace, kind: "server", attributes: { "http.request.method": "GET" } }),
    makeSpan({
      service: b,
      traceId: trace,
      parentSpanId: newSpanId(),
      kind: "server",
      status: { code: "error", message: "500 ✗" },
      attributes: ODD_VALUES as Record<string, never>,
      linkedBy: "tcp_seq",
    }),
    makeSpan({ service: a, kind: "client", parentSpanId: newSpanId(), unlinkedReason: "no caller observed" }),
    makeSpan({ service: b, kind: "client", start: [BASE_SEC + 5, 999_999_999], end: [BASE_SEC + 6, 0] }),
    makeSpan({ service: a, name: "x".repeat(200), status: { code: "error", message: "" } }),
  ];
  const out = spans.map((s) => converter.convert(s) as ReadableSpan);
  // far past and far future times, a kind the converter never makes, a scope with a schema URL
  const base = out[0] as ReadableSpan;
  out.push({ ...base, startTime: [1, 5], endTime: [4_000_000_000, 123], kind: 0 });
  out.push({
    ...base,
    instrumentationScope: { name: "other", version: "2", schemaUrl: "https://opentelemetry.io/schemas/1.30.0" },
  });
  out.push({ ...base, resource: resourceFromAttributes({ "service.name": "third", n: 1 }) });
  return out;
}

function readableLogs(): ReadableLogRecord[] {
  const identities = new Map<string, ServiceIdentity>();
  const logs = new LogRecordConverter({
    toHrTime,
    env: {},
    converter: { hostName: "h", env: {} },
    serviceOf: (r) => {
      let id = identities.get(r.comm);
      if (!id) {
        id = { serviceName: r.comm, attributes: { "process.pid": r.pid } };
        identities.set(r.comm, id);
      }
      return id;
    },
  });
  const out: ReadableLogRecord[] = [];
  for (let i = 0; i < 20; i++) {
    const r = syntheticRecord({
      comm: i % 3 ? "api" : "web",
      pid: 100 + (i % 3),
      code: i % 5 ? 200 : 503,
      status: i % 5 ? "ok" : "server_error",
      startNs: i * 1_000_000_007,
      endNs: i * 1_000_000_007 + 5_000,
      durationNs: 5_000,
    });
    if (i % 4 === 0) r.span = { traceId: newTraceId(), spanId: newSpanId(), parentSpanId: newSpanId() };
    if (i === 7) r.resource = "SELECT 'é' FROM \"t\"\n WHERE x = 1";
    out.push(logs.convert(r));
  }
  const flow = {
    protocol: "tcp",
    startNs: 1,
    endNs: 2,
  } as unknown as FlowRecord;
  try {
    out.push(logs.convertFlow(flow));
  } catch {
    // a partial flow may not convert; the request logs are what matters here
  }
  const base = out[1] as ReadableLogRecord;
  out.push({ ...base, body: { structured: ["a", 1] }, eventName: "kalman.request", attributes: ODD_VALUES as never });
  out.push({ ...base, body: undefined, severityNumber: undefined, severityText: undefined, spanContext: undefined });
  out.push({ ...base, body: 12.5, severityNumber: SeverityNumber.UNSPECIFIED, instrumentationScope: KALMAN_SCOPE });
  out.push({ ...base, instrumentationScope: { ...KALMAN_SCOPE } });
  return out;
}

describe("hand-written OTLP encoders", () => {
  it("protobuf traces: the same bytes as ProtobufTraceSerializer", () => {
    const spans = readableSpans();
    expect(Buffer.from(serializeTraces(spans))).toEqual(
      Buffer.from(ProtobufTraceSerializer.serializeRequest(spans) as Uint8Array),
    );
    // the reused buffer gives fresh copies: a second, smaller request does not disturb the first
    const first = serializeTraces(spans);
    const firstCopy = Buffer.from(first);
    serializeTraces(spans.slice(0, 1));
    expect(Buffer.from(first)).toEqual(firstCopy);
  });

  it("JSON traces: the same text as JsonTraceSerializer", () => {
    const spans = readableSpans();
    expect(text.decode(tracesJson(spans))).toBe(text.decode(JsonTraceSerializer.serializeRequest(spans)));
  });

  it("protobuf logs: the same bytes as ProtobufLogsSerializer", () => {
    const logs = readableLogs();
    expect(Buffer.from(serializeLogs(logs))).toEqual(
      Buffer.from(ProtobufLogsSerializer.serializeRequest(logs) as Uint8Array),
    );
  });

  it("JSON logs: the same text as JsonLogsSerializer", () => {
    const logs = readableLogs();
    expect(text.decode(logsJson(logs))).toBe(text.decode(JsonLogsSerializer.serializeRequest(logs)));
  });

  it("repeated, alternating and ever-changing attribute values (the per-key value cache) encode the same", () => {
    const base = readableLogs()[1] as ReadableLogRecord;
    const logs: ReadableLogRecord[] = [];
    for (let i = 0; i < 300; i++) {
      logs.push({
        ...base,
        attributes: {
          same: "GET",
          alternating: i % 2 ? "/a" : "/b",
          changing: `/items/${i}`,
          escaped: i % 3 ? 'say "hi"' : "é",
          long: "z".repeat(60 + (i % 10)),
          kind: i % 7 ? "str" : 7,
        },
      });
    }
    for (let round = 0; round < 2; round++) {
      expect(Buffer.from(serializeLogs(logs))).toEqual(
        Buffer.from(ProtobufLogsSerializer.serializeRequest(logs) as Uint8Array),
      );
      expect(text.decode(logsJson(logs))).toBe(text.decode(JsonLogsSerializer.serializeRequest(logs)));
    }
  });

  it("spans with events or links go through the official serializer, unchanged", () => {
    const spans = readableSpans();
    const withEvent: ReadableSpan = {
      ...(spans[0] as ReadableSpan),
      events: [{ name: "e", time: [BASE_SEC, 5], attributes: { k: "v" } }],
    };
    const batch = [withEvent, ...spans];
    expect(Buffer.from(serializeTraces(batch))).toEqual(
      Buffer.from(ProtobufTraceSerializer.serializeRequest(batch) as Uint8Array),
    );
    expect(text.decode(tracesJson(batch))).toBe(text.decode(JsonTraceSerializer.serializeRequest(batch)));
  });

  it("ProtoWriter: lengths past one byte move the body; hrTime is exact to the nanosecond", () => {
    const w = new ProtoWriter(4);
    const start = w.begin();
    w.string("z".repeat(70_000));
    w.end(start);
    const out = w.finish();
    // outer length 70003 (3-byte varint), inner string length 70000 (3-byte varint)
    expect(out.length).toBe(3 + 3 + 70_000);
    expect([...out.subarray(0, 3)]).toEqual([0xf3, 0xa2, 0x04]);
    const t = new ProtoWriter(8);
    t.hrTime(1_760_000_123, 987_654_321);
    const v = Buffer.from(t.finish()).readBigUInt64LE(0);
    expect(v).toBe(1_760_000_123_987_654_321n);
  });

  it("the exporters put the official exporters' requests on the wire: same path, headers and body", async () => {
    const seen: Array<{ url?: string; headers: IncomingHttpHeaders; body: Buffer }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200, { "content-type": "application/x-protobuf" });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const send = <T>(e: { export(items: T[], done: (r: { code: number }) => void): void }, items: T[]) =>
      new Promise<number>((r) => e.export(items, (res) => r(res.code)));
    try {
      const config = { url: `${base}/v1/traces`, headers: { "x-tenant": "a" } };
      const spans = readableSpans();
      expect(await send(new OTLPTraceExporter(config), spans)).toBe(0);
      expect(await send(httpTraceExporter(config), spans)).toBe(0);
      const logConfig = { url: `${base}/v1/logs`, headers: { "x-tenant": "b" } };
      const logs = readableLogs();
      expect(await send(new OTLPLogExporter(logConfig), logs)).toBe(0);
      expect(await send(httpLogExporter(logConfig), logs)).toBe(0);
    } finally {
      server.close();
    }
    expect(seen.map((s) => s.url)).toEqual(["/v1/traces", "/v1/traces", "/v1/logs", "/v1/logs"]);
    for (const [official, ours] of [
      [seen[0], seen[1]],
      [seen[2], seen[3]],
    ]) {
      expect(ours?.body.length).toBeGreaterThan(1000);
      expect(ours?.body.equals(official?.body as Buffer)).toBe(true);
      for (const h of ["content-type", "user-agent", "x-tenant", "content-length"])
        expect(ours?.headers[h]).toBe(official?.headers[h]);
    }
  });
});
