import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import {
  decodeName,
  Flag,
  HEADER_BYTES,
  headerPlausible,
  MIN_QUERY_BYTES,
  NAME_CUT,
  type NameOut,
  u16,
} from "./wire.js";

const TCP_PREFIX = 2;
const name: NameOut = { name: "" };

/** QCLASS values seen in real questions: IN, CH, HS, NONE, ANY. */
const knownClass = (c: number) => c === 1 || c === 3 || c === 4 || c === 254 || c === 255;

/**
 * How well `msg` (captured bytes of a message of `wireLength` bytes) looks like a standard query or
 * its response: Sure with a strict header and a whole, well-formed question; Maybe when the
 * question was cut by the capture.
 */
function questionConfidence(msg: Uint8Array, wireLength: number): Confidence {
  if (!headerPlausible(msg, 0, wireLength, true)) return Confidence.No;
  const end = decodeName(msg, HEADER_BYTES, name);
  if (end === NAME_CUT) return Confidence.Maybe;
  if (end < 0) return Confidence.No;
  if (end + 4 > msg.length) return Confidence.Maybe;
  return u16(msg, end) !== 0 && knownClass(u16(msg, end + 2)) ? Confidence.Sure : Confidence.No;
}

/**
 * A DNS message at the start of `b`: bare (UDP, or TCP whose length prefix was read apart) or
 * behind TCP's 2-byte length prefix, which must then match the bytes for Sure.
 * The QR bit tells who sent it.
 */
export function detectDns(b: Uint8Array, fromClient: boolean | undefined): Detection {
  let confidence: Confidence = Confidence.No;
  let at = 0;
  if (b.length >= TCP_PREFIX + MIN_QUERY_BYTES) {
    const length = u16(b, 0);
    const available = b.length - TCP_PREFIX;
    if (length >= MIN_QUERY_BYTES) {
      // longer: cut by the capture; shorter: more messages follow
      const c = questionConfidence(b.subarray(TCP_PREFIX, TCP_PREFIX + Math.min(length, available)), length);
      confidence = length === available || c === Confidence.No ? c : Confidence.Maybe;
      at = TCP_PREFIX;
    }
  }
  if (confidence === Confidence.No && b.length >= MIN_QUERY_BYTES) {
    confidence = questionConfidence(b, b.length);
    at = 0;
  }
  if (confidence === Confidence.No) return NOT_DETECTED;
  const response = ((b[at + 2] as number) << 8) & Flag.QR;
  if (fromClient !== undefined && fromClient === (response !== 0)) return NOT_DETECTED;
  return { confidence, fromClient: response === 0 };
}
