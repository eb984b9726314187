// OTLP-JSON requests (the Collector file exporter's lines) from ReadableSpans and ReadableLogRecords:
// byte for byte the UTF-8 that @opentelemetry/otlp-transformer's JsonTraceSerializer and
// JsonLogsSerializer produce (JSON.stringify of the request object they build), written straight
// into a reused buffer, with attribute keys, resources and the scope encoded once. Spans with
// events, links or a trace state go through the official serializer.
import type { InstrumentationScope } from "@opentelemetry/core";
import { JsonLogsSerializer, JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { JsonWriter, literal } from "./json-writer.js";
import { cachedEncoding, type ValueCache } from "./value-cache.js";

const MAX_CACHED_KEYS = 4096;
const COMMA = 44;
const CLOSE_BRACE = 125;
const CLOSE_BRACKET = 93;
const OPEN_BRACKET = 91;

type Attrs = Record<string, unknown>;

const keyEntries = new Map<string, KeyEntry>();
const resources = new WeakMap<Resource, { resource: Uint8Array; tail: Uint8Array }>();
const scopes = new WeakMap<InstrumentationScope, { scope: Uint8Array; tail: Uint8Array }>();

const L = {
  key: literal(`{"key":`),
  value: literal(`,"value":`),
  stringValue: literal(`{"stringValue":`),
  intValue: literal(`{"intValue":`),
  doubleValue: literal(`{"doubleValue":`),
  boolTrue: literal(`{"boolValue":true}`),
  boolFalse: literal(`{"boolValue":false}`),
  bytesValue: literal(`{"bytesValue":`),
  arrayValue: literal(`{"arrayValue":{"values":[`),
  kvlistValue: literal(`{"kvlistValue":{"values":`),
  empty: literal("{}"),
  closeArrayValue: literal("]}}"),
  closeTwo: literal("}}"),
  resource: literal(`{"resource":`),
  scope: literal(`{"scope":`),
  traceId: literal(`{"traceId":`),
  spanId: literal(`,"spanId":`),
  parentSpanId: literal(`,"parentSpanId":`),
  name: literal(`,"name":`),
  kind: literal(`,"kind":`),
  start: literal(`,"startTimeUnixNano":`),
  end: literal(`,"endTimeUnixNano":`),
  attributes: literal(`,"attributes":`),
  droppedAttributes: literal(`,"droppedAttributesCount":`),
  events: literal(`,"events":[]`),
  droppedEvents: literal(`,"droppedEventsCount":`),
  status: literal(`,"status":{"code":`),
  message: literal(`,"message":`),
  links: literal(`},"links":[]`),
  droppedLinks: literal(`,"droppedLinksCount":`),
  flags: literal(`,"flags":`),
  time: literal(`{"timeUnixNano":`),
  observed: literal(`,"observedTimeUnixNano":`),
  severityNumber: literal(`,"severityNumber":`),
  severityText: literal(`,"severityText":`),
  body: literal(`,"body":`),
  eventName: literal(`,"eventName":`),
  logTraceId: literal(`,"traceId":`),
} as const;

/** Per attribute key: `{"key":"k","value":`, and its last string value's whole KeyValue. */
interface KeyEntry extends ValueCache {
  prefix: Uint8Array;
}
const scratch = new JsonWriter(256);

function keyEntry(key: string): KeyEntry | undefined {
  const hit = keyEntries.get(key);
  if (hit || keyEntries.size >= MAX_CACHED_KEYS) return hit;
  const k = new JsonWriter(64);
  k.raw(L.key);
  k.string(key);
  k.raw(L.value);
  const entry: KeyEntry = { prefix: k.finish(), value: undefined, bytes: undefined, hits: 0, misses: 0 };
  keyEntries.set(key, entry);
  return entry;
}

/** `{"key":...,"value":{"stringValue":...}}` of the entry's key = `value`. */
function keyValueJson(e: KeyEntry, value: string): Uint8Array {
  scratch.reset();
  scratch.raw(e.prefix);
  scratch.raw(L.stringValue);
  scratch.string(value);
  scratch.raw(L.closeTwo);
  return scratch.finish();
}

/** `[{"key":...,"value":{...}},...]`: toAttributes() of the transformer, stringified. */
function writeAttributes(w: JsonWriter, attributes: Attrs): void {
  w.char(OPEN_BRACKET);
  const keys = Object.keys(attributes);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = attributes[key];
    if (i) w.char(COMMA);
    const e = keyEntry(key);
    if (e && typeof value === "string") {
      const whole = cachedEncoding(e, value, keyValueJson);
      if (whole) {
        w.raw(whole);
        continue;
      }
    }
    if (e) w.raw(e.prefix);
    else {
      w.raw(L.key);
      w.string(key);
      w.raw(L.value);
    }
    writeAnyValue(w, value);
    w.char(CLOSE_BRACE);
  }
  w.char(CLOSE_BRACKET);
}

function writeAnyValue(w: JsonWriter, value: unknown): void {
  switch (typeof value) {
    case "string":
      w.raw(L.stringValue);
      w.string(value);
      w.char(CLOSE_BRACE);
      return;
    case "number":
      w.raw(Number.isInteger(value) ? L.intValue : L.doubleValue);
      w.number(value);
      w.char(CLOSE_BRACE);
      return;
    case "boolean":
      w.raw(value ? L.boolTrue : L.boolFalse);
      return;
  }
  if (value instanceof Uint8Array) {
    w.raw(L.bytesValue);
    w.string(Buffer.from(value).toString("base64"));
    w.char(CLOSE_BRACE);
  } else if (Array.isArray(value)) {
    w.raw(L.arrayValue);
    for (let i = 0; i < value.length; i++) {
      if (i) w.char(COMMA);
      writeAnyValue(w, value[i]);
    }
    w.raw(L.closeArrayValue);
  } else if (typeof value === "object" && value !== null) {
    w.raw(L.kvlistValue);
    writeAttributes(w, value as Attrs);
    w.raw(L.closeTwo);
  } else w.raw(L.empty);
}

/** HrTime as the quoted decimal string of its nanoseconds since the epoch. */
function writeTime(w: JsonWriter, t: readonly [number, number]): void {
  const [sec, ns] = t;
  if (Number.isInteger(sec) && sec > 0 && sec < 1e15 && Number.isInteger(ns) && ns >= 0 && ns < 1e9) {
    w.secondsAndNanos(sec, ns);
  } else {
    w.string((BigInt(Math.trunc(sec)) * 1_000_000_000n + BigInt(Math.trunc(ns))).toString());
  }
}

function resourceJson(resource: Resource): { resource: Uint8Array; tail: Uint8Array } {
  let hit = resources.get(resource);
  if (!hit) {
    const w = new JsonWriter(1024);
    w.text(`{"attributes":`);
    writeAttributes(w, resource.attributes ?? {});
    w.text(`,"droppedAttributesCount":0`);
    const t = new JsonWriter(256);
    if (resource.schemaUrl) {
      t.text(`,"schemaUrl":`);
      t.string(resource.schemaUrl);
    }
    const tail = t.finish();
    w.raw(tail);
    w.char(CLOSE_BRACE);
    hit = { resource: w.finish(), tail };
    resources.set(resource, hit);
  }
  return hit;
}

function scopeJson(scope: InstrumentationScope & { attributes?: Attrs; droppedAttributesCount?: number }): {
  scope: Uint8Array;
  tail: Uint8Array;
} {
  let hit = scopes.get(scope);
  if (!hit) {
    const w = new JsonWriter(256);
    w.text(`{"name":`);
    w.string(scope.name);
    if (scope.version !== undefined) {
      w.text(`,"version":`);
      w.string(scope.version);
    }
    if (scope.attributes && Object.keys(scope.attributes).length > 0) {
      w.text(`,"attributes":`);
      writeAttributes(w, scope.attributes);
      w.text(`,"droppedAttributesCount":`);
      w.number(scope.droppedAttributesCount ?? 0);
    }
    w.char(CLOSE_BRACE);
    const t = new JsonWriter(256);
    if (scope.schemaUrl !== undefined) {
      t.text(`,"schemaUrl":`);
      t.string(scope.schemaUrl);
    }
    hit = { scope: w.finish(), tail: t.finish() };
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

const traceWriter = new JsonWriter();
const logWriter = new JsonWriter();

function request<T extends Item>(
  w: JsonWriter,
  items: readonly T[],
  names: { outer: Uint8Array; inner: Uint8Array; list: Uint8Array },
  writeItem: (w: JsonWriter, item: T) => void,
  scopeKey: ScopeKey,
): Uint8Array {
  w.reset();
  w.raw(names.outer);
  let firstResource = true;
  for (const [resource, byScope] of group(items, scopeKey)) {
    const r = resourceJson(resource);
    if (!firstResource) w.char(COMMA);
    firstResource = false;
    w.raw(L.resource);
    w.raw(r.resource);
    w.raw(names.inner);
    let firstScope = true;
    for (const entries of byScope.values()) {
      const s = scopeJson((entries[0] as T).instrumentationScope);
      if (!firstScope) w.char(COMMA);
      firstScope = false;
      w.raw(L.scope);
      w.raw(s.scope);
      w.raw(names.list);
      for (let i = 0; i < entries.length; i++) {
        if (i) w.char(COMMA);
        writeItem(w, entries[i] as T);
      }
      w.char(CLOSE_BRACKET);
      w.raw(s.tail);
      w.char(CLOSE_BRACE);
    }
    w.char(CLOSE_BRACKET);
    w.raw(r.tail);
    w.char(CLOSE_BRACE);
  }
  w.char(CLOSE_BRACKET);
  w.char(CLOSE_BRACE);
  return w.finish();
}

function writeSpan(w: JsonWriter, span: ReadableSpan): void {
  const ctx = span.spanContext();
  const parent = span.parentSpanContext;
  w.raw(L.traceId);
  w.string(ctx.traceId);
  w.raw(L.spanId);
  w.string(ctx.spanId);
  if (parent?.spanId) {
    w.raw(L.parentSpanId);
    w.string(parent.spanId);
  }
  w.raw(L.name);
  w.string(span.name);
  w.raw(L.kind);
  w.number(span.kind == null ? 0 : span.kind + 1);
  w.raw(L.start);
  writeTime(w, span.startTime);
  w.raw(L.end);
  writeTime(w, span.endTime);
  w.raw(L.attributes);
  writeAttributes(w, span.attributes);
  if (span.droppedAttributesCount !== undefined) {
    w.raw(L.droppedAttributes);
    w.number(span.droppedAttributesCount);
  }
  w.raw(L.events);
  if (span.droppedEventsCount !== undefined) {
    w.raw(L.droppedEvents);
    w.number(span.droppedEventsCount);
  }
  w.raw(L.status);
  w.number(span.status.code);
  if (span.status.message !== undefined) {
    w.raw(L.message);
    w.string(span.status.message);
  }
  w.raw(L.links);
  if (span.droppedLinksCount !== undefined) {
    w.raw(L.droppedLinks);
    w.number(span.droppedLinksCount);
  }
  let flags = (ctx.traceFlags & 0xff) | 0x100;
  if (parent?.isRemote) flags |= 0x200;
  w.raw(L.flags);
  w.number(flags);
  w.char(CLOSE_BRACE);
}

const TRACE_NAMES = {
  outer: literal(`{"resourceSpans":[`),
  inner: literal(`,"scopeSpans":[`),
  list: literal(`,"spans":[`),
};
const LOG_NAMES = {
  outer: literal(`{"resourceLogs":[`),
  inner: literal(`,"scopeLogs":[`),
  list: literal(`,"logRecords":[`),
};

/** One OTLP-JSON ExportTraceServiceRequest, UTF-8 (what JsonTraceSerializer.serializeRequest returns). */
export function tracesJson(spans: readonly ReadableSpan[]): Uint8Array {
  for (const s of spans) {
    if (s.events.length || s.links.length || s.spanContext().traceState) {
      return JsonTraceSerializer.serializeRequest(spans as ReadableSpan[]) ?? new Uint8Array(0);
    }
  }
  return request(traceWriter, spans, TRACE_NAMES, writeSpan, byScopeName);
}

function writeLog(w: JsonWriter, log: ReadableLogRecord): void {
  w.raw(L.time);
  writeTime(w, log.hrTime);
  w.raw(L.observed);
  writeTime(w, log.hrTimeObserved);
  if (log.severityNumber !== undefined) {
    w.raw(L.severityNumber);
    w.number(log.severityNumber);
  }
  if (log.severityText !== undefined) {
    w.raw(L.severityText);
    w.string(log.severityText);
  }
  w.raw(L.body);
  writeAnyValue(w, log.body);
  if (log.eventName !== undefined) {
    w.raw(L.eventName);
    w.string(log.eventName);
  }
  w.raw(L.attributes);
  writeAttributes(w, log.attributes);
  w.raw(L.droppedAttributes);
  w.number(log.droppedAttributesCount);
  const ctx = log.spanContext;
  if (ctx?.traceFlags !== undefined) {
    w.raw(L.flags);
    w.number(ctx.traceFlags);
  }
  if (ctx?.traceId !== undefined) {
    w.raw(L.logTraceId);
    w.string(ctx.traceId);
  }
  if (ctx?.spanId !== undefined) {
    w.raw(L.spanId);
    w.string(ctx.spanId);
  }
  w.char(CLOSE_BRACE);
}

/** One OTLP-JSON ExportLogsServiceRequest, UTF-8 (what JsonLogsSerializer.serializeRequest returns). */
export function logsJson(logs: readonly ReadableLogRecord[]): Uint8Array {
  for (const l of logs) {
    if (typeof l.droppedAttributesCount !== "number")
      return JsonLogsSerializer.serializeRequest(logs as ReadableLogRecord[]) ?? new Uint8Array(0);
  }
  return request(logWriter, logs, LOG_NAMES, writeLog, byScopeObject);
}
