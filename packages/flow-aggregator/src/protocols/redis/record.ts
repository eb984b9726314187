import type { L7Message } from "../../types.js";
import { utf8Text } from "../bytes.js";

export const DB_SYSTEM = "redis";
/** Longest error text kept (characters). */
export const MAX_EXCEPTION = 256;

/** Where a message starts and how big it is (filled by the parser). */
export interface Span {
  startNs: number;
  endNs: number;
  bytes: number;
  tid: number;
  tcpSeq: number | undefined;
  truncated: boolean;
}

function base(kind: "request" | "response", s: Span, version: string): L7Message {
  const m: L7Message = { kind, startNs: s.startNs, endNs: s.endNs, bytes: s.bytes, tid: s.tid, version };
  if (s.tcpSeq !== undefined) m.tcpSeq = s.tcpSeq;
  return m;
}

/** A command: type, key (never a value), db.system.name. */
export function requestMessage(
  s: Span,
  version: string,
  requestType: string | undefined,
  key: string,
  oneWay: boolean,
): L7Message {
  const m = base("request", s, version);
  if (requestType !== undefined) {
    m.requestType = requestType;
    m.endpoint = requestType;
  }
  m.resource = key;
  if (oneWay) m.oneWay = true;
  m.attributes = s.truncated
    ? { "db.system.name": DB_SYSTEM, "kalman.truncated": true }
    : { "db.system.name": DB_SYSTEM };
  return m;
}

/** A reply: ok, or server_error with the error text and its code word (ERR, WRONGTYPE, ...). */
export function replyMessage(s: Span, version: string, error: string | undefined, errorSeen: boolean): L7Message {
  const m = base("response", s, version);
  m.status = errorSeen ? "server_error" : "ok";
  if (error !== undefined) {
    m.exception = error;
    const space = error.indexOf(" ");
    const code = space < 0 ? error : error.slice(0, space);
    if (/^[A-Z][A-Z_-]{0,31}$/.test(code)) m.attributes = { "db.response.status_code": code };
  }
  if (s.truncated) m.attributes = { ...m.attributes, "kalman.truncated": true };
  return m;
}

/** A server push or pub/sub delivery that answers no request. */
export function pushMessage(s: Span, version: string, endpoint: string): L7Message {
  const m = base("response", s, version);
  m.status = "ok";
  m.unsolicited = true;
  m.endpoint = endpoint;
  if (s.truncated) m.attributes = { "kalman.truncated": true };
  return m;
}

/** A request whose reply was lost with uncaptured bytes: answered, outcome unknown. */
export function lostReplyMessage(startNs: number, endNs: number, tid: number, version: string): L7Message {
  return {
    kind: "response",
    startNs,
    endNs,
    bytes: 0,
    tid,
    version,
    status: "unknown",
    attributes: { "kalman.truncated": true },
  };
}

/** Error text of bytes [start, end): first MAX_EXCEPTION characters. */
export function errorText(b: Uint8Array, start: number, end: number): string {
  const t = utf8Text(b, start, Math.min(end, start + MAX_EXCEPTION * 4));
  return t.length > MAX_EXCEPTION ? t.slice(0, MAX_EXCEPTION) : t;
}
