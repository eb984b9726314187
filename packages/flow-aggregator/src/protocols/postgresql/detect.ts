import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import { Back, be32, Front, typedLengthOk, Untyped, untypedOk } from "./wire.js";

/** Longest message detect() believes in (the framing allows 1 GB). */
const DETECT_MAX = 1 << 24;
/** Bytes of text checked in a query message. */
const TEXT_CHECK = 256;

/** A StartupMessage, SSLRequest, GSSENCRequest or CancelRequest at the start of b. */
export function looksLikeUntypedStart(b: Uint8Array): boolean {
  if (b.length < 8 || b[0] !== 0) return false;
  const len = be32(b, 0);
  const code = be32(b, 4);
  if (!untypedOk(len, code)) return false;
  if (code >>> 16 !== Untyped.ProtocolMajor3) return true;
  // startup parameters: a lower-case name ("user", "database", ...) first, NUL at the end
  const first = b[8];
  if (first !== undefined && !(first >= 0x61 && first <= 0x7a) && first !== 0x5f) return false;
  return b.length < len || b[len - 1] === 0;
}

/**
 * Whether b starts with whole typed messages of one side (valid types, lengths and key bytes), the
 * last one possibly cut by the end of b. A first message cut short counts only when it is query text.
 */
export function looksLikeMessages(b: Uint8Array, fromClient: boolean): boolean {
  let i = 0;
  let whole = 0;
  while (i < b.length) {
    if (b.length - i < 5) return whole > 0;
    const type = b[i] as number;
    const len = be32(b, i + 1);
    if (!typedLengthOk(type, len, fromClient) || len > DETECT_MAX) return false;
    const end = i + 1 + len;
    if (end > b.length) {
      if (whole > 0) return true;
      // a first message cut by the capture: only query text tells enough
      if (!fromClient) return false;
      if (type === Front.Query) return isText(b, i + 5, b.length);
      return type === Front.Parse && isText(b, i + 5, b.length, 2);
    }
    if (!contentOk(b, i, end, type, fromClient)) return false;
    whole++;
    i = end;
  }
  return whole > 0;
}

function contentOk(b: Uint8Array, start: number, end: number, type: number, fromClient: boolean): boolean {
  const first = b[start + 5];
  if (fromClient) {
    switch (type) {
      case Front.Query:
        return b[end - 1] === 0 && isText(b, start + 5, end - 1);
      case Front.Parse:
        return isText(b, start + 5, end, 2);
      case Front.Describe:
      case Front.Close:
        return (first === 0x53 || first === 0x50) && b[end - 1] === 0;
      default:
        return true;
    }
  }
  switch (type) {
    case Back.ReadyForQuery:
      return first === 0x49 || first === 0x54 || first === 0x45; // I, T, E
    case Back.CommandComplete:
      return b[end - 1] === 0 && isText(b, start + 5, end - 1);
    case Back.ErrorResponse:
    case Back.NoticeResponse:
      return b[end - 1] === 0;
    default:
      return true;
  }
}

/**
 * Text without control bytes (UTF-8 allowed) in [from, end), checking at most TEXT_CHECK bytes; with
 * `strings` > 0, only that many NUL-terminated strings (Parse: name and SQL, before binary fields).
 */
function isText(b: Uint8Array, from: number, end: number, strings = 0): boolean {
  const limit = Math.min(end, from + TEXT_CHECK);
  let left = strings;
  for (let i = from; i < limit; i++) {
    const c = b[i] as number;
    if (c === 0 && left > 0) {
      if (--left === 0) return true;
    } else if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

export function detectPostgres(b: Uint8Array, fromClient: boolean | undefined): Detection {
  if (fromClient !== false) {
    if (looksLikeUntypedStart(b)) return { confidence: Confidence.Sure, fromClient: true };
    if (looksLikeMessages(b, true)) return { confidence: Confidence.Maybe, fromClient: true };
  }
  if (fromClient !== true && looksLikeMessages(b, false)) return { confidence: Confidence.Maybe, fromClient: false };
  return NOT_DETECTED;
}
