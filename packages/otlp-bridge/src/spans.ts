import { hostname } from "node:os";
import { BoundedMap } from "@kalman/flow-aggregator";
import type { ServiceIdentity, Span } from "@kalman/span-correlator";
import {
  type Attributes,
  type HrTime,
  type Link,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from "@opentelemetry/api";
import type { InstrumentationScope } from "@opentelemetry/core";
import { type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import type { ReadableSpan, TimedEvent } from "@opentelemetry/sdk-trace-base";
import { isSpanId, isTraceId } from "./ids.js";
import { VERSION } from "./version.js";

export interface SpanConverterOptions {
  /**
   * Attributes added to every resource (lowest precedence: the observed service's own attributes and
   * service.name win). Default: the agent's OTEL_RESOURCE_ATTRIBUTES, parsed per the OTel spec.
   */
  resourceAttributes?: Attributes;
  /** host.name on every resource (default: os.hostname()). Pass null to leave it out. */
  hostName?: string | null;
  /** Environment read for OTEL_RESOURCE_ATTRIBUTES (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Distinct resources kept (one per service identity); least recently used are evicted. Default 1024. */
  maxResources?: number;
}

const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];

/** The instrumentation scope of every exported span. */
export const KALMAN_SCOPE: InstrumentationScope = { name: "kalman", version: VERSION };

/**
 * Span (from @kalman/span-correlator) -> ReadableSpan (the shape the official OTLP exporters and
 * serializers take). Each observed service gets its own Resource, built once and cached, so the
 * serializer groups a batch into one ResourceSpans per service.
 */
export class SpanConverter {
  private readonly base: Attributes;
  private readonly maxResources: number;
  private readonly byKey: BoundedMap<string, Resource>;
  private byIdentity = new WeakMap<ServiceIdentity, Resource>();

  constructor(options: SpanConverterOptions = {}) {
    const base: Attributes = { ...(options.resourceAttributes ?? resourceAttributesFromEnv(options.env)) };
    const host = options.hostName === undefined ? hostname() : options.hostName;
    if (host !== null && base["host.name"] === undefined) base["host.name"] = host;
    base["telemetry.distro.name"] = "kalman";
    base["telemetry.distro.version"] = VERSION;
    base["kalman.agent"] = "kalman";
    this.base = base;
    this.maxResources = Math.max(1, options.maxResources ?? 1024);
    // identities still pointing at an evicted resource would keep it alive: start over
    this.byKey = new BoundedMap(this.maxResources, () => {
      this.byIdentity = new WeakMap();
    });
  }

  /** Number of cached resources (bounded by maxResources). */
  get resourceCount(): number {
    return this.byKey.size;
  }

  /** The Resource for a service identity: base attributes < identity attributes < service.name. */
  resourceFor(service: ServiceIdentity): Resource {
    const hit = this.byIdentity.get(service);
    if (hit) return hit;
    const key = resourceKey(service);
    let resource = this.byKey.get(key);
    if (resource) this.byKey.touch(key);
    else {
      resource = resourceFromAttributes({
        ...this.base,
        ...service.attributes,
        "service.name": service.serviceName,
      });
      this.byKey.set(key, resource);
    }
    this.byIdentity.set(service, resource);
    return resource;
  }

  /** Converts one span; undefined when its ids are not valid W3C ids (such spans cannot be exported). */
  convert(span: Span): ReadableSpan | undefined {
    const traceId = span.traceId;
    const spanId = span.spanId;
    if (!isTraceId(traceId) || !isSpanId(spanId)) return undefined;
    const ctx: SpanContext = { traceId, spanId, traceFlags: TraceFlags.SAMPLED };
    let parentSpanContext: SpanContext | undefined;
    if (span.parentSpanId && isSpanId(span.parentSpanId)) {
      // a server span's parent is always the caller's client span: in another process
      parentSpanContext = {
        traceId,
        spanId: span.parentSpanId,
        traceFlags: TraceFlags.SAMPLED,
        isRemote: span.kind === "server",
      };
    }
    let attributes: Attributes = span.attributes;
    if (
      (span.linkedBy && attributes["kalman.linked_by"] === undefined) ||
      (span.unlinkedReason && attributes["kalman.unlinked_reason"] === undefined)
    ) {
      attributes = { ...attributes };
      if (span.linkedBy) attributes["kalman.linked_by"] = span.linkedBy;
      if (span.unlinkedReason) attributes["kalman.unlinked_reason"] = span.unlinkedReason;
    }
    const startTime: HrTime = [span.start[0], span.start[1]];
    const endTime: HrTime = [span.end[0], span.end[1]];
    return {
      name: span.name,
      kind: span.kind === "server" ? SpanKind.SERVER : span.kind === "client" ? SpanKind.CLIENT : SpanKind.INTERNAL,
      spanContext: () => ctx,
      parentSpanContext,
      startTime,
      endTime,
      status:
        span.status.code === "error"
          ? { code: SpanStatusCode.ERROR, message: span.status.message }
          : { code: SpanStatusCode.UNSET },
      attributes,
      links: NO_LINKS,
      events: NO_EVENTS,
      duration: durationOf(span, startTime, endTime),
      ended: true,
      resource: this.resourceFor(span.service),
      instrumentationScope: KALMAN_SCOPE,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }
}

function durationOf(span: Span, start: HrTime, end: HrTime): HrTime {
  const ns = span.durationNs;
  if (Number.isFinite(ns) && ns >= 0) return [Math.floor(ns / 1e9), Math.floor(ns % 1e9)];
  let sec = end[0] - start[0];
  let nsec = end[1] - start[1];
  if (nsec < 0) {
    sec -= 1;
    nsec += 1e9;
  }
  return sec < 0 ? [0, 0] : [sec, nsec];
}

function resourceKey(service: ServiceIdentity): string {
  const keys = Object.keys(service.attributes).sort();
  let key = service.serviceName;
  for (const k of keys) key += `\u0000${k}\u0001${String(service.attributes[k])}`;
  return key;
}

/** OTEL_RESOURCE_ATTRIBUTES of this process: `k1=v1,k2=v2`, values percent-decoded. */
export function resourceAttributesFromEnv(env: NodeJS.ProcessEnv = process.env): Attributes {
  const out: Attributes = {};
  const raw = env.OTEL_RESOURCE_ATTRIBUTES?.trim();
  if (!raw) return out;
  for (const pair of raw.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const k = pair.slice(0, eq).trim();
    let v = pair.slice(eq + 1).trim();
    try {
      v = decodeURIComponent(v);
    } catch {
      // keep the raw value
    }
    if (k) out[k] = v;
  }
  return out;
}
