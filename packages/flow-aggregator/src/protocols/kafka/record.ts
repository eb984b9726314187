import type { L7Message } from "../../types.js";
import { ApiKey, apiName, errorName, errorStatus } from "./apis.js";
import type { RequestHead, ResponseHead } from "./head.js";

/** The message fields of a request head (timing, size and seq are the parser's). */
export function requestMessage(h: RequestHead): L7Message {
  const api = apiName(h.apiKey);
  const m: L7Message = {
    kind: "request",
    key: h.correlationId,
    startNs: 0,
    endNs: 0,
    bytes: 0,
    tid: 0,
    version: String(h.apiVersion),
    requestType: api,
    endpoint: h.topic === undefined ? api : `${api} ${h.topic}`,
    attributes: { "messaging.system": "kafka" },
  };
  if (h.clientId) m.domain = h.clientId;
  if (h.topic !== undefined) {
    m.resource = h.topic;
    (m.attributes as Record<string, string>)["messaging.destination.name"] = h.topic;
  }
  if (h.apiKey === ApiKey.Produce && h.acks === 0) m.oneWay = true;
  return m;
}

/** The message fields of a response head; apiKey is -1 when its request was not seen. */
export function responseMessage(h: ResponseHead, apiKey: number): L7Message {
  const m: L7Message = { kind: "response", key: h.correlationId, startNs: 0, endNs: 0, bytes: 0, tid: 0 };
  if (apiKey < 0) {
    m.status = "unknown";
    return m;
  }
  m.endpoint = apiName(apiKey);
  const code = h.errorCode ?? 0;
  m.status = errorStatus(code);
  if (code !== 0) {
    m.code = code;
    m.exception = errorName(code);
  }
  return m;
}
