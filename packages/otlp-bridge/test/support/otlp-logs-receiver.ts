/**
 * Real OTLP logs receivers for tests: a gRPC one (@grpc/grpc-js serving
 * opentelemetry.proto.collector.logs.v1.LogsService/Export) and an HTTP/protobuf one (node:http,
 * POST /v1/logs). Both decode the real protobuf request with the generated protobufjs code shipped
 * in @opentelemetry/otlp-transformer 0.214.0 (the alias "otlp-transformer-pb"), so what the tests
 * see is what a Collector would see.
 *
 *   import { OtlpLogsGrpcReceiver } from "../../otlp-bridge/test/support/otlp-logs-receiver.js";
 */
import pbRoot from "otlp-transformer-pb/build/src/generated/root.js";
import {
  anyValue,
  hex,
  keyValues,
  type OtlpSignal,
  OtlpTestServer,
  type OtlpTransport,
  type PbAnyValue,
  type PbKeyValue,
  type PbLong,
  type PbType,
  type ReceivedValue,
  toBigInt,
  waitUntil,
} from "./otlp-test-server.js";

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
interface PbLogsV1 {
  ExportLogsServiceRequest: PbType<PbRequest>;
  ExportLogsServiceResponse: PbType<object>;
}

const logsV1 = (pbRoot as unknown as { opentelemetry: { proto: { collector: { logs: { v1: PbLogsV1 } } } } })
  .opentelemetry.proto.collector.logs.v1;

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

// ---- collection --------------------------------------------------------------------------------------

const LOGS: OtlpSignal = {
  grpcPath: "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
  httpPath: "/v1/logs",
  emptyResponse: Buffer.from(logsV1.ExportLogsServiceResponse.encode({}).finish()),
};

abstract class LogsReceiver extends OtlpTestServer {
  /** Every log record received so far (across restarts), in arrival order. */
  readonly logs: ReceivedLog[] = [];
  readonly requests: ReceivedLogsRequest[] = [];

  clear(): void {
    this.logs.length = 0;
    this.requests.length = 0;
  }

  async waitForLogs(n: number, timeoutMs = 20_000): Promise<ReceivedLog[]> {
    await waitUntil(
      () => this.logs.length >= n,
      timeoutMs,
      () => `${n} log records (OTLP logs receiver got ${this.logs.length} in ${this.requests.length} requests)`,
    );
    return this.logs;
  }

  protected record(body: Uint8Array, transport: OtlpTransport, headers: Record<string, string>): void {
    const { request, logs } = decodeLogsRequest(body, this.requests.length, transport, headers);
    this.requests.push(request);
    for (const l of logs) this.logs.push(l);
  }
}

/** OTLP/gRPC logs receiver on 127.0.0.1. */
export class OtlpLogsGrpcReceiver extends LogsReceiver {
  constructor() {
    super("grpc", LOGS);
  }

  static create(port = 0): Promise<OtlpLogsGrpcReceiver> {
    return new OtlpLogsGrpcReceiver().start(port);
  }
}

/** OTLP/HTTP (protobuf) logs receiver on 127.0.0.1, path /v1/logs. */
export class OtlpLogsHttpReceiver extends LogsReceiver {
  constructor() {
    super("http", LOGS);
  }

  static create(port = 0): Promise<OtlpLogsHttpReceiver> {
    return new OtlpLogsHttpReceiver().start(port);
  }

  get logsUrl(): string {
    return this.signalUrl;
  }
}
