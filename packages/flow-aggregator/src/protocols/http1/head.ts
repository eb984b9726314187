import { ascii, type StringCache } from "../bytes.js";

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
}

const SP = 32;
const CR = 13;
const LF = 10;
const COLON = 58;

/** Header names records need, as lower-case bytes, by length. */
enum H {
  ContentLength = 1,
  TransferEncoding = 2,
  Host = 3,
  Traceparent = 4,
  XRequestId = 5,
}
const WANTED: Array<[H, Uint8Array]> = [
  [H.ContentLength, bytes("content-length")],
  [H.TransferEncoding, bytes("transfer-encoding")],
  [H.Host, bytes("host")],
  [H.Traceparent, bytes("traceparent")],
  [H.XRequestId, bytes("x-request-id")],
];
const CHUNKED = bytes("chunked");

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * Parses head bytes [start, end) (request or status line plus header lines), byte by byte,
 * decoding only the fields records need. A head cut short by the capture size is accepted:
 * a partial last line is ignored. Returns undefined when the first line is not HTTP/1.
 */
export function parseHead(
  b: Uint8Array,
  start: number,
  end: number,
  fromClient: boolean,
  cache?: StringCache,
): Head | undefined {
  let eol = start;
  while (eol < end && b[eol] !== LF) eol++;
  const complete = eol < end;
  const lineEnd = eol > start && b[eol - 1] === CR ? eol - 1 : eol;
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
  if (!(fromClient ? requestLine(b, start, lineEnd, complete, head, cache) : statusLine(b, start, lineEnd, head))) {
    return undefined;
  }
  if (!complete) return head;
  let at = eol + 1;
  while (at < end) {
    let next = at;
    while (next < end && b[next] !== LF) next++;
    if (next >= end) break; // partial last line
    const le = next > at && b[next - 1] === CR ? next - 1 : next;
    if (le === at) break; // blank line: end of head
    let colon = at;
    while (colon < le && b[colon] !== COLON) colon++;
    if (colon < le) header(head, b, at, colon, le, cache);
    at = next + 1;
  }
  return head;
}

function isToken(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95;
}

enum Slot {
  Method = 0,
  Target = 1,
  Host = 2,
  XRequestId = 3,
}

const text = (cache: StringCache | undefined, slot: Slot, b: Uint8Array, s: number, e: number) =>
  cache ? cache.text(slot, b, s, e) : ascii(b, s, e);

function requestLine(b: Uint8Array, s: number, e: number, complete: boolean, h: Head, cache?: StringCache): boolean {
  let i = s;
  while (i < e && i - s < 20 && isToken(b[i] as number)) i++;
  if (i === s || i >= e || b[i] !== SP || !((b[s] as number) >= 65 && (b[s] as number) <= 90)) return false;
  h.method = text(cache, Slot.Method, b, s, i);
  const t = i + 1;
  let j = t;
  while (j < e && b[j] !== SP) j++;
  if (j === t) return false;
  h.target = text(cache, Slot.Target, b, t, j);
  if (j >= e) return !complete; // line cut by the capture: method and target are enough
  // " HTTP/d.d" must end the line
  if (e - j !== 9 || b[j + 1] !== 72 || b[j + 2] !== 84 || b[j + 3] !== 84 || b[j + 4] !== 80 || b[j + 5] !== 47)
    return false;
  const major = (b[j + 6] as number) - 48;
  const minor = (b[j + 8] as number) - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9 || b[j + 7] !== 46) return false;
  h.version = major === 1 && minor === 1 ? "1.1" : major === 1 && minor === 0 ? "1.0" : `${major}.${minor}`;
  return true;
}

function statusLine(b: Uint8Array, s: number, e: number, h: Head): boolean {
  // "HTTP/d.d NNN[ reason]"
  if (e - s < 12 || b[s] !== 72 || b[s + 1] !== 84 || b[s + 2] !== 84 || b[s + 3] !== 80 || b[s + 4] !== 47)
    return false;
  if (b[s + 6] !== 46 || b[s + 8] !== SP) return false;
  const major = (b[s + 5] as number) - 48;
  const minor = (b[s + 7] as number) - 48;
  const d0 = (b[s + 9] as number) - 48;
  const d1 = (b[s + 10] as number) - 48;
  const d2 = (b[s + 11] as number) - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return false;
  if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return false;
  if (e > s + 12 && b[s + 12] !== SP) return false;
  h.version = major === 1 && minor === 1 ? "1.1" : major === 1 && minor === 0 ? "1.0" : `${major}.${minor}`;
  h.status = d0 * 100 + d1 * 10 + d2;
  if (h.status >= 400 && e > s + 13) h.reason = ascii(b, s + 13, e);
  return true;
}

/** Which wanted header a name is: one length check, then at most one case-insensitive compare. */
function wantedHeader(b: Uint8Array, s: number, len: number): H | 0 {
  let id: H;
  switch (len) {
    case 4:
      id = H.Host;
      break;
    case 11:
      id = H.Traceparent;
      break;
    case 12:
      id = H.XRequestId;
      break;
    case 14:
      id = H.ContentLength;
      break;
    case 17:
      id = H.TransferEncoding;
      break;
    default:
      return 0;
  }
  const name = (WANTED[id - 1] as [H, Uint8Array])[1];
  for (let i = 0; i < len; i++) if (((b[s + i] as number) | 0x20) !== name[i]) return 0;
  return id;
}

function header(h: Head, b: Uint8Array, s: number, colon: number, e: number, cache?: StringCache): void {
  const which = wantedHeader(b, s, colon - s);
  if (!which) return;
  let vs = colon + 1;
  let ve = e;
  while (vs < ve && (b[vs] === SP || b[vs] === 9)) vs++;
  while (ve > vs && (b[ve - 1] === SP || b[ve - 1] === 9)) ve--;
  switch (which) {
    case H.ContentLength: {
      let n = 0;
      if (ve === vs || ve - vs > 15) return;
      for (let i = vs; i < ve; i++) {
        const d = (b[i] as number) - 48;
        if (d < 0 || d > 9) return;
        n = n * 10 + d;
      }
      h.contentLength = n;
      return;
    }
    case H.TransferEncoding:
      // "chunked" is the last coding when present
      if (ve - vs >= 7) {
        let same = true;
        for (let i = 0; i < 7; i++) if (((b[ve - 7 + i] as number) | 0x20) !== CHUNKED[i]) same = false;
        if (same) h.chunked = true;
      }
      return;
    case H.Host:
      h.host = text(cache, Slot.Host, b, vs, ve);
      return;
    case H.Traceparent:
      h.traceparent = ascii(b, vs, ve);
      return;
    case H.XRequestId:
      h.xRequestId = text(cache, Slot.XRequestId, b, vs, ve);
      return;
  }
}
