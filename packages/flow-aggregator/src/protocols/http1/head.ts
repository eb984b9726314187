import { ascii } from "../bytes.js";

/** A parsed HTTP/1 message head: only what records need. */
export interface Head {
  isRequest: boolean;
  method: string;
  target: string;
  version: string;
  status: number;
  reason: string;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  host?: string;
  traceparent?: string;
  xRequestId?: string;
  grpcStatus?: string;
}

const REQUEST_LINE = /^([A-Z][A-Z0-9_-]{0,19}) (\S{1,8192}) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/(\d)\.(\d) (\d{3})(?: (.*))?$/;

/**
 * Parses head bytes [start, end) (request or status line plus header lines). A head cut short by
 * the capture size is accepted: partial lines are ignored. Returns undefined when the first line is
 * not HTTP/1.
 */
export function parseHead(b: Uint8Array, start: number, end: number, fromClient: boolean): Head | undefined {
  const text = ascii(b, start, end);
  let eol = text.indexOf("\n");
  const complete = eol >= 0;
  if (!complete) eol = text.length;
  const first = text.slice(0, eol > 0 && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol);
  const head: Head = {
    isRequest: fromClient,
    method: "",
    target: "",
    version: "",
    status: 0,
    reason: "",
    contentLength: -1,
    chunked: false,
  };
  if (fromClient) {
    const m = REQUEST_LINE.exec(first);
    if (!m) {
      // a request line cut by the capture: keep method and target
      const cut = /^([A-Z][A-Z0-9_-]{0,19}) (\S+)/.exec(first);
      if (complete || !cut) return undefined;
      head.method = cut[1] as string;
      head.target = cut[2] as string;
      return head;
    }
    head.method = m[1] as string;
    head.target = m[2] as string;
    head.version = `${m[3]}.${m[4]}`;
  } else {
    const m = STATUS_LINE.exec(first);
    if (!m) return undefined;
    head.version = `${m[1]}.${m[2]}`;
    head.status = Number(m[3]);
    head.reason = m[4] ?? "";
  }
  let at = eol + 1;
  while (at < text.length) {
    let next = text.indexOf("\n", at);
    if (next < 0) break; // partial last line: ignore
    const lineEnd = next > at && text.charCodeAt(next - 1) === 13 ? next - 1 : next;
    if (lineEnd === at) break; // blank line: end of head
    const colon = text.indexOf(":", at);
    if (colon > at && colon < lineEnd)
      header(head, text.slice(at, colon).toLowerCase(), text.slice(colon + 1, lineEnd).trim());
    at = next + 1;
    next = 0;
  }
  return head;
}

function header(h: Head, name: string, value: string): void {
  switch (name) {
    case "content-length": {
      const n = /^\d{1,15}$/.test(value) ? Number(value) : -1;
      if (n >= 0) h.contentLength = n;
      break;
    }
    case "transfer-encoding":
      if (value.toLowerCase().includes("chunked")) h.chunked = true;
      break;
    case "host":
      h.host = value;
      break;
    case "traceparent":
      h.traceparent = value;
      break;
    case "x-request-id":
      h.xRequestId = value;
      break;
  }
}
