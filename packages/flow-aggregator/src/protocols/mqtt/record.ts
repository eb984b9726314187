import type { AttributeValue, L7Message, ResponseStatus } from "../../types.js";

/**
 * Pairing keys. Packet ids are chosen by each side independently, and a QoS 2 flow has two
 * exchanges (PUBLISH/PUBREC, then PUBREL/PUBCOMP), so each flow gets its own key range:
 * client PUBLISH, SUBSCRIBE, UNSUBSCRIBE use the packet id itself.
 */
export const KeySpace = {
  Client: 0x00000,
  /** client PUBREL -> broker PUBCOMP */
  ClientRelease: 0x10000,
  /** broker PUBLISH (QoS 1/2) -> client PUBACK/PUBREC */
  Broker: 0x20000,
  /** broker PUBREL -> client PUBCOMP */
  BrokerRelease: 0x30000,
} as const;

const V311_CONNACK: Record<number, string> = {
  1: "Unacceptable protocol version",
  2: "Identifier rejected",
  3: "Server unavailable",
  4: "Bad user name or password",
  5: "Not authorized",
};

/** MQTT 5 reason codes (and the 3.1.1 SUBACK failure 0x80). */
const REASONS: Record<number, string> = {
  0: "Success",
  1: "Granted QoS 1",
  2: "Granted QoS 2",
  4: "Disconnect with Will Message",
  16: "No matching subscribers",
  17: "No subscription existed",
  24: "Continue authentication",
  25: "Re-authenticate",
  128: "Unspecified error",
  129: "Malformed Packet",
  130: "Protocol Error",
  131: "Implementation specific error",
  132: "Unsupported Protocol Version",
  133: "Client Identifier not valid",
  134: "Bad User Name or Password",
  135: "Not authorized",
  136: "Server unavailable",
  137: "Server busy",
  138: "Banned",
  139: "Server shutting down",
  140: "Bad authentication method",
  141: "Keep Alive timeout",
  142: "Session taken over",
  143: "Topic Filter invalid",
  144: "Topic Name invalid",
  145: "Packet Identifier in use",
  146: "Packet Identifier not found",
  147: "Receive Maximum exceeded",
  148: "Topic Alias invalid",
  149: "Packet too large",
  150: "Message rate too high",
  151: "Quota exceeded",
  152: "Administrative action",
  153: "Payload format invalid",
  154: "Retain not supported",
  155: "QoS not supported",
  156: "Use another server",
  157: "Server moved",
  158: "Shared Subscriptions not supported",
  159: "Connection rate exceeded",
  160: "Maximum connect time",
  161: "Subscription Identifiers not supported",
  162: "Wildcard Subscriptions not supported",
};

const hex2 = (code: number) => `0x${code.toString(16).padStart(2, "0")}`;

/** Which table a code comes from: MQTT 5 reason codes, 3.1.1 CONNACK or 3.1.1 SUBACK return codes. */
export const CodeTable = { V5: 0, V311Connack: 1, V311Suback: 2 } as const;
export type CodeTable = (typeof CodeTable)[keyof typeof CodeTable];

export function reasonName(code: number, table: CodeTable): string {
  if (table === CodeTable.V311Connack) return V311_CONNACK[code] ?? `Connection refused (${code})`;
  if (table === CodeTable.V311Suback && code === 0x80) return "Failure";
  return REASONS[code] ?? `Reason ${hex2(code)}`;
}

/**
 * Record status of a code: success below 0x80; the broker's own trouble (unavailable, busy, shutting
 * down) is a server error; any other refusal is the client's (auth, ACL, bad topic, quota).
 */
export function reasonStatus(code: number, table: CodeTable): ResponseStatus {
  if (table === CodeTable.V311Connack) return code === 0 ? "ok" : code === 3 ? "server_error" : "client_error";
  if (code < 0x80) return "ok";
  return code === 0x88 || code === 0x89 || code === 0x8b ? "server_error" : "client_error";
}

/** A fresh message with the fields every MQTT message has (timing, size, seq filled at emit). */
export function newMessage(kind: "request" | "response", version: string | undefined): L7Message {
  const m: L7Message = { kind, startNs: 0, endNs: 0, bytes: 0, tid: 0 };
  if (version !== undefined) m.version = version;
  m.attributes = { "messaging.system": "mqtt" };
  return m;
}

export function setAttribute(m: L7Message, name: string, value: AttributeValue): void {
  if (m.attributes) m.attributes[name] = value;
  else m.attributes = { [name]: value };
}

/** A request naming a topic (PUBLISH, SUBSCRIBE, ...): resource = endpoint = topic. */
export function setTopic(m: L7Message, topic: string | undefined): void {
  if (topic === undefined) return;
  m.resource = topic;
  m.endpoint = topic;
  setAttribute(m, "messaging.destination.name", topic);
}

/** Code, status and exception of a response carrying a reason code. */
export function setReason(m: L7Message, code: number, table: CodeTable, reasonString: string | undefined): void {
  m.code = code;
  m.status = reasonStatus(code, table);
  if (m.status === "ok") return;
  const name = reasonName(code, table);
  m.exception = reasonString ? `${name}: ${reasonString}` : name;
}

export function versionName(level: number): string | undefined {
  return level === 4 ? "3.1.1" : level === 5 ? "5.0" : level === 3 ? "3.1" : undefined;
}
