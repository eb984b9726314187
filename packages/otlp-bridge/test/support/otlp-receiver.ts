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
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import pbRoot from "otlp-transformer-pb/build/src/generated/root.js";

export type ReceivedValue = string | number | boolean | ReceivedValue[] | { [key: string]: ReceivedValue } | Uint8Array;

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

interface PbLong {
  toString(): string;
}
interface PbAnyValue {
  value?: string;
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: number | PbLong | null;
  doubleValue?: number | null;
  bytesValue?: Uint8Array | null;
  arrayValue?: { values?: PbAnyValue[] | null } | null;
  kvlistValue?: { values?: PbKeyValue[] | null } | null;
}
interface PbKeyValue {
  key?: string | null;
  value?: PbAnyValue | null;
}
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
interface PbType<T> {
  decode(data: Uint8Array): T;
  encode(message: object): { finish(): Uint8Array };
}
interface PbTraceV1 {
  ExportTraceServiceRequest: PbType<PbRequest>;
  ExportTraceServiceResponse: PbType<object>;
}

const traceV1 = (pbRoot as unknown as { opentelemetry: { proto: { collector: { trace: { v1: PbTraceV1 } } } } })
  .opentelemetry.proto.collector.trace.v1;

const KINDS: ReceivedSpanKind[] = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUS = ["unset", "ok", "error"] as const;

function hex(bytes: Uint8Array | null | undefined): string {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex") : "";
}

function toBigInt(v: number | PbLong | null | undefined): bigint {
  if (v == null) return 0n;
  return BigInt(typeof v === "number" ? Math.trunc(v) : v.toString());
}

function anyValue(v: PbAnyValue | null | undefined): ReceivedValue {
  if (!v) return "";
  switch (v.value) {
    case "stringValue":
      return v.stringValue ?? "";
    case "boolValue":
      return v.boolValue ?? false;
    case "intValue":
      return Number(toBigInt(v.intValue));
    case "doubleValue":
      return v.doubleValue ?? 0;
    case "bytesValue":
      return v.bytesValue ?? new Uint8Array();
    case "arrayValue":
      return (v.arrayValue?.values ?? []).map(anyValue);
    case "kvlistValue":
      return keyValues(v.kvlistValue?.values);
    default:
      return "";
  }
}

function keyValues(kvs: PbKeyValue[] | null | undefined): Record<string, ReceivedValue> {
  const out: Record<string, ReceivedValue> = {};
  for (const kv of kvs ?? []) if (kv.key) out[kv.key] = anyValue(kv.value);
  return out;
}

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

// ---- shared collection ----------------------------------------------------------------------------

abstract class ReceiverBase {
  /** Every span received so far (across restarts), in arrival order. */
  readonly spans: ReceivedSpan[] = [];
  /** Every Export request received so far (across restarts). */
  readonly requests: ReceivedRequest[] = [];
  /** Requests that could not be decoded. */
  decodeErrors = 0;
  protected port = 0;
  /**
   * When set, every Export is answered with this failure (gRPC status code for the gRPC receiver,
   * HTTP status for the HTTP one) and its spans are NOT recorded.
   */
  rejectWith: number | undefined;

  protected abstract listen(port: number): Promise<number>;
  protected abstract close(): Promise<void>;
  abstract get running(): boolean;

  /** Starts on 127.0.0.1:`port` (0 = a free port). */
  async start(port = 0): Promise<this> {
    this.port = await this.listen(port);
    return this;
  }

  /** Stops abruptly (connections dropped), like a backend going down. */
  async stop(): Promise<void> {
    if (this.running) await this.close();
  }

  /** Starts again on the same port. */
  async restart(): Promise<void> {
    if (this.running) return;
    await this.listen(this.port);
  }

  get listenPort(): number {
    return this.port;
  }

  clear(): void {
    this.spans.length = 0;
    this.requests.length = 0;
  }

  /** Resolves once `predicate(spans)` holds; rejects after `timeoutMs` with what was received. */
  async waitFor(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.spans)) {
      if (Date.now() > deadline) {
        throw new Error(
          `OTLP receiver: timed out after ${timeoutMs} ms waiting for ${what}; ` +
            `received ${this.spans.length} spans in ${this.requests.length} requests`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
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

  protected record(body: Uint8Array, transport: "grpc" | "http", headers: Record<string, string>): void {
    const { request, spans } = decodeTraceRequest(body, this.requests.length, transport, headers);
    this.requests.push(request);
    for (const s of spans) this.spans.push(s);
  }
}

const EMPTY_RESPONSE = Buffer.from(traceV1.ExportTraceServiceResponse.encode({}).finish());

// ---- gRPC -------------------------------------------------------------------------------------------

const TRACE_SERVICE: grpc.ServiceDefinition = {
  Export: {
    path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

/** OTLP/gRPC trace receiver on 127.0.0.1. */
export class OtlpGrpcReceiver extends ReceiverBase {
  private server: grpc.Server | undefined;

  /** Convenience: `await OtlpGrpcReceiver.create()` = new + start(port). */
  static create(port = 0): Promise<OtlpGrpcReceiver> {
    return new OtlpGrpcReceiver().start(port);
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** For the exporter's `endpoint` / OTEL_EXPORTER_OTLP_ENDPOINT (plaintext). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected listen(port: number): Promise<number> {
    const server = new grpc.Server();
    server.addService(TRACE_SERVICE, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        if (this.rejectWith !== undefined) {
          callback({ code: this.rejectWith, details: "rejected by test receiver" }, null);
          return;
        }
        try {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k.toLowerCase()] = String(v);
          this.record(call.request, "grpc", headers);
          callback(null, EMPTY_RESPONSE);
        } catch (err) {
          this.decodeErrors++;
          callback({ code: grpc.status.INVALID_ARGUMENT, details: String(err) }, null);
        }
      },
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) {
          server.forceShutdown();
          reject(err);
          return;
        }
        this.server = server;
        resolve(bound);
      });
    });
  }

  protected async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    server?.forceShutdown();
  }
}

// ---- HTTP/protobuf ------------------------------------------------------------------------------------

/** OTLP/HTTP (protobuf) trace receiver on 127.0.0.1, path /v1/traces. */
export class OtlpHttpReceiver extends ReceiverBase {
  private server: Server | undefined;

  static create(port = 0): Promise<OtlpHttpReceiver> {
    return new OtlpHttpReceiver().start(port);
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Base URL (the exporter appends /v1/traces), for OTEL_EXPORTER_OTLP_ENDPOINT. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Full traces URL, for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. */
  get tracesUrl(): string {
    return `${this.endpoint}/v1/traces`;
  }

  protected listen(port: number): Promise<number> {
    const server = createServer((req, res) => this.handle(req, res));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.server = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  protected async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      if (this.rejectWith !== undefined) {
        res.writeHead(this.rejectWith, { "content-type": "text/plain" }).end("rejected by test receiver");
        return;
      }
      try {
        let body = Buffer.concat(chunks);
        const encoding = req.headers["content-encoding"];
        if (encoding === "gzip") body = gunzipSync(body);
        else if (encoding === "deflate") body = inflateSync(body);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = String(v);
        this.record(body, "http", headers);
        res.writeHead(200, { "content-type": "application/x-protobuf" }).end(EMPTY_RESPONSE);
      } catch (err) {
        this.decodeErrors++;
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
      }
    });
  }
}
