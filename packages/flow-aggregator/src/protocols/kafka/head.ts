// Request and response heads: the header plus the few body fields records use. Works on a prefix cut by the
// capture: what lies past the end stays undefined.

import { ascii, utf8Text } from "../bytes.js";
import { ApiKey, isFlexible, isKnownApi } from "./apis.js";
import { type Cursor, readI16, readI32 } from "./wire.js";

/** size + api_key + api_version + correlation_id + client_id length. */
export const REQUEST_HEADER_MIN = 14;
/** size + correlation_id. */
export const RESPONSE_HEADER_MIN = 8;
/** Topic names are at most 249 bytes of [a-zA-Z0-9._-]. */
const MAX_TOPIC = 249;
const MAX_CLIENT_ID = 1024;

export interface RequestHead {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId?: string;
  /** First topic of a Produce or Fetch, when it is named (not a topic id) and captured. */
  topic?: string;
  /** Produce acks (0: no response). */
  acks?: number;
}

export interface ResponseHead {
  correlationId: number;
  /** Top-level or first partition error code, when the body was read that far. */
  errorCode?: number;
}

/**
 * Header of a request at b[start..end) (from its size field); undefined when it is not a plausible request
 * header (unknown API key or version, client id longer than the message).
 */
export function parseRequestHead(c: Cursor, b: Uint8Array, start: number, end: number): RequestHead | undefined {
  if (end - start < 12) return undefined;
  const size = readI32(b, start);
  const apiKey = readI16(b, start + 4);
  const apiVersion = readI16(b, start + 6);
  if (!isKnownApi(apiKey, apiVersion)) return undefined;
  const head: RequestHead = { apiKey, apiVersion, correlationId: readI32(b, start + 8) };
  if (end - start < REQUEST_HEADER_MIN) return head;
  const clientIdLength = readI16(b, start + 12);
  if (clientIdLength < -1 || clientIdLength > size - 10) return undefined;
  let at = start + REQUEST_HEADER_MIN;
  if (clientIdLength > 0) {
    if (at + clientIdLength > end) return head;
    head.clientId = ascii(b, at, at + Math.min(clientIdLength, MAX_CLIENT_ID));
    at += clientIdLength;
  }
  if (apiKey !== ApiKey.Produce && apiKey !== ApiKey.Fetch) return head;
  const flexible = isFlexible(apiKey, apiVersion);
  c.reset(b, at, end);
  if (flexible) c.skipTaggedFields();
  if (apiKey === ApiKey.Produce) {
    if (apiVersion >= 3) c.skipString(flexible); // transactional_id
    const acks = c.i16();
    if (!c.ok) return head;
    head.acks = acks;
    c.skip(4); // timeout_ms
  } else {
    if (apiVersion <= 14) c.skip(4); // replica_id
    c.skip(8); // max_wait_ms, min_bytes
    if (apiVersion >= 3) c.skip(4); // max_bytes
    if (apiVersion >= 4) c.skip(1); // isolation_level
    if (apiVersion >= 7) c.skip(8); // session_id, session_epoch
  }
  // Produce v13+ and Fetch v13+ name topics by id only
  if (apiVersion > 12) return head;
  const topics = c.arrayLength(flexible);
  if (!c.ok || topics < 1) return head;
  const topic = readTopic(c, flexible);
  if (topic !== undefined) head.topic = topic;
  return head;
}

function readTopic(c: Cursor, flexible: boolean): string | undefined {
  const n = c.stringLength(flexible);
  if (!c.ok || n < 1 || n > MAX_TOPIC || !c.has(n)) return undefined;
  const b = c.b;
  for (let i = c.at; i < c.at + n; i++) {
    const ch = b[i] as number;
    const legal =
      (ch >= 0x61 && ch <= 0x7a) ||
      (ch >= 0x41 && ch <= 0x5a) ||
      (ch >= 0x30 && ch <= 0x39) ||
      ch === 0x2e ||
      ch === 0x5f ||
      ch === 0x2d;
    if (!legal) return undefined;
  }
  return utf8Text(b, c.at, c.at + n);
}

/**
 * Response at b[start..end) to a request of apiKey/apiVersion (-1 when the request was not seen): the
 * correlation id, and the error code of the APIs whose bodies are read.
 */
export function parseResponseHead(
  c: Cursor,
  b: Uint8Array,
  start: number,
  end: number,
  apiKey: number,
  apiVersion: number,
): ResponseHead | undefined {
  if (end - start < RESPONSE_HEADER_MIN) return undefined;
  const head: ResponseHead = { correlationId: readI32(b, start + 4) };
  if (apiKey < 0) return head;
  c.reset(b, start + RESPONSE_HEADER_MIN, end);
  const flexible = isFlexible(apiKey, apiVersion);
  // ApiVersions answers with header v0 whatever the version, so an old broker can read it
  if (flexible && apiKey !== ApiKey.ApiVersions) c.skipTaggedFields();
  let code: number | undefined;
  switch (apiKey) {
    case ApiKey.Produce:
      code = firstPartitionError(c, flexible, apiVersion);
      break;
    case ApiKey.Fetch: {
      if (apiVersion >= 1) c.skip(4); // throttle_time_ms
      if (apiVersion >= 7) {
        const top = c.i16();
        c.skip(4); // session_id
        if (c.ok && top !== 0) {
          code = top;
          break;
        }
      }
      code = firstPartitionError(c, flexible, apiVersion);
      break;
    }
    case ApiKey.ApiVersions:
      code = c.i16();
      break;
    case ApiKey.FindCoordinator:
      // v4+ answers per coordinator key, without a top-level error
      if (apiVersion >= 4) break;
      if (apiVersion >= 1) c.skip(4);
      code = c.i16();
      break;
    case ApiKey.JoinGroup:
      if (apiVersion >= 2) c.skip(4);
      code = c.i16();
      break;
    case ApiKey.Heartbeat:
    case ApiKey.LeaveGroup:
    case ApiKey.SyncGroup:
      if (apiVersion >= 1) c.skip(4);
      code = c.i16();
      break;
    case ApiKey.InitProducerId:
      c.skip(4);
      code = c.i16();
      break;
  }
  if (code !== undefined && c.ok) head.errorCode = code;
  return head;
}

/** Error code of the first partition of the first topic (Produce and Fetch responses). */
function firstPartitionError(c: Cursor, flexible: boolean, apiVersion: number): number | undefined {
  const topics = c.arrayLength(flexible);
  if (!c.ok || topics < 1) return undefined;
  if (apiVersion > 12)
    c.skip(16); // topic_id
  else c.skipString(flexible);
  const partitions = c.arrayLength(flexible);
  if (!c.ok || partitions < 1) return undefined;
  c.skip(4); // partition_index
  const code = c.i16();
  return c.ok ? code : undefined;
}
