import type { AttributeValue, LinkKind } from "@kalman/flow-aggregator";

/** [seconds, nanoseconds] since the Unix epoch (OpenTelemetry's HrTime). */
export type HrTime = [number, number];

/** "internal": a network span (a request seen at an interface between client and server). */
export type SpanKind = "server" | "client" | "internal";

/** OTel span status: error per semconv (server spans: 5xx-like; client spans: 4xx and 5xx). */
export interface SpanStatus {
  code: "unset" | "error";
  message?: string;
}

/** The process a span was observed in: becomes the span's OTel resource. */
export interface ServiceIdentity {
  serviceName: string;
  attributes: Record<string, AttributeValue>;
}

/** A span built from one request record, already carrying its trace context. */
export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: SpanKind;
  start: HrTime;
  end: HrTime;
  durationNs: number;
  status: SpanStatus;
  attributes: Record<string, AttributeValue>;
  service: ServiceIdentity;
  linkedBy?: LinkKind;
  unlinkedReason?: string;
}
