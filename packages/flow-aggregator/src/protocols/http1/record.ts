import type { L7Message, ResponseStatus } from "../../types.js";
import type { Head } from "./head.js";

/** HTTP status -> record status (OTel: 5xx is an error on both sides, 4xx the client's). */
export function httpStatus(code: number): ResponseStatus {
  if (code >= 500) return "server_error";
  if (code >= 400) return "client_error";
  if (code >= 100) return "ok";
  return "unknown";
}

/** Path of a request target without query or fragment ("http://h/p?q" -> "/p"). */
export function pathOf(target: string): string {
  let t = target;
  if (t.startsWith("http://") || t.startsWith("https://")) {
    const slash = t.indexOf("/", t.indexOf("//") + 2);
    t = slash < 0 ? "/" : t.slice(slash);
  }
  const cut = t.search(/[?#]/);
  return cut < 0 ? t : t.slice(0, cut);
}

/** The message fields of a head (timing, size and seq are the parser's). */
export function toMessage(h: Head, fromClient: boolean, redact: boolean): L7Message {
  const m: L7Message = { kind: fromClient ? "request" : "response", startNs: 0, endNs: 0, bytes: 0, tid: 0 };
  if (h.version) m.version = h.version;
  if (fromClient) {
    const path = pathOf(h.target);
    m.requestType = h.method;
    // query strings often carry tokens: kept only when redaction is off
    m.resource = redact || path === h.target ? path : h.target;
    m.endpoint = path;
    if (h.host !== undefined) m.domain = h.host;
    if (h.traceparent !== undefined) m.traceparent = h.traceparent;
    if (h.xRequestId !== undefined) m.xRequestId = h.xRequestId;
  } else {
    m.code = h.status;
    m.status = httpStatus(h.status);
    if (h.status >= 400 && h.reason) m.exception = h.reason;
  }
  return m;
}
