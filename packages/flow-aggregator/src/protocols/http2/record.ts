import type { AttributeValue, L7Message, ResponseStatus } from "../../types.js";
import { utf8Text } from "../bytes.js";
import { httpStatus } from "../http1/record.js";
import type { HeaderFields } from "./hpack.js";

/** What one side of a stream said: the fields records use, collected over its header blocks. */
export class StreamHalf {
  started = false;
  done = false;
  startNs = 0;
  tid = 0;
  /** TCP seq of the first frame header, -1 when unknown. */
  seq = -1;
  /** Sum of this side's frame payloads on the stream (captured or not). */
  bytes = 0;
  method: string | undefined;
  path: string | undefined;
  authority: string | undefined;
  contentType: string | undefined;
  traceparent: string | undefined;
  xRequestId: string | undefined;
  /** Final :status (1xx interim responses are skipped), -1 when none. */
  status = -1;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  /** RST_STREAM error code, -1 when none. */
  rstCode = -1;
  /** Header references that could not be resolved (HPACK state from before the capture). */
  unresolved = false;
  /** ... in the block that ended the stream (trailers, or a trailers-only response): grpc-status may hide there. */
  endUnresolved = false;
  /** Part of the message was not captured. */
  truncated = false;
  /** A request the server announced with PUSH_PROMISE. */
  pushed = false;

  begin(startNs: number, tid: number, seq: number): void {
    this.started = true;
    this.startNs = startNs;
    this.tid = tid;
    this.seq = seq;
  }

  apply(h: HeaderFields, endsStream: boolean): void {
    this.method ??= h.method;
    this.path ??= h.path;
    this.authority ??= h.authority ?? h.host;
    this.contentType ??= h.contentType;
    this.traceparent ??= h.traceparent;
    this.xRequestId ??= h.xRequestId;
    this.grpcStatus ??= h.grpcStatus;
    this.grpcMessage ??= h.grpcMessage;
    if (h.status !== undefined && this.status < 200) {
      const code = /^\d{3}$/.test(h.status) ? Number(h.status) : -1;
      if (code >= 200 || this.status < 0) this.status = code;
    }
    if (h.unresolved > 0) {
      this.unresolved = true;
      if (endsStream) this.endUnresolved = true;
    }
  }
}

export const isGrpcContentType = (contentType: string | undefined): boolean =>
  contentType?.startsWith("application/grpc") === true;

/** gRPC status -> record status: codes that are the server's fault, else the client's. */
export function grpcStatus(code: number): ResponseStatus {
  if (code === 0) return "ok";
  switch (code) {
    case 2: // UNKNOWN
    case 4: // DEADLINE_EXCEEDED
    case 12: // UNIMPLEMENTED
    case 13: // INTERNAL
    case 14: // UNAVAILABLE
    case 15: // DATA_LOSS
      return "server_error";
  }
  return "client_error";
}

/** grpc-message is percent-encoded UTF-8. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes = new Uint8Array(value.length);
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 37 && i + 2 < value.length) {
      const hi = hexDigit(value.charCodeAt(i + 1));
      const lo = hexDigit(value.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    bytes[n++] = c & 255;
  }
  return utf8Text(bytes, 0, n);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function base(kind: L7Message["kind"], key: number, h: StreamHalf, endNs: number): L7Message {
  const m: L7Message = { kind, key, startNs: h.startNs, endNs, bytes: h.bytes, tid: h.tid, version: "2" };
  if (h.seq >= 0) m.tcpSeq = h.seq;
  return m;
}

function flags(
  h: StreamHalf,
  into: Record<string, AttributeValue> | undefined,
): Record<string, AttributeValue> | undefined {
  if (!h.unresolved && !h.truncated && !h.pushed) return into;
  const a = into ?? {};
  if (h.unresolved) a["kalman.hpack_incomplete"] = true;
  if (h.truncated) a["kalman.truncated"] = true;
  if (h.pushed) a["kalman.http2_push"] = true;
  return a;
}

/** The request message of stream `key`. */
export function requestMessage(key: number, h: StreamHalf, endNs: number, redact: boolean): L7Message {
  const m = base("request", key, h, endNs);
  let attributes: Record<string, AttributeValue> | undefined;
  const path = h.path;
  const cut = path === undefined ? -1 : path.search(/[?#]/);
  const route = path === undefined || cut < 0 ? path : path.slice(0, cut);
  if (isGrpcContentType(h.contentType)) {
    m.protocol = "grpc";
    attributes = { "rpc.system": "grpc" };
    if (route !== undefined) {
      // "/pkg.Service/Method"
      m.requestType = route;
      m.endpoint = route;
      m.resource = route;
      const slash = route.lastIndexOf("/");
      if (slash > 0) {
        attributes["rpc.service"] = route.slice(route.charCodeAt(0) === 47 ? 1 : 0, slash);
        attributes["rpc.method"] = route.slice(slash + 1);
      }
    }
  } else {
    if (h.method !== undefined) m.requestType = h.method;
    if (route !== undefined) {
      m.resource = redact ? route : (path as string);
      m.endpoint = route;
    }
  }
  if (h.authority !== undefined) m.domain = h.authority;
  if (h.traceparent !== undefined) m.traceparent = h.traceparent;
  if (h.xRequestId !== undefined) m.xRequestId = h.xRequestId;
  attributes = flags(h, attributes);
  if (attributes) m.attributes = attributes;
  return m;
}

/** The response message of stream `key`; `grpc` when the request said so. */
export function responseMessage(key: number, h: StreamHalf, endNs: number, grpc: boolean): L7Message {
  const m = base("response", key, h, endNs);
  const grpcCode = h.grpcStatus !== undefined && /^\d{1,3}$/.test(h.grpcStatus) ? Number(h.grpcStatus) : -1;
  const isGrpc = grpc || isGrpcContentType(h.contentType) || h.grpcStatus !== undefined;
  if (isGrpc) m.protocol = "grpc";
  if (h.rstCode >= 0) {
    m.status = "unknown";
    m.exception = `RST_STREAM ${h.rstCode}`;
    if (isGrpc && grpcCode >= 0) m.code = grpcCode;
    else if (h.status >= 0) m.code = h.status;
  } else if (isGrpc && grpcCode >= 0) {
    m.code = grpcCode;
    m.status = grpcStatus(grpcCode);
    if (grpcCode !== 0 && h.grpcMessage) m.exception = decodeGrpcMessage(h.grpcMessage);
  } else if (h.status >= 0 && !(isGrpc && h.status === 200)) {
    // plain HTTP, or gRPC failing at the HTTP level (a proxy's 503)
    m.code = h.status;
    // a 200 whose last header block could not be read may be a gRPC call that failed in its trailers
    m.status = h.status === 200 && h.endUnresolved ? "unknown" : httpStatus(h.status);
  } else {
    // no status seen, or gRPC without grpc-status
    m.status = "unknown";
  }
  const attributes = flags(h, undefined);
  if (attributes) m.attributes = attributes;
  return m;
}
