import type { AttributeValue, FlowRecord, RequestRecord } from "@kalman/flow-aggregator";
import {
  type HrTime,
  MonotonicClock,
  type ServiceIdentity,
  ServiceResolver,
  spanAttributes,
} from "@kalman/span-correlator";
import { type SpanContext, TraceFlags } from "@opentelemetry/api";
import { type LogAttributes, SeverityNumber } from "@opentelemetry/api-logs";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { isSpanId, isTraceId } from "../ids.js";
import { KALMAN_SCOPE, SpanConverter, type SpanConverterOptions } from "../spans.js";
import { flowLogRecord } from "./flows.js";

export interface LogRecordConverterOptions {
  /**
   * Monotonic ns (as in RequestRecord.startNs/endNs) -> wall-clock HrTime. Pass the agent's
   * MonotonicClock (`(ns) => clock.toHrTime(ns)`) so logs and spans share one time base.
   * Default: a new MonotonicClock of this process.
   */
  toHrTime?: (monoNs: number) => HrTime;
  /**
   * The service a record was observed in (becomes the log's Resource). Pass the agent's
   * ServiceResolver (`(r) => services.resolve(r.pid, r.comm)`). Default: a new ServiceResolver.
   */
  serviceOf?: (r: RequestRecord) => ServiceIdentity;
  /** A shared converter (its per-service Resource cache is reused; share it with the span sink), or options for a new one. */
  converter?: SpanConverter | SpanConverterOptions;
  /** Environment for OTEL_RESOURCE_ATTRIBUTES when a new converter is made (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Longest resource (path, query text) kept in the one-line body; the full text stays in the attributes. Default 256. */
  maxBodyResourceLength?: number;
}

/** OTel severity of a record's status: INFO for ok (and unknown), WARN for client errors, ERROR for server errors and timeouts. */
export function severityOf(status: RequestRecord["status"]): { number: SeverityNumber; text: string } {
  switch (status) {
    case "client_error":
      return WARN;
    case "server_error":
    case "timeout":
      return ERROR;
    default:
      return INFO;
  }
}

const INFO = Object.freeze({ number: SeverityNumber.INFO, text: "INFO" });
const WARN = Object.freeze({ number: SeverityNumber.WARN, text: "WARN" });
const ERROR = Object.freeze({ number: SeverityNumber.ERROR, text: "ERROR" });
const WHITESPACE = /\s/;

/**
 * The one-line body: "GET /api/items 200 12.3ms", "postgresql SELECT * FROM items 0.8ms",
 * "GET /slow timeout 5000.0ms". Whitespace runs (newlines in SQL) become one space.
 */
export function logBody(r: RequestRecord, maxResourceLength = 256): string {
  const parts: string[] = [];
  const http = r.protocol === "http1" || r.protocol === "http2";
  if (!http) parts.push(r.protocol);
  if (r.requestType) parts.push(r.requestType);
  let what = r.resource ?? r.endpoint;
  if (what) {
    if (WHITESPACE.test(what)) what = what.replace(/\s+/g, " ").trim();
    if (what.length > maxResourceLength) what = `${what.slice(0, maxResourceLength)}…`;
    if (what) parts.push(what);
  }
  if (r.status === "timeout") parts.push("timeout");
  else if (r.code !== undefined) parts.push(String(r.code));
  else if (r.status !== "ok" && r.status !== "unknown") parts.push(r.status);
  parts.push(formatDuration(r.durationNs));
  return parts.join(" ");
}

function formatDuration(ns: number): string {
  if (!Number.isFinite(ns) || ns < 0) return "?ms";
  return `${(ns / 1e6).toFixed(1)}ms`;
}

/**
 * Every record field as a log attribute, once: the span side's semconv attributes (http.request.method,
 * url.path, http.response.status_code, db.system.name, db.query.text, server.*, client.*,
 * network.transport, thread.id, ...) and `kalman.*` for the fields none of them carries. The start and
 * end are the log's timestamp and observed timestamp; process.pid and kalman.netns are left to the
 * resource when `service` (the log's resource identity) carries the same values.
 */
export function logAttributes(r: RequestRecord, service?: ServiceIdentity): LogAttributes {
  const a: Record<string, AttributeValue | undefined> = spanAttributes(r);
  a["kalman.status"] = r.status;
  // a field a semconv attribute already carries is not repeated under a kalman.* name
  if (r.code !== undefined && a["http.response.status_code"] !== r.code && a["rpc.grpc.status_code"] !== r.code)
    a["kalman.code"] = r.code;
  if (r.exception) a["kalman.exception"] = r.exception;
  if (r.version && a["network.protocol.version"] !== r.version) a["kalman.version"] = r.version;
  if (r.requestType && a["http.request.method"] !== r.requestType && a["db.operation.name"] !== r.requestType)
    a["kalman.request_type"] = r.requestType;
  if (r.domain && a["db.namespace"] !== r.domain) a["kalman.domain"] = r.domain;
  if (
    r.resource &&
    a["url.path"] !== r.resource &&
    a["db.query.text"] !== r.resource &&
    a["dns.question.name"] !== r.resource
  )
    a["kalman.resource"] = r.resource;
  if (r.endpoint && a["http.route"] !== r.endpoint) a["kalman.endpoint"] = r.endpoint;
  a["kalman.duration_ns"] = r.durationNs;
  a["kalman.request_bytes"] = r.requestBytes;
  a["kalman.response_bytes"] = r.responseBytes;
  if (r.reqTcpSeq !== undefined) a["kalman.req_tcp_seq"] = r.reqTcpSeq;
  if (r.respTcpSeq !== undefined) a["kalman.resp_tcp_seq"] = r.respTcpSeq;
  if (r.xRequestId) a["kalman.x_request_id"] = r.xRequestId;
  // ids of the incoming traceparent header (the caller's span), not this request's own span
  if (r.traceId) a["kalman.traceparent.trace_id"] = r.traceId;
  if (r.spanId) a["kalman.traceparent.span_id"] = r.spanId;
  if (r.span?.parentSpanId) a["kalman.parent_span_id"] = r.span.parentSpanId;
  if (service?.attributes["process.pid"] !== r.pid) a["process.pid"] = r.pid;
  a["kalman.comm"] = r.comm;
  if (a["thread.id"] !== r.reqTid) a["kalman.req_tid"] = r.reqTid;
  if (r.respTid !== undefined) a["kalman.resp_tid"] = r.respTid;
  if (r.interface) a["kalman.interface"] = r.interface;
  a["kalman.conn_id"] = r.connId;
  if (service?.attributes["kalman.netns"] !== r.netns) a["kalman.netns"] = r.netns;
  a["kalman.cgroup_id"] = r.cgroupId;
  if (r.tls !== undefined) a["kalman.tls"] = r.tls;
  return a as LogAttributes;
}

/**
 * RequestRecord -> ReadableLogRecord (the shape the official OTLP log exporters and serializers
 * take): the "request log" (DeepFlow's l7_flow_log) as OTel logs. Resources come from a
 * SpanConverter's cache, so a batch serializes to one ResourceLogs per service, and sharing the
 * converter with the span sink gives logs and spans the very same resources.
 */
export class LogRecordConverter {
  readonly converter: SpanConverter;
  private readonly toHrTime: (monoNs: number) => HrTime;
  private readonly serviceOf: (r: RequestRecord) => ServiceIdentity;
  private readonly maxBodyResourceLength: number;

  constructor(options: LogRecordConverterOptions = {}) {
    this.converter =
      options.converter instanceof SpanConverter
        ? options.converter
        : new SpanConverter({ env: options.env, ...options.converter });
    if (options.toHrTime) this.toHrTime = options.toHrTime;
    else {
      const clock = new MonotonicClock();
      this.toHrTime = (ns) => clock.toHrTime(ns);
    }
    if (options.serviceOf) this.serviceOf = options.serviceOf;
    else {
      const services = new ServiceResolver();
      this.serviceOf = (r) => services.resolve(r.pid, r.comm);
    }
    this.maxBodyResourceLength = Math.max(1, options.maxBodyResourceLength ?? 256);
  }

  /** A flow log record (network observer resource, times of the report interval). */
  convertFlow(f: FlowRecord): ReadableLogRecord {
    return flowLogRecord(f, this.toHrTime, this.converter);
  }

  /** Timestamp: the request's start; observed timestamp: its end (when the record was complete). */
  convert(r: RequestRecord): ReadableLogRecord {
    const severity = severityOf(r.status);
    const service = this.serviceOf(r);
    const start = this.toHrTime(r.startNs);
    const end = Number.isFinite(r.endNs) ? this.toHrTime(r.endNs) : start;
    return {
      hrTime: [start[0], start[1]],
      hrTimeObserved: [end[0], end[1]],
      spanContext: spanContextOf(r),
      severityNumber: severity.number,
      severityText: severity.text,
      body: logBody(r, this.maxBodyResourceLength),
      resource: this.converter.resourceFor(service),
      instrumentationScope: KALMAN_SCOPE,
      attributes: logAttributes(r, service),
      droppedAttributesCount: 0,
    };
  }
}

/** The request's own span (from the correlator) when its ids are valid W3C ids, so the log joins the trace. */
function spanContextOf(r: RequestRecord): SpanContext | undefined {
  const link = r.span;
  if (!link) return undefined;
  const { traceId, spanId } = link;
  if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
  return { traceId, spanId, traceFlags: TraceFlags.SAMPLED };
}
