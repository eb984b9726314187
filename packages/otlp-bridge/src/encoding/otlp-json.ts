// OTLP-JSON requests (the Collector file exporter's lines) from ReadableSpans and ReadableLogRecords,
// character for character what @opentelemetry/otlp-transformer's JsonTraceSerializer and
// JsonLogsSerializer produce (JSON.stringify of the request object they build), written straight
// into one string: attribute keys, resources and the scope are encoded once. Spans with events,
// links or a trace state go through the official serializer.
import type { InstrumentationScope } from "@opentelemetry/core";
import { JsonLogsSerializer, JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";

const MAX_CACHED_KEYS = 4096;
/** Characters JSON.stringify escapes (control characters, quote, backslash, lone surrogates). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

type Attrs = Record<string, unknown>;

const keyPrefixes = new Map<string, string>();
const resources = new WeakMap<Resource, { resource: string; tail: string }>();
const scopes = new WeakMap<InstrumentationScope, { scope: string; tail: string }>();
const decoder = new TextDecoder();

/** A JSON string literal, as JSON.stringify writes it. */
export function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function keyPrefix(key: string): string {
  const hit = keyPrefixes.get(key);
  if (hit !== undefined) return hit;
  const prefix = `{"key":${quote(key)},"value":`;
  if (keyPrefixes.size < MAX_CACHED_KEYS) keyPrefixes.set(key, prefix);
  return prefix;
}

/** `[{"key":...,"value":{...}},...]`: toAttributes() of the transformer, stringified. */
export function jsonAttributes(attributes: Attrs): string {
  let out = "[";
  let first = true;
  for (const key of Object.keys(attributes)) {
    out += `${first ? "" : ","}${keyPrefix(key)}${jsonAnyValue(attributes[key])}}`;
    first = false;
  }
  return `${out}]`;
}

export function jsonAnyValue(value: unknown): string {
  switch (typeof value) {
    case "string":
      return `{"stringValue":${quote(value)}}`;
    case "number":
      return Number.isInteger(value)
        ? `{"intValue":${String(value)}}`
        : `{"doubleValue":${Number.isFinite(value) ? String(value) : "null"}}`;
    case "boolean":
      return value ? `{"boolValue":true}` : `{"boolValue":false}`;
  }
  if (value instanceof Uint8Array) return `{"bytesValue":"${Buffer.from(value).toString("base64")}"}`;
  if (Array.isArray(value)) {
    let out = `{"arrayValue":{"values":[`;
    for (let i = 0; i < value.length; i++) out += `${i ? "," : ""}${jsonAnyValue(value[i])}`;
    return `${out}]}}`;
  }
  if (typeof value === "object" && value !== null) return `{"kvlistValue":{"values":${jsonAttributes(value as Attrs)}}}`;
  return "{}";
}

/** HrTime as the decimal string of its nanoseconds since the epoch. */
export function jsonTime(t: readonly [number, number]): string {
  const [sec, ns] = t;
  if (Number.isInteger(sec) && sec > 0 && Number.isInteger(ns) && ns >= 0 && ns < 1e9) {
    const n = String(ns);
    return `"${sec}${"000000000".slice(n.length)}${n}"`;
  }
  return `"${(BigInt(Math.trunc(sec)) * 1_000_000_000n + BigInt(Math.trunc(ns))).toString()}"`;
}

function resourceJson(resource: Resource): { resource: string; tail: string } {
  let hit = resources.get(resource);
  if (!hit) {
    const schema = resource.schemaUrl ? `,"schemaUrl":${quote(resource.schemaUrl)}` : "";
    hit = {
      resource: `{"attributes":${jsonAttributes(resource.attributes ?? {})},"droppedAttributesCount":0${schema}}`,
      tail: schema,
    };
    resources.set(resource, hit);
  }
  return hit;
}

function scopeJson(scope: InstrumentationScope & { attributes?: Attrs; droppedAttributesCount?: number }): {
  scope: string;
  tail: string;
} {
  let hit = scopes.get(scope);
  if (!hit) {
    let s = `{"name":${quote(scope.name)}`;
    if (scope.version !== undefined) s += `,"version":${quote(scope.version)}`;
    if (scope.attributes && Object.keys(scope.attributes).length > 0)
      s += `,"attributes":${jsonAttributes(scope.attributes)},"droppedAttributesCount":${scope.droppedAttributesCount ?? 0}`;
    hit = { scope: `${s}}`, tail: scope.schemaUrl !== undefined ? `,"schemaUrl":${quote(scope.schemaUrl)}` : "" };
    scopes.set(scope, hit);
  }
  return hit;
}

interface Item {
  resource: Resource;
  instrumentationScope: InstrumentationScope;
}

/** Traces group scopes by name@version:schemaUrl, logs by scope object (as the transformer does). */
type ScopeKey = (scope: InstrumentationScope) => unknown;
const byScopeName: ScopeKey = (s) => `${s.name}@${s.version || ""}:${s.schemaUrl || ""}`;
const byScopeObject: ScopeKey = (s) => s;

/** Grouped by resource (identity), then by scope key, in order of first appearance. */
function group<T extends Item>(items: readonly T[], scopeKey: ScopeKey): Map<Resource, Map<unknown, T[]>> {
  const byResource = new Map<Resource, Map<unknown, T[]>>();
  let lastResource: Resource | undefined;
  let lastScope: InstrumentationScope | undefined;
  let last: T[] | undefined;
  for (const item of items) {
    const scope = item.instrumentationScope;
    if (item.resource === lastResource && scope === lastScope && last) {
      last.push(item);
      continue;
    }
    let byScope = byResource.get(item.resource);
    if (!byScope) {
      byScope = new Map();
      byResource.set(item.resource, byScope);
    }
    const key = scopeKey(scope);
    let list = byScope.get(key);
    if (!list) {
      list = [];
      byScope.set(key, list);
    }
    list.push(item);
    lastResource = item.resource;
    lastScope = scope;
    last = list;
  }
  return byResource;
}

function request<T extends Item>(
  items: readonly T[],
  outer: "resourceSpans" | "resourceLogs",
  inner: "scopeSpans" | "scopeLogs",
  list: "spans" | "logRecords",
  itemJson: (item: T) => string,
  scopeKey: ScopeKey,
): string {
  let out = `{"${outer}":[`;
  let firstResource = true;
  for (const [resource, byScope] of group(items, scopeKey)) {
    const r = resourceJson(resource);
    out += `${firstResource ? "" : ","}{"resource":${r.resource},"${inner}":[`;
    firstResource = false;
    let firstScope = true;
    for (const entries of byScope.values()) {
      const s = scopeJson((entries[0] as T).instrumentationScope);
      out += `${firstScope ? "" : ","}{"scope":${s.scope},"${list}":[`;
      firstScope = false;
      for (let i = 0; i < entries.length; i++) out += `${i ? "," : ""}${itemJson(entries[i] as T)}`;
      out += `]${s.tail}}`;
    }
    out += `]${r.tail}}`;
  }
  return `${out}]}`;
}

function spanJson(span: ReadableSpan): string {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext;
  let out = `{"traceId":${quote(ctx.traceId)},"spanId":${quote(ctx.spanId)}`;
  if (parent?.spanId) out += `,"parentSpanId":${quote(parent.spanId)}`;
  out += `,"name":${quote(span.name)},"kind":${span.kind == null ? 0 : span.kind + 1}`;
  out += `,"startTimeUnixNano":${jsonTime(span.startTime)},"endTimeUnixNano":${jsonTime(span.endTime)}`;
  out += `,"attributes":${jsonAttributes(span.attributes)}`;
  if (span.droppedAttributesCount !== undefined) out += `,"droppedAttributesCount":${span.droppedAttributesCount}`;
  out += `,"events":[]`;
  if (span.droppedEventsCount !== undefined) out += `,"droppedEventsCount":${span.droppedEventsCount}`;
  out += `,"status":{"code":${span.status.code}`;
  if (span.status.message !== undefined) out += `,"message":${quote(span.status.message)}`;
  out += `},"links":[]`;
  if (span.droppedLinksCount !== undefined) out += `,"droppedLinksCount":${span.droppedLinksCount}`;
  let flags = (ctx.traceFlags & 0xff) | 0x100;
  if (parent?.isRemote) flags |= 0x200;
  return `${out},"flags":${flags}}`;
}

/** One OTLP-JSON ExportTraceServiceRequest (what JsonTraceSerializer.serializeRequest encodes). */
export function tracesJson(spans: readonly ReadableSpan[]): string {
  for (const s of spans) {
    if (s.events.length || s.links.length || s.spanContext().traceState) {
      return decoder.decode(JsonTraceSerializer.serializeRequest(spans as ReadableSpan[]));
    }
  }
  return request(spans, "resourceSpans", "scopeSpans", "spans", spanJson, byScopeName);
}

function logJson(log: ReadableLogRecord): string {
  let out = `{"timeUnixNano":${jsonTime(log.hrTime)},"observedTimeUnixNano":${jsonTime(log.hrTimeObserved)}`;
  if (log.severityNumber !== undefined) out += `,"severityNumber":${log.severityNumber}`;
  if (log.severityText !== undefined) out += `,"severityText":${quote(log.severityText)}`;
  out += `,"body":${jsonAnyValue(log.body)}`;
  if (log.eventName !== undefined) out += `,"eventName":${quote(log.eventName)}`;
  out += `,"attributes":${jsonAttributes(log.attributes)}`;
  if (log.droppedAttributesCount !== undefined) out += `,"droppedAttributesCount":${log.droppedAttributesCount}`;
  const ctx = log.spanContext;
  if (ctx?.traceFlags !== undefined) out += `,"flags":${ctx.traceFlags}`;
  if (ctx?.traceId !== undefined) out += `,"traceId":${quote(ctx.traceId)}`;
  if (ctx?.spanId !== undefined) out += `,"spanId":${quote(ctx.spanId)}`;
  return `${out}}`;
}

/** One OTLP-JSON ExportLogsServiceRequest (what JsonLogsSerializer.serializeRequest encodes). */
export function logsJson(logs: readonly ReadableLogRecord[]): string {
  for (const l of logs) {
    if (typeof l.droppedAttributesCount !== "number" || !Number.isFinite(l.droppedAttributesCount)) {
      return decoder.decode(JsonLogsSerializer.serializeRequest(logs as ReadableLogRecord[]));
    }
  }
  return request(logs, "resourceLogs", "scopeLogs", "logRecords", logJson, byScopeObject);
}
