// RequestRecord -> which RED histogram it feeds and with what semconv attributes; service graph labels.
import type { AttributeValue, L7ProtocolName, RequestRecord } from "@kalman/flow-aggregator";
import { type ConnectionType, KNOWN_HTTP_METHODS, type RedMetricKey } from "./semconv.js";
import { type EndpointTemplater, OVERFLOW_ENDPOINT } from "./templating.js";

/** Which end of the connection observed the request: the process that sent it, or the one that served it. */
export type Side = "client" | "server";

export type Attrs = Record<string, AttributeValue>;

/** Longest attribute value taken from the wire (operation names, error codes, topics). */
const MAX_VALUE = 128;

const DB_SYSTEMS: Partial<Record<L7ProtocolName, string>> = {
  mysql: "mysql",
  postgresql: "postgresql",
  redis: "redis",
};

/**
 * The RED histogram a record feeds, by protocol and side:
 * - http1/http2: http.server.* / http.client.request.duration
 * - grpc: rpc.server.* / rpc.client.call.duration
 * - mysql/postgresql/redis: db.client.operation.duration, client side only
 * - kafka/mqtt: messaging.client.operation.duration, client side only
 * - dns: dns.lookup.duration, client side only
 *
 * "server_side": a DB, broker or DNS request seen in the server process itself (redis-server,
 * postgres, the broker, the resolver). These are NOT client operations, and semconv has no
 * server-side duration metric for them, so they are skipped for RED (and counted). They still
 * feed the service graph (traces_service_graph_request_server_seconds of their edge).
 */
export function redMetricFor(protocol: L7ProtocolName, side: Side): RedMetricKey | "server_side" | undefined {
  switch (protocol) {
    case "http1":
    case "http2":
      return side === "server" ? "httpServer" : "httpClient";
    case "grpc":
      return side === "server" ? "rpcServer" : "rpcClient";
    case "mysql":
    case "postgresql":
    case "redis":
      return side === "client" ? "dbClient" : "server_side";
    case "kafka":
    case "mqtt":
      return side === "client" ? "messagingClient" : "server_side";
    case "dns":
      return side === "client" ? "dnsLookup" : "server_side";
    default:
      return undefined;
  }
}

/** connection_type of the service graph edge (the connector's values). */
export function connectionTypeOf(protocol: L7ProtocolName): ConnectionType {
  switch (protocol) {
    case "mysql":
    case "postgresql":
    case "redis":
      return "database";
    case "kafka":
    case "mqtt":
      return "messaging_system";
    default:
      return "";
  }
}

/**
 * Whether the request failed, as its side sees it (semconv span status rules): a server fails on
 * server errors and timeouts; a client also on client errors (4xx, NXDOMAIN, SQL errors, ...).
 */
export function failedFor(r: RequestRecord, side: Side): boolean {
  if (r.status === "server_error" || r.status === "timeout") return true;
  return side === "client" && r.status === "client_error";
}

/** error.type of a failed request: the protocol's status code as a string, "timeout", else "_OTHER". */
export function errorTypeOf(r: RequestRecord): string {
  if (r.status === "timeout") return "timeout";
  switch (r.protocol) {
    case "http1":
    case "http2":
    case "grpc":
      return r.code !== undefined ? String(r.code) : "_OTHER";
    case "mysql":
    case "postgresql":
    case "redis": {
      const sc = r.attributes?.["db.response.status_code"];
      if (sc !== undefined && sc !== "") return clip(String(sc));
      if (r.code !== undefined) return String(r.code);
      return r.exception ? clip(firstWord(r.exception)) : "_OTHER";
    }
    default:
      if (r.exception) return clip(firstWord(r.exception));
      return r.code !== undefined ? String(r.code) : "_OTHER";
  }
}

/** `host` of a Host header / :authority (`host:port`, `[v6]:port`). */
export function hostOf(authority: string): string {
  const a = authority.trim();
  if (a.startsWith("[")) {
    const close = a.indexOf("]");
    return close > 0 ? a.slice(1, close) : a;
  }
  const colon = a.lastIndexOf(":");
  if (colon > 0 && a.indexOf(":") === colon && digitsFrom(a, colon + 1)) return a.slice(0, colon);
  return a;
}

/** Whether s[from..] is all ASCII digits (or empty). */
function digitsFrom(s: string, from: number): boolean {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** http.request.method: a known method in upper case, else "_OTHER" (the usual upper-case one is not copied). */
function httpMethodOf(requestType: string | undefined): string {
  if (requestType === undefined || requestType === "") return "_OTHER";
  if (KNOWN_HTTP_METHODS.has(requestType)) return requestType;
  const upper = requestType.toUpperCase();
  return KNOWN_HTTP_METHODS.has(upper) ? upper : "_OTHER";
}

/** The last gRPC path split by grpcRouteOf. */
const lastGrpcRoute = {
  route: "",
  service: undefined as string | undefined,
  method: undefined as string | undefined,
  path: undefined as string | undefined,
};

/** "/pkg.Service/Method" -> service, method and "/service/method" (undefined without a slash after the first character). */
function grpcRouteOf(route: string): typeof lastGrpcRoute {
  const last = lastGrpcRoute;
  if (route === last.route) return last;
  const p = route.startsWith("/") ? route.slice(1) : route;
  const slash = p.indexOf("/");
  last.route = route;
  last.service = slash > 0 ? p.slice(0, slash) : undefined;
  last.method = slash > 0 ? p.slice(slash + 1) : undefined;
  last.path = slash > 0 ? `/${last.service}/${last.method}` : undefined;
  return last;
}

/** hostOf() answers kept by authority (bounded): a connection sends the same Host header again and again. */
const hosts = new Map<string, string>();

function cachedHostOf(authority: string): string {
  if (authority.length > MAX_VALUE) return clip(hostOf(authority));
  let host = hosts.get(authority);
  if (host === undefined) {
    host = clip(hostOf(authority));
    if (hosts.size >= 1024) hosts.clear();
    hosts.set(authority, host);
  }
  return host;
}

/** `addr:port`, with brackets for IPv6. */
export function hostPort(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/**
 * The server end's name when the agent could not resolve it to a service: the Host header /
 * :authority for HTTP and gRPC (as sent, e.g. "api.example.com"), else `serverAddr:serverPort`.
 */
export function peerServerName(r: RequestRecord): string {
  if ((r.protocol === "http1" || r.protocol === "http2" || r.protocol === "grpc") && r.domain) return clip(r.domain);
  return hostPort(r.serverAddr, r.serverPort);
}

/** The client end's name when the agent could not resolve it to a service: its address (no ephemeral port). */
export function peerClientName(r: RequestRecord): string {
  return r.clientAddr;
}

/**
 * Attribute keys of the metrics, by index: the encoded recorder keys its series by these indices
 * and dictionary ids; the string recorder turns them back into names.
 */
export const ATTRIBUTE_KEYS = [
  "service.name",
  "http.request.method",
  "http.route",
  "url.template",
  "http.response.status_code",
  "error.type",
  "server.address",
  "server.port",
  "network.protocol.version",
  "rpc.system",
  "rpc.service",
  "rpc.method",
  "rpc.grpc.status_code",
  "db.system.name",
  "db.operation.name",
  "db.collection.name",
  "db.namespace",
  "db.response.status_code",
  "messaging.system",
  "messaging.operation.name",
  "messaging.operation.type",
  "messaging.destination.name",
  "messaging.destination.template",
  "dns.question.name",
] as const;

/** Index of each key in ATTRIBUTE_KEYS. */
export const K = {
  serviceName: 0,
  httpMethod: 1,
  httpRoute: 2,
  urlTemplate: 3,
  httpStatus: 4,
  errorType: 5,
  serverAddress: 6,
  serverPort: 7,
  protocolVersion: 8,
  rpcSystem: 9,
  rpcService: 10,
  rpcMethod: 11,
  grpcStatus: 12,
  dbSystem: 13,
  dbOperation: 14,
  dbCollection: 15,
  dbNamespace: 16,
  dbStatus: 17,
  msgSystem: 18,
  msgOperation: 19,
  msgOperationType: 20,
  msgDestination: 21,
  msgDestinationTemplate: 22,
  dnsQuestion: 23,
} as const;

/** The keys each RED metric can carry, in the order they are written. */
export const RED_SCHEMA: Record<RedMetricKey, readonly number[]> = {
  httpServer: [
    K.serviceName,
    K.httpMethod,
    K.httpRoute,
    K.httpStatus,
    K.errorType,
    K.serverAddress,
    K.serverPort,
    K.protocolVersion,
  ],
  httpClient: [
    K.serviceName,
    K.httpMethod,
    K.urlTemplate,
    K.httpStatus,
    K.errorType,
    K.serverAddress,
    K.serverPort,
    K.protocolVersion,
  ],
  rpcServer: [
    K.serviceName,
    K.rpcSystem,
    K.rpcService,
    K.rpcMethod,
    K.grpcStatus,
    K.errorType,
    K.serverAddress,
    K.serverPort,
  ],
  rpcClient: [
    K.serviceName,
    K.rpcSystem,
    K.rpcService,
    K.rpcMethod,
    K.grpcStatus,
    K.errorType,
    K.serverAddress,
    K.serverPort,
  ],
  dbClient: [
    K.serviceName,
    K.dbSystem,
    K.dbOperation,
    K.dbCollection,
    K.dbNamespace,
    K.serverAddress,
    K.serverPort,
    K.errorType,
    K.dbStatus,
  ],
  messagingClient: [
    K.serviceName,
    K.msgSystem,
    K.msgOperation,
    K.msgOperationType,
    K.msgDestination,
    K.msgDestinationTemplate,
    K.serverAddress,
    K.serverPort,
    K.errorType,
  ],
  dnsLookup: [K.serviceName, K.dnsQuestion, K.errorType],
};

/** Receives a measurement's attributes: string values and integer values, by key index. */
export interface AttributeWriter {
  str(key: number, value: string): void;
  int(key: number, value: number): void;
}

/** Where endpoints are templated (bounded per service) and where their overflow is reported. */
export interface EndpointSource {
  /** The template of `endpoint` for `service`, or OVERFLOW_ENDPOINT past the caps. */
  template(service: string, endpoint: string): string;
  /** Called each time an endpoint went to OVERFLOW_ENDPOINT. */
  overflow(): void;
}

/** An AttributeWriter that builds an attribute object (the string path). */
export class ObjectWriter implements AttributeWriter {
  a: Attrs = {};
  str(key: number, value: string): void {
    this.a[ATTRIBUTE_KEYS[key] as string] = value;
  }
  int(key: number, value: number): void {
    this.a[ATTRIBUTE_KEYS[key] as string] = value;
  }
}

/**
 * Semconv attributes of the RED measurement of `r` (metric `metric`), observed by `service`
 * (added as `service.name`; the OTLP export moves it to the resource). Endpoints and topics go
 * through the templater (bounded per service). `onEndpointOverflow` is called when that cap hit.
 */
export function redAttributes(
  r: RequestRecord,
  metric: RedMetricKey,
  side: Side,
  service: string,
  templater: EndpointTemplater,
  onEndpointOverflow: () => void,
): Attrs {
  const w = new ObjectWriter();
  writeRedAttributes(
    r,
    metric,
    side,
    service,
    { template: (s, e) => templater.template(s, e), overflow: onEndpointOverflow },
    w,
  );
  return w.a;
}

/** Writes the semconv attributes of the RED measurement of `r` into `w` (see redAttributes). */
export function writeRedAttributes(
  r: RequestRecord,
  metric: RedMetricKey,
  side: Side,
  service: string,
  endpoints: EndpointSource,
  w: AttributeWriter,
): void {
  w.str(K.serviceName, service);
  const failed = failedFor(r, side);
  switch (metric) {
    case "httpServer":
    case "httpClient": {
      w.str(K.httpMethod, httpMethodOf(r.requestType));
      const path = r.endpoint ?? r.resource;
      if (path !== undefined && path !== "") {
        const t = endpoints.template(service, path);
        if (t === OVERFLOW_ENDPOINT) endpoints.overflow();
        w.str(side === "server" ? K.httpRoute : K.urlTemplate, t);
      }
      if (r.code !== undefined && r.code > 0) w.int(K.httpStatus, r.code);
      if (failed) w.str(K.errorType, errorTypeOf(r));
      writeServer(w, r, side);
      if (r.version) w.str(K.protocolVersion, clip(r.version));
      break;
    }
    case "rpcServer":
    case "rpcClient": {
      w.str(K.rpcSystem, "grpc");
      let svc = stringAttr(r, "rpc.service");
      let method = stringAttr(r, "rpc.method");
      const route = r.endpoint ?? r.resource;
      let path: string | undefined;
      if (svc === undefined && method === undefined && route) {
        // the usual case: both from the path, split once per distinct path
        const split = grpcRouteOf(route);
        svc = split.service;
        method = split.method;
        path = split.path;
      } else if ((svc === undefined || method === undefined) && route) {
        const p = route.startsWith("/") ? route.slice(1) : route;
        const slash = p.indexOf("/");
        if (slash > 0) {
          svc ??= p.slice(0, slash);
          method ??= p.slice(slash + 1);
        }
      }
      if (svc !== undefined && method !== undefined) {
        // gRPC methods are a fixed set per server, but a client can send any path: same cap as routes
        const t = endpoints.template(service, path ?? `/${svc}/${method}`);
        if (t === OVERFLOW_ENDPOINT) {
          endpoints.overflow();
          svc = OVERFLOW_ENDPOINT;
          method = OVERFLOW_ENDPOINT;
        }
        w.str(K.rpcService, clip(svc));
        w.str(K.rpcMethod, clip(method));
      }
      if (r.code !== undefined) w.int(K.grpcStatus, r.code);
      if (failed) w.str(K.errorType, errorTypeOf(r));
      writeServer(w, r, side);
      break;
    }
    case "dbClient": {
      const system = stringAttr(r, "db.system.name") ?? DB_SYSTEMS[r.protocol] ?? r.protocol;
      w.str(K.dbSystem, system);
      if (r.requestType) w.str(K.dbOperation, clip(r.requestType));
      const collection = collectionOf(r);
      if (collection) w.str(K.dbCollection, collection);
      if (r.domain && r.protocol !== "redis") w.str(K.dbNamespace, clip(r.domain));
      writeServer(w, r, side);
      if (failed) {
        w.str(K.errorType, errorTypeOf(r));
        const sc = r.attributes?.["db.response.status_code"];
        if (sc !== undefined && sc !== "") w.str(K.dbStatus, clip(String(sc)));
      }
      break;
    }
    case "messagingClient": {
      w.str(K.msgSystem, stringAttr(r, "messaging.system") ?? r.protocol);
      const op = messagingOperation(r);
      w.str(K.msgOperation, op.name);
      if (op.type) w.str(K.msgOperationType, op.type);
      const dest = stringAttr(r, "messaging.destination.name") ?? (r.protocol === "kafka" ? r.resource : undefined);
      if (dest) {
        // semconv: the name only when it has low cardinality, else the template
        const t = endpoints.template(`${service}\u0000messaging`, dest);
        if (t === OVERFLOW_ENDPOINT) endpoints.overflow();
        if (t === dest) w.str(K.msgDestination, clip(dest));
        else w.str(K.msgDestinationTemplate, t);
      }
      writeServer(w, r, side);
      if (failed) w.str(K.errorType, errorTypeOf(r));
      break;
    }
    case "dnsLookup": {
      const name = stringAttr(r, "dns.question.name") ?? r.resource;
      if (name) w.str(K.dnsQuestion, clip(name));
      if (failed) w.str(K.errorType, errorTypeOf(r));
      break;
    }
  }
}

/**
 * server.address / server.port. Client side: the Host header / :authority host when there is one,
 * else the connected address. Server side: the local (listening) socket address, not the Host header,
 * which any client can set to anything.
 */
function writeServer(w: AttributeWriter, r: RequestRecord, side: Side): void {
  const viaHost =
    side === "client" && r.domain && (r.protocol === "http1" || r.protocol === "http2" || r.protocol === "grpc");
  w.str(K.serverAddress, viaHost ? cachedHostOf(r.domain as string) : r.serverAddr);
  w.int(K.serverPort, r.serverPort);
}

/** The last collectionOf() answer: a connection's queries repeat, and this spares a slice per record. */
const lastCollection = { endpoint: "", verb: "", table: undefined as string | undefined };

/** SQL endpoints are "VERB table": the table is db.collection.name. */
function collectionOf(r: RequestRecord): string | undefined {
  if (r.protocol !== "mysql" && r.protocol !== "postgresql") return undefined;
  const e = r.endpoint;
  const verb = r.requestType;
  if (!e || !verb) return undefined;
  const last = lastCollection;
  if (e === last.endpoint && verb === last.verb) return last.table;
  let table: string | undefined;
  if (e.length > verb.length && e.charCodeAt(verb.length) === 32 && e.startsWith(verb)) {
    const t = e.slice(verb.length + 1).trim();
    table = t && !t.includes(" ") ? clip(t) : undefined;
  }
  last.endpoint = e;
  last.verb = verb;
  last.table = table;
  return table;
}

const KAFKA_OPS: Record<string, { name: string; type?: string }> = {
  Produce: { name: "send", type: "send" },
  Fetch: { name: "poll", type: "receive" },
  OffsetCommit: { name: "commit", type: "settle" },
};

const MQTT_OPS: Record<string, { name: string; type?: string }> = {
  PUBLISH: { name: "publish", type: "send" },
  SUBSCRIBE: { name: "subscribe" },
  UNSUBSCRIBE: { name: "unsubscribe" },
};

function messagingOperation(r: RequestRecord): { name: string; type?: string } {
  const t = r.requestType ?? "";
  const known = r.protocol === "kafka" ? KAFKA_OPS[t] : MQTT_OPS[t];
  if (known) return known;
  return { name: t ? clip(t.toLowerCase()) : "_OTHER" };
}

function stringAttr(r: RequestRecord, key: string): string | undefined {
  const v = r.attributes?.[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function firstWord(s: string): string {
  const space = s.indexOf(" ");
  return space < 0 ? s : s.slice(0, space);
}

function clip(s: string): string {
  return s.length > MAX_VALUE ? s.slice(0, MAX_VALUE) : s;
}
