/**
 * What the tests' OTLP receivers share: decoding of OTLP common values, and the transport — a real
 * gRPC server (@grpc/grpc-js) or HTTP/protobuf server (node:http) on 127.0.0.1 that can go down and
 * come back on the same port, or answer every Export with a failure.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync, inflateSync } from "node:zlib";
import * as grpc from "@grpc/grpc-js";

/** A decoded OTLP AnyValue. */
export type ReceivedValue = string | number | boolean | ReceivedValue[] | { [key: string]: ReceivedValue } | Uint8Array;

/** protobufjs's Long, as it appears in decoded 64-bit fields. */
export interface PbLong {
  toString(): string;
}
export interface PbAnyValue {
  value?: string;
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: number | PbLong | null;
  doubleValue?: number | null;
  bytesValue?: Uint8Array | null;
  arrayValue?: { values?: PbAnyValue[] | null } | null;
  kvlistValue?: { values?: PbKeyValue[] | null } | null;
}
export interface PbKeyValue {
  key?: string | null;
  value?: PbAnyValue | null;
}
export interface PbType<T> {
  decode(data: Uint8Array): T;
  encode(message: object): { finish(): Uint8Array };
}

export function hex(bytes: Uint8Array | null | undefined): string {
  return bytes ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex") : "";
}

export function toBigInt(v: number | PbLong | null | undefined): bigint {
  if (v == null) return 0n;
  return BigInt(typeof v === "number" ? Math.trunc(v) : v.toString());
}

export function anyValue(v: PbAnyValue | null | undefined): ReceivedValue {
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

export function keyValues(kvs: PbKeyValue[] | null | undefined): Record<string, ReceivedValue> {
  const out: Record<string, ReceivedValue> = {};
  for (const kv of kvs ?? []) if (kv.key) out[kv.key] = anyValue(kv.value);
  return out;
}

export type OtlpTransport = "grpc" | "http";

/** One OTLP signal's endpoints: gRPC service method path and HTTP path, and the empty Export response. */
export interface OtlpSignal {
  grpcPath: string;
  httpPath: string;
  emptyResponse: Buffer;
}

/** Waits until `done()` holds, else fails after `timeoutMs` with `describe()`. */
export async function waitUntil(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A receiver's transport. Subclasses decode and keep what arrives in record(); a body that does not
 * decode is answered INVALID_ARGUMENT / 400 and counted in decodeErrors.
 */
interface HttpReply {
  status: number;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

export abstract class OtlpTestServer {
  /** Requests that could not be decoded. */
  decodeErrors = 0;
  /**
   * When set, every Export is answered with this failure (gRPC status code for gRPC, HTTP status for
   * HTTP) and nothing is recorded.
   */
  rejectWith: number | undefined;
  /** Each Export is answered this much later (a backend far away). */
  answerDelayMs = 0;
  /** Exports received and not answered yet, and the most there were at once. */
  pending = 0;
  maxPending = 0;
  protected port = 0;
  private grpcServer: grpc.Server | undefined;
  private httpServer: Server | undefined;

  constructor(
    readonly transport: OtlpTransport,
    private readonly signal: OtlpSignal,
  ) {}

  protected abstract record(body: Uint8Array, transport: OtlpTransport, headers: Record<string, string>): void;

  get running(): boolean {
    return this.grpcServer !== undefined || this.httpServer !== undefined;
  }

  get listenPort(): number {
    return this.port;
  }

  /** Base URL for the exporter's `endpoint` / OTEL_EXPORTER_OTLP_ENDPOINT (plaintext; HTTP exporters append the path). */
  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The full signal URL (HTTP), for OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT. */
  get signalUrl(): string {
    return `${this.endpoint}${this.signal.httpPath}`;
  }

  /** Starts on 127.0.0.1:`port` (0 = a free port). */
  async start(port = 0): Promise<this> {
    this.port = await this.listen(port);
    return this;
  }

  /** Stops abruptly (connections dropped), like a backend going down. */
  async stop(): Promise<void> {
    const g = this.grpcServer;
    const h = this.httpServer;
    this.grpcServer = undefined;
    this.httpServer = undefined;
    g?.forceShutdown();
    if (h) {
      h.closeAllConnections();
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
  }

  /** Starts again on the same port. */
  async restart(): Promise<void> {
    if (!this.running) await this.listen(this.port);
  }

  private accept(body: Uint8Array, transport: OtlpTransport, headers: Record<string, string>): string | undefined {
    try {
      this.record(body, transport, headers);
      return undefined;
    } catch (err) {
      this.decodeErrors++;
      return String(err);
    }
  }

  private listen(port: number): Promise<number> {
    return this.transport === "grpc" ? this.listenGrpc(port) : this.listenHttp(port);
  }

  private listenGrpc(port: number): Promise<number> {
    const server = new grpc.Server();
    const passthrough = (b: Buffer) => b;
    const service: grpc.ServiceDefinition = {
      Export: {
        path: this.signal.grpcPath,
        requestStream: false,
        responseStream: false,
        requestSerialize: passthrough,
        requestDeserialize: passthrough,
        responseSerialize: passthrough,
        responseDeserialize: passthrough,
      },
    };
    server.addService(service, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, answer: grpc.sendUnaryData<Buffer>) => {
        const callback = this.delayed(answer);
        if (this.rejectWith !== undefined) {
          callback({ code: this.rejectWith, details: "rejected by test receiver" }, null);
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) headers[k.toLowerCase()] = String(v);
        const error = this.accept(call.request, "grpc", headers);
        if (error === undefined) callback(null, this.signal.emptyResponse);
        else callback({ code: grpc.status.INVALID_ARGUMENT, details: error }, null);
      },
    });
    return new Promise((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) {
          server.forceShutdown();
          reject(err);
          return;
        }
        this.grpcServer = server;
        resolve(bound);
      });
    });
  }

  private listenHttp(port: number): Promise<number> {
    const server = createServer((req, res) => this.handleHttp(req, res));
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.httpServer = server;
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /** `answer`, called answerDelayMs later; counts the Exports waiting for it. */
  private delayed<A extends unknown[]>(answer: (...args: A) => void): (...args: A) => void {
    this.pending++;
    this.maxPending = Math.max(this.maxPending, this.pending);
    return (...args: A) => {
      const send = () => {
        this.pending--;
        answer(...args);
      };
      if (this.answerDelayMs > 0) setTimeout(send, this.answerDelayMs);
      else send();
    };
  }

  private handleHttp(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const reply = this.delayed((r: HttpReply) => res.writeHead(r.status, r.headers).end(r.body));
      reply(this.httpReply(req, Buffer.concat(chunks)));
    });
  }

  private httpReply(req: IncomingMessage, raw: Buffer): HttpReply {
    const text = { "content-type": "text/plain" };
    if (req.method !== "POST" || req.url?.split("?")[0] !== this.signal.httpPath) return { status: 404, headers: {} };
    if (this.rejectWith !== undefined)
      return { status: this.rejectWith, headers: text, body: "rejected by test receiver" };
    let body = raw;
    try {
      const encoding = req.headers["content-encoding"];
      if (encoding === "gzip") body = gunzipSync(raw);
      else if (encoding === "deflate") body = inflateSync(raw);
    } catch (err) {
      this.decodeErrors++;
      return { status: 400, headers: text, body: String(err) };
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = String(v);
    const error = this.accept(body, "http", headers);
    return error === undefined
      ? { status: 200, headers: { "content-type": "application/x-protobuf" }, body: this.signal.emptyResponse }
      : { status: 400, headers: text, body: error };
  }
}
