import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import { ApiKey, isKnownApi } from "./apis.js";
import { parseRequestHead, REQUEST_HEADER_MIN } from "./head.js";
import { Cursor, readI16, readI32 } from "./wire.js";

/** Largest message the parser frames (brokers default to 100 MiB requests; fetches can be larger). */
export const MAX_MESSAGE_SIZE = 256 * 1024 * 1024;

/**
 * A request header at b[at..]: plausible size, known API key and version, non-negative correlation id and a
 * printable (or null) client id that fits in the message. Checks only the captured part of the client id.
 */
export function looksLikeRequest(b: Uint8Array, at = 0): boolean {
  if (b.length - at < REQUEST_HEADER_MIN) return false;
  const size = readI32(b, at);
  if (size < REQUEST_HEADER_MIN - 4 || size > MAX_MESSAGE_SIZE) return false;
  if (!isKnownApi(readI16(b, at + 4), readI16(b, at + 6))) return false;
  if (readI32(b, at + 8) < 0) return false;
  const clientIdLength = readI16(b, at + 12);
  if (clientIdLength === -1) return true;
  if (clientIdLength < 0 || clientIdLength > size - 10) return false;
  const end = Math.min(b.length, at + REQUEST_HEADER_MIN + clientIdLength);
  for (let i = at + REQUEST_HEADER_MIN; i < end; i++) {
    const c = b[i] as number;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

const SURE: Detection = { confidence: Confidence.Sure, fromClient: true };
const MAYBE: Detection = { confidence: Confidence.Maybe, fromClient: true };
const cursor = new Cursor();

/**
 * Kafka is recognised from a client's request. A response (size, correlation id, body) whose correlation id is
 * below 2^16 reads like a Produce header, so Produce and Fetch must also name a legal topic (and Produce have
 * acks -1, 0 or 1): Maybe when that part was not captured or names topics by id, No when it is there and wrong.
 */
export function detectKafka(b: Uint8Array, fromClient: boolean | undefined): Detection {
  if (fromClient === false || !looksLikeRequest(b)) return NOT_DETECTED;
  const apiKey = readI16(b, 4);
  if (apiKey !== ApiKey.Produce && apiKey !== ApiKey.Fetch) return SURE;
  const end = Math.min(b.length, 4 + readI32(b, 0));
  const head = parseRequestHead(cursor, b, 0, end);
  if (!head) return NOT_DETECTED;
  if (head.acks !== undefined && (head.acks < -1 || head.acks > 1)) return NOT_DETECTED;
  if (head.topic !== undefined) return SURE;
  const whole = end === 4 + readI32(b, 0);
  return whole && head.apiVersion <= 12 ? NOT_DETECTED : MAYBE;
}
