import type { AttributeValue, RequestRecord } from "@kalman/flow-aggregator";
import type { MonotonicClock } from "./clock.js";
import type { ServiceResolver } from "./service.js";
import type { Span, SpanStatus } from "./types.js";

const DB_SYSTEMS: Record<string, string> = { mysql: "mysql", postgresql: "postgresql", redis: "redis" };

/** Span name per OTel semconv for the record's protocol. */
export function spanName(r: RequestRecord): string {
  switch (r.protocol) {
    case "http1":
    case "http2":
      return r.endpoint && r.requestType ? `${r.requestType} ${r.endpoint}` : (r.requestType ?? "HTTP");
    case "grpc":
      return (r.endpoint ?? r.requestType ?? "grpc").replace(/^\//, "");
    case "mysql":
    case "postgresql":
      return r.endpoint ?? r.requestType ?? r.protocol;
    case "redis":
      return r.requestType ?? "redis";
    case "dns":
      return `${r.requestType ?? "query"} ${r.resource ?? ""}`.trim();
    default:
      return [r.requestType, r.endpoint].filter(Boolean).join(" ") || r.protocol;
  }
}

/** Status per semconv: server spans fail on server errors; client spans on any error; timeouts fail. */
export function spanStatus(r: RequestRecord): SpanStatus {
  const failed =
    r.status === "server_error" ||
    r.status === "timeout" ||
    (r.observationPoint === "client" && r.status === "client_error");
  if (!failed) return { code: "unset" };
  return { code: "error", message: r.exception ?? r.status };
}

/** Semconv attributes for the record, plus kalman.* attributes for how it was observed and linked. */
export function spanAttributes(r: RequestRecord): Record<string, AttributeValue> {
  const a: Record<string, AttributeValue> = {
    "network.transport": r.transport,
    "server.address": r.serverAddr,
    "server.port": r.serverPort,
    "client.address": r.clientAddr,
    "client.port": r.clientPort,
    "kalman.observation_point": r.observationPoint,
    "kalman.protocol": r.protocol,
    "thread.id": r.reqTid,
  };
  if (r.version) a["network.protocol.version"] = r.version;
  switch (r.protocol) {
    case "http1":
    case "http2":
      if (r.requestType) a["http.request.method"] = r.requestType;
      if (r.resource) a["url.path"] = r.resource;
      if (r.code !== undefined) a["http.response.status_code"] = r.code;
      if (r.endpoint && r.observationPoint === "server") a["http.route"] = r.endpoint;
      break;
    case "grpc":
      a["rpc.system"] = "grpc";
      if (r.code !== undefined) a["rpc.grpc.status_code"] = r.code;
      break;
    case "mysql":
    case "postgresql":
    case "redis":
      a["db.system.name"] = DB_SYSTEMS[r.protocol] ?? r.protocol;
      if (r.requestType) a["db.operation.name"] = r.requestType;
      if (r.resource && r.protocol !== "redis") a["db.query.text"] = r.resource;
      if (r.domain) a["db.namespace"] = r.domain;
      break;
    case "dns":
      if (r.resource) a["dns.question.name"] = r.resource;
      break;
  }
  if (r.status === "server_error" || r.status === "client_error" || r.status === "timeout") {
    a["error.type"] = r.status === "timeout" ? "timeout" : String(r.code ?? r.status);
  }
  if (r.attributes) Object.assign(a, r.attributes);
  if (r.span?.linkedBy) a["kalman.linked_by"] = r.span.linkedBy;
  if (r.span?.unlinkedReason) a["kalman.unlinked_reason"] = r.span.unlinkedReason;
  return a;
}

/** A span from a record whose trace context the correlator decided; undefined without one. */
export function recordToSpan(r: RequestRecord, clock: MonotonicClock, services: ServiceResolver): Span | undefined {
  const link = r.span;
  if (!link?.traceId) return undefined;
  const span: Span = {
    traceId: link.traceId,
    spanId: link.spanId,
    name: spanName(r),
    kind: r.observationPoint === "client" ? "client" : "server",
    start: clock.toHrTime(r.startNs),
    end: clock.toHrTime(r.endNs),
    durationNs: r.durationNs,
    status: spanStatus(r),
    attributes: spanAttributes(r),
    service: services.resolve(r.pid, r.comm),
  };
  if (link.parentSpanId) span.parentSpanId = link.parentSpanId;
  if (link.linkedBy) span.linkedBy = link.linkedBy;
  if (link.unlinkedReason) span.unlinkedReason = link.unlinkedReason;
  return span;
}
