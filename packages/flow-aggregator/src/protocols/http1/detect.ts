import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";

const METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
const METHOD_BYTES = METHODS.map((m) => Array.from(m, (c) => c.charCodeAt(0)));

/** "METHOD SP target" at the start of b, and " HTTP/1." on the first line when it is all there. */
export function looksLikeRequestStart(b: Uint8Array): boolean {
  for (const m of METHOD_BYTES) {
    if (b.length < m.length + 2) continue;
    let ok = true;
    for (let i = 0; i < m.length; i++) {
      if (b[i] !== m[i]) {
        ok = false;
        break;
      }
    }
    if (!ok || b[m.length] !== 32) continue;
    const t = b[m.length + 1];
    // origin-form "/", absolute-form "h(ttp)", asterisk "*", or an authority (CONNECT)
    if (t === 47 || t === 104 || t === 42 || m === METHOD_BYTES[7]) return hasVersionOnFirstLine(b, m.length + 1);
  }
  return false;
}

function hasVersionOnFirstLine(b: Uint8Array, from: number): boolean {
  const limit = Math.min(b.length, 8192);
  for (let i = from; i < limit; i++) {
    if (b[i] === 10) {
      // " HTTP/1.x" just before the line end
      const end = b[i - 1] === 13 ? i - 1 : i;
      return (
        end >= 9 &&
        b[end - 9] === 32 &&
        b[end - 8] === 72 &&
        b[end - 7] === 84 &&
        b[end - 5] === 80 &&
        b[end - 4] === 47 &&
        b[end - 3] === 49
      );
    }
  }
  return true; // first line cut by the capture: method + target is enough
}

/** "HTTP/1.x NNN" at the start of b. */
export function looksLikeResponseStart(b: Uint8Array): boolean {
  return (
    b.length >= 12 &&
    b[0] === 72 &&
    b[1] === 84 &&
    b[2] === 84 &&
    b[3] === 80 &&
    b[4] === 47 &&
    b[5] === 49 &&
    b[6] === 46 &&
    b[8] === 32 &&
    isDigit(b[9]) &&
    isDigit(b[10]) &&
    isDigit(b[11])
  );
}

const isDigit = (c: number | undefined) => c !== undefined && c >= 48 && c <= 57;

export function detectHttp1(b: Uint8Array): Detection {
  if (looksLikeRequestStart(b)) return { confidence: Confidence.Sure, fromClient: true };
  if (looksLikeResponseStart(b)) return { confidence: Confidence.Sure, fromClient: false };
  return NOT_DETECTED;
}

const RESPONSE_PREFIX = [72, 84, 84, 80, 47, 49, 46]; // "HTTP/1."

/**
 * False when the bytes from `at` can no longer become the start of a message from that side
 * (used to resynchronise early); true while they still might, even if incomplete.
 */
export function couldStartMessage(b: Uint8Array, at: number, fromClient: boolean): boolean {
  const n = b.length - at;
  if (fromClient) {
    for (const m of METHOD_BYTES) {
      let ok = true;
      for (let i = 0; i < Math.min(n, m.length + 1); i++) {
        const want = i < m.length ? m[i] : 32;
        if (b[at + i] !== want) {
          ok = false;
          break;
        }
      }
      // the rest of the request line is validated when the head is parsed
      if (ok) return true;
    }
    return false;
  }
  for (let i = 0; i < Math.min(n, RESPONSE_PREFIX.length); i++) if (b[at + i] !== RESPONSE_PREFIX[i]) return false;
  return true;
}
