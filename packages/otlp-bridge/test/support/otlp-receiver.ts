/**
 * Real OTLP trace receivers for tests: a gRPC one (@grpc/grpc-js serving
 * opentelemetry.proto.collector.trace.v1.TraceService/Export) and an HTTP/protobuf one (node:http,
 * POST /v1/traces). Both decode the real protobuf request with the generated protobufjs code shipped
 * in @opentelemetry/otlp-transformer 0.214.0 (installed under the alias "otlp-transformer-pb"), so
 * what the tests see is what a Collector would see.
 *
 * Other packages' tests import this file by relative path:
 *   import { OtlpGrpcReceiver } from "../../otlp-bridge/test/support/otlp-receiver.js";
 */
import pbRoot from "otlp-transformer-pb/build/src/generated/root.js";
import {
  hex,
  keyValues,
  type OtlpSignal,
  OtlpTestServer,
  type OtlpTransport,
  type PbKeyValue,
  type PbLong,
  type PbType,
  type ReceivedValue,
  toBigInt,
  waitUntil,
} from "./otlp-test-server.js";

export type { ReceivedValue } from "./otlp-test-server.js";

export type ReceivedSpanKind = "unspecified" | "internal" | "server" | "client" | "producer" | "consumer";

/** One decoded span, flattened with its resource and scope. Ids are lowercase hex. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** undefined for a root span. */
  parentSpanId?: string;
  name: string;
  kind: ReceivedSpanKind;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  status: { code: "unset" | "ok" | "error"; message: string };
  attributes: Record<string, ReceivedValue>;
  /** OTLP span flags (low byte: W3C trace flags; 0x100/0x200: has-is-remote / is-remote). */
  flags: number;
  resource: Record<string, ReceivedValue>;
  /** resource["service.name"], when a string. */
  serviceName?: string;
  scope: { name: string; version: string };
  /** Index of the Export request this span came in (0-based, per receiver lifetime across restarts). */
  request: number;
}

/** One decoded ExportTraceServiceRequest, as received. */
export interface ReceivedRequest {
  index: number;
  /** "grpc" or "http". */
  transport: "grpc" | "http";
  /** resourceSpans in order, with their decoded resource attributes and span count. */
  resources: { attributes: Record<string, ReceivedValue>; spanCount: number }[];
  spanCount: number;
  /** Request metadata / headers (lowercase keys). */
  headers: Record<string, string>;
}

// ---- protobuf decoding --------------------------------------------------------------------------

interface PbSpan {
  traceId?: Uint8Array | null;
  spanId?: Uint8Array | null;
  parentSpanId?: Uint8Array | null;
  name?: string | null;
  kind?: number | null;
  startTimeUnixNano?: number | PbLong | null;
  endTimeUnixNano?: number | PbLong | null;
  attributes?: PbKeyValue[] | null;
  status?: { code?: number | null; message?: string | null } | null;
  flags?: number | null;
}
interface PbRequest {
  resourceSpans?:
    | {
        resource?: { attributes?: PbKeyValue[] | null } | null;
        scopeSpans?:
          | { scope?: { name?: string | null; version?: string | null } | null; spans?: PbSpan[] | null }[]
          | null;
      }[]
    | null;
}
interface PbTraceV1 {
  ExportTraceServiceRequest: PbType<PbRequest>;
  ExportTraceServiceResponse: PbType<object>;
}

const traceV1 = (pbRoot as unknown as { opentelemetry: { proto: { collector: { trace: { v1: PbTraceV1 } } } } })
  .opentelemetry.proto.collector.trace.v1;

const KINDS: ReceivedSpanKind[] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS = ["unset", "ok", "error"] as const;

/** Decodes a protobuf ExportTraceServiceRequest into flattened spans and a per-request summary. */
export function decodeTraceRequest(
  body: Uint8Array,
  index = 0,
  transport: "grpc" | "http" = "grpc",
  headers: Record<string, string> = {},
): { request: ReceivedRequest; spans: ReceivedSpan[] } {
  const req = traceV1.ExportTraceServiceRequest.decode(body);
  const spans: ReceivedSpan[] = [];
  const resources: ReceivedRequest["resources"] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = keyValues(rs.resource?.attributes);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined;
    let spanCount = 0;
    for (const ss of rs.scopeSpans ?? []) {
      const scope = { name: ss.scope?.name ?? "", version: ss.scope?.version ?? "" };
      for (const s of ss.spans ?? []) {
        spanCount++;
        const parent = hex(s.parentSpanId);
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: parent ? parent : undefined,
          name: s.name ?? "",
          kind: KINDS[s.kind ?? 0] ?? "unspecified",
          startTimeUnixNano: toBigInt(s.startTimeUnixNano),
          endTimeUnixNano: toBigInt(s.endTimeUnixNano),
          status: { code: STATUS[s.status?.code ?? 0] ?? "unset", message: s.status?.message ?? "" },
          attributes: keyValues(s.attributes),
          flags: s.flags ?? 0,
          resource,
          serviceName,
          scope,
          request: index,
        });
      }
    }
    resources.push({ attributes: resource, spanCount });
  }
  return { request: { index, transport, resources, spanCount: spans.length, headers }, spans };
}

// ---- collection --------------------------------------------------------------------------------------

const TRACES: OtlpSignal = {
  grpcPath: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
  httpPath: "/v1/traces",
  emptyResponse: Buffer.from(traceV1.ExportTraceServiceResponse.encode({}).finish()),
};

abstract class TraceReceiver extends OtlpTestServer {
  /** Every span received so far (across restarts), in arrival order. */
  readonly spans: ReceivedSpan[] = [];
  /** Every Export request received so far (across restarts). */
  readonly requests: ReceivedRequest[] = [];

  clear(): void {
    this.spans.length = 0;
    this.requests.length = 0;
  }

  /** Resolves once `predicate(spans)` holds; rejects after `timeoutMs` with what was received. */
  waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
    return waitUntil(
      () => predicate(this.spans),
      timeoutMs,
      () => `${what} (OTLP receiver got ${this.spans.length} spans in ${this.requests.length} requests)`,
    );
  }

  /** Resolves once at least `n` spans were received. */
  waitForSpans(n: number, timeoutMs = 20_000): Promise<ReceivedSpan[]> {
    return this.waitFor((s) => s.length >= n, timeoutMs, `${n} spans`).then(() => this.spans);
  }

  /** Spans grouped by trace id. */
  traces(): Map<string, ReceivedSpan[]> {
    const out = new Map<string, ReceivedSpan[]>();
    for (const s of this.spans) {
      let list = out.get(s.traceId);
      if (!list) {
        list = [];
        out.set(s.traceId, list);
      }
      list.push(s);
    }
    return out;
  }

  protected record(body: Uint8Array, transport: OtlpTransport, headers: Record<string, string>): void {
    const { request, spans } = decodeTraceRequest(body, this.requests.length, transport, headers);
    this.requests.push(request);
    for (const s of spans) this.spans.push(s);
  }
}

/** OTLP/gRPC trace receiver on 127.0.0.1. */
export class OtlpGrpcReceiver extends TraceReceiver {
  constructor() {
    super("grpc", TRACES);
  }

  /** Convenience: `await OtlpGrpcReceiver.create()` = new + start(port). */
  static create(port = 0): Promise<OtlpGrpcReceiver> {
    return new OtlpGrpcReceiver().start(port);
  }
}

/** OTLP/HTTP (protobuf) trace receiver on 127.0.0.1, path /v1/traces. */
export class OtlpHttpReceiver extends TraceReceiver {
  constructor() {
    super("http", TRACES);
  }

  static create(port = 0): Promise<OtlpHttpReceiver> {
    return new OtlpHttpReceiver().start(port);
  }

  /** Full traces URL, for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. */
  get tracesUrl(): string {
    return this.signalUrl;
  }
}
