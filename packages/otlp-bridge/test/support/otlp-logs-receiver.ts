/**
 * Real OTLP logs receivers for tests: a gRPC one (@grpc/grpc-js serving
 * opentelemetry.proto.collector.logs.v1.LogsService/Export) and an HTTP/protobuf one (node:http,
 * POST /v1/logs). Both decode the real protobuf request with the generated protobufjs code shipped
 * in @opentelemetry/otlp-transformer 0.214.0 (the alias "otlp-transformer-pb"), so what the tests
 * see is what a Collector would see.
 *
 *   import { OtlpLogsGrpcReceiver } from "../../otlp-bridge/test/support/otlp-logs-receiver.js";
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";
import pbRoot from "otlp-transformer-pb/build/src/generated/root.js";
import type { ReceivedValue } from "./otlp-receiver.js";

/** One decoded log record, flattened with its resource and scope. Ids are lowercase hex ("" when absent). */
export interface ReceivedLog {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: ReceivedValue;
  attributes: Record<string, ReceivedValue>;
  traceId: string;
  spanId: string;
  flags: number;
  resource: Record<string, ReceivedValue>;
  serviceName?: string;
  scope: { name: string; version: string };
  /** Index of the Export request this record came in. */
  request: number;
}

export interface ReceivedLogsRequest {
  index: number;
  transport: "grpc" | "http";
  /** resourceLogs in order, with their resource attributes and record count. */
  resources: { attributes: Record<string, ReceivedValue>; logCount: number }[];
  logCount: number;
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
interface PbLogRecord {
  timeUnixNano?: number | PbLong | null;
  observedTimeUnixNano?: number | PbLong | null;
  severityNumber?: number | null;
  severityText?: string | null;
  body?: PbAnyValue | null;
  attributes?: PbKeyValue[] | null;
  flags?: number | null;
  traceId?: Uint8Array | null;
  spanId?: Uint8Array | null;
}
interface PbRequest {
  resourceLogs?:
    | {
        resource?: { attributes?: PbKeyValue[] | null } | null;
        scopeLogs?:
          | { scope?: { name?: string | null; version?: string | null } | null; logRecords?: PbLogRecord[] | null }[]
          | null;
      }[]
    | null;
}
interface PbType<T> {
  decode(data: Uint8Array): T;
  encode(message: object): { finish(): Uint8Array };
}
interface PbLogsV1 {
  ExportLogsServiceRequest: PbType<PbRequest>;
  ExportLogsServiceResponse: PbType<object>;
}

const logsV1 = (pbRoot as unknown as { opentelemetry: { proto: { collector: { logs: { v1: PbLogsV1 } } } } })
  .opentelemetry.proto.collector.logs.v1;

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

/** Decodes a protobuf ExportLogsServiceRequest into flattened log records and a per-request summary. */
export function decodeLogsRequest(
  body: Uint8Array,
  index = 0,
  transport: "grpc" | "http" = "grpc",
  headers: Record<string, string> = {},
): { request: ReceivedLogsRequest; logs: ReceivedLog[] } {
  const req = logsV1.ExportLogsServiceRequest.decode(body);
  const logs: ReceivedLog[] = [];
  const resources: ReceivedLogsRequest["resources"] = [];
  for (const rl of req.resourceLogs ?? []) {
    const resource = keyValues(rl.resource?.attributes);
    const serviceName = typeof resource["service.name"] === "string" ? resource["service.name"] : undefined;
    let logCount = 0;
    for (const sl of rl.scopeLogs ?? []) {
      const scope = { name: sl.scope?.name ?? "", version: sl.scope?.version ?? "" };
      for (const l of sl.logRecords ?? []) {
        logCount++;
        logs.push({
          timeUnixNano: toBigInt(l.timeUnixNano),
          observedTimeUnixNano: toBigInt(l.observedTimeUnixNano),
          severityNumber: l.severityNumber ?? 0,
          severityText: l.severityText ?? "",
          body: anyValue(l.body),
          attributes: keyValues(l.attributes),
          traceId: hex(l.traceId),
          spanId: hex(l.spanId),
          flags: l.flags ?? 0,
          resource,
          serviceName,
          scope,
          request: index,
        });
      }
    }
    resources.push({ attributes: resource, logCount });
  }
  return { request: { index, transport, resources, logCount: logs.length, headers }, logs };
}

// ---- shared collection ----------------------------------------------------------------------------

abstract class LogsReceiverBase {
  /** Every log record received so far (across restarts), in arrival order. */
  readonly logs: ReceivedLog[] = [];
  readonly requests: ReceivedLogsRequest[] = [];
  decodeErrors = 0;
  protected port = 0;
  /** When set, every Export is answered with this failure (gRPC status / HTTP status) and nothing is recorded. */
  rejectWith: number | undefined;

  protected abstract listen(port: number): Promise<number>;
  protected abstract close(): Promise<void>;
  abstract get running(): boolean;

  async start(port = 0): Promise<this> {
    this.port = await this.listen(port);
    return this;
  }

  async stop(): Promise<void> {
    if (this.running) await this.close();
  }

  async restart(): Promise<void> {
    if (this.running) return;
    await this.listen(this.port);
  }

  get listenPort(): number {
    return this.port;
  }

  /** For the exporter's `endpoint` (plaintext; the HTTP exporter appends /v1/logs). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  clear(): void {
    this.logs.length = 0;
    this.requests.length = 0;
  }

  async waitForLogs(n: number, timeoutMs = 20_000): Promise<ReceivedLog[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.logs.length < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `OTLP logs receiver: timed out after ${timeoutMs} ms waiting for ${n} log records; ` +
            `received ${this.logs.length} in ${this.requests.length} requests`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.logs;
  }

  protected record(body: Uint8Array, transport: "grpc" | "http", headers: Record<string, string>): void {
    const { request, logs } = decodeLogsRequest(body, this.requests.length, transport, headers);
    this.requests.push(request);
    for (const l of logs) this.logs.push(l);
  }
}

const EMPTY_RESPONSE = Buffer.from(logsV1.ExportLogsServiceResponse.encode({}).finish());

// ---- gRPC -------------------------------------------------------------------------------------------

const LOGS_SERVICE: grpc.ServiceDefinition = {
  Export: {
    path: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

/** OTLP/gRPC logs receiver on 127.0.0.1. */
export class OtlpLogsGrpcReceiver extends LogsReceiverBase {
  private server: grpc.Server | undefined;

  static create(port = 0): Promise<OtlpLogsGrpcReceiver> {
    return new OtlpLogsGrpcReceiver().start(port);
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  protected listen(port: number): Promise<number> {
    const server = new grpc.Server();
    server.addService(LOGS_SERVICE, {
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

/** OTLP/HTTP (protobuf) logs receiver on 127.0.0.1, path /v1/logs. */
export class OtlpLogsHttpReceiver extends LogsReceiverBase {
  private server: Server | undefined;

  static create(port = 0): Promise<OtlpLogsHttpReceiver> {
    return new OtlpLogsHttpReceiver().start(port);
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  get logsUrl(): string {
    return `${this.endpoint}/v1/logs`;
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
      if (req.method !== "POST" || req.url?.split("?")[0] !== "/v1/logs") {
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
