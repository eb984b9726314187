// OTLP protobuf requests (ExportTraceServiceRequest, ExportLogsServiceRequest) from ReadableSpans and
// ReadableLogRecords, byte for byte what @opentelemetry/otlp-transformer's ProtobufTraceSerializer and
// ProtobufLogsSerializer write, in one pass into a reused buffer, with attribute keys, resources and
// the scope encoded once. Spans with events, links or a trace state go through the official serializer.
import type { InstrumentationScope } from "@opentelemetry/core";
import { ProtobufLogsSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { ProtoWriter } from "./proto-writer.js";
import { cachedEncoding, type ValueCache } from "./value-cache.js";

const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;
const MAX_CACHED_KEYS = 4096;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/** Per attribute key: its `key` field + the value's tag, and its last string value's KeyValue body. */
interface KeyEntry extends ValueCache {
  prefix: Uint8Array;
}
/** Bounded: past MAX_CACHED_KEYS keys are encoded each time. */
const keyEntries = new Map<string, KeyEntry>();
const resources = new WeakMap<Resource, Uint8Array>();
const scopes = new WeakMap<InstrumentationScope, Uint8Array>();
const scratch = new ProtoWriter(1024);

function keyEntry(key: string): KeyEntry | undefined {
  const hit = keyEntries.get(key);
  if (hit || keyEntries.size >= MAX_CACHED_KEYS) return hit;
  scratch.reset();
  scratch.tag(1, 2);
  scratch.string(key);
  scratch.tag(2, 2);
  const entry: KeyEntry = { prefix: scratch.finish(), value: undefined, bytes: undefined, hits: 0, misses: 0 };
  keyEntries.set(key, entry);
  return entry;
}

/** The KeyValue body of the entry's key = `value`, when it fits a one-byte length. */
function keyValueBody(e: KeyEntry, value: string): Uint8Array | undefined {
  scratch.reset();
  scratch.raw(e.prefix);
  const v = scratch.begin();
  scratch.tag(1, 2);
  scratch.string(value);
  scratch.end(v);
  return scratch.pos > 127 ? undefined : scratch.finish();
}

type Attrs = Record<string, unknown>;

/** Repeated KeyValue in `field`, in the attributes' own key order. */
export function writeAttributes(w: ProtoWriter, attributes: Attrs, field: number): void {
  // Object.keys: the own enumerable keys in the order the transformer's for-in + hasOwnProperty visits them
  const keys = Object.keys(attributes);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const value = attributes[key];
    const e = keyEntry(key);
    w.tag(field, 2);
    if (e && typeof value === "string") {
      const body = cachedEncoding(e, value, keyValueBody);
      if (body) {
        w.uint32(body.length);
        w.raw(body);
        continue;
      }
    }
    const kv = w.begin();
    if (e) w.raw(e.prefix);
    else {
      w.tag(1, 2);
      w.string(key);
      w.tag(2, 2);
    }
    const start = w.begin();
    writeAnyValue(w, value);
    w.end(start);
    w.end(kv);
  }
}

export function writeAnyValue(w: ProtoWriter, value: unknown): void {
  switch (typeof value) {
    case "string":
      w.tag(1, 2);
      w.string(value);
      return;
    case "number":
      if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
        w.tag(3, 0);
        w.int64(value);
      } else {
        w.tag(4, 1);
        w.double(value);
      }
      return;
    case "boolean":
      w.tag(2, 0);
      w.uint32(value ? 1 : 0);
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, 2);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.tag(5, 2);
    const array = w.begin();
    for (const item of value) {
      w.tag(1, 2);
      const v = w.begin();
      writeAnyValue(w, item);
      w.end(v);
    }
    w.end(array);
  } else if (typeof value === "object" && value !== null) {
    w.tag(6, 2);
    const list = w.begin();
    writeAttributes(w, value as Attrs, 1);
    w.end(list);
  }
}

/** The Resource message (field 1 of ResourceSpans / ResourceLogs), encoded once per Resource object. */
function writeResource(w: ProtoWriter, resource: Resource): void {
  let bytes = resources.get(resource);
  if (!bytes) {
    const r = new ProtoWriter(1024);
    r.tag(1, 2);
    const start = r.begin();
    if (resource.attributes) writeAttributes(r, resource.attributes, 1);
    r.tag(2, 0);
    r.uint32(0);
    r.end(start);
    bytes = r.finish();
    resources.set(resource, bytes);
  }
  w.raw(bytes);
}

/** The InstrumentationScope message (field 1 of ScopeSpans / ScopeLogs), encoded once per scope object. */
function writeScope(
  w: ProtoWriter,
  scope: InstrumentationScope & { attributes?: Attrs; droppedAttributesCount?: number },
): void {
  let bytes = scopes.get(scope);
  if (!bytes) {
    const s = new ProtoWriter(256);
    s.tag(1, 2);
    const start = s.begin();
    s.tag(1, 2);
    s.string(scope.name);
    if (scope.version) {
      s.tag(2, 2);
      s.string(scope.version);
    }
    if (scope.attributes) writeAttributes(s, scope.attributes, 3);
    if (scope.droppedAttributesCount) {
      s.tag(4, 0);
      s.uint32(scope.droppedAttributesCount);
    }
    s.end(start);
    bytes = s.finish();
    scopes.set(scope, bytes);
  }
  w.raw(bytes);
}

interface Item {
  resource: Resource;
  instrumentationScope: InstrumentationScope;
}

/** Items grouped by resource, then by scope (object identity), in order of first appearance. */
function group<T extends Item>(items: readonly T[]): Map<Resource, Map<InstrumentationScope, T[]>> {
  const byResource = new Map<Resource, Map<InstrumentationScope, T[]>>();
  let lastResource: Resource | undefined;
  let lastScope: InstrumentationScope | undefined;
  let last: T[] | undefined;
  for (const item of items) {
    if (item.resource === lastResource && item.instrumentationScope === lastScope && last) {
      last.push(item);
      continue;
    }
    let byScope = byResource.get(item.resource);
    if (!byScope) {
      byScope = new Map();
      byResource.set(item.resource, byScope);
    }
    let list = byScope.get(item.instrumentationScope);
    if (!list) {
      list = [];
      byScope.set(item.instrumentationScope, list);
    }
    list.push(item);
    lastResource = item.resource;
    lastScope = item.instrumentationScope;
    last = list;
  }
  return byResource;
}

function writeRequest<T extends Item>(
  w: ProtoWriter,
  items: readonly T[],
  writeItem: (w: ProtoWriter, item: T) => void,
): Uint8Array {
  w.reset();
  for (const [resource, byScope] of group(items)) {
    w.tag(1, 2);
    const rs = w.begin();
    writeResource(w, resource);
    for (const list of byScope.values()) {
      const scope = (list[0] as T).instrumentationScope;
      w.tag(2, 2);
      const ss = w.begin();
      writeScope(w, scope);
      for (const item of list) {
        w.tag(2, 2);
        writeItem(w, item);
      }
      if (scope.schemaUrl) {
        w.tag(3, 2);
        w.string(scope.schemaUrl);
      }
      w.end(ss);
    }
    if (resource.schemaUrl) {
      w.tag(3, 2);
      w.string(resource.schemaUrl);
    }
    w.end(rs);
  }
  return w.finish();
}

const traceWriter = new ProtoWriter();
const logWriter = new ProtoWriter();

function writeSpan(w: ProtoWriter, span: ReadableSpan): void {
  const start = w.begin();
  const ctx = span.spanContext();
  w.tag(1, 2);
  w.hexId(ctx.traceId);
  w.tag(2, 2);
  w.hexId(ctx.spanId);
  const parent = span.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, 2);
    w.hexId(parent.spanId);
  }
  w.tag(5, 2);
  w.string(span.name);
  const kind = span.kind == null ? 0 : span.kind + 1;
  if (kind !== 0) {
    w.tag(6, 0);
    w.uint32(kind);
  }
  w.tag(7, 1);
  w.hrTime(span.startTime[0], span.startTime[1]);
  w.tag(8, 1);
  w.hrTime(span.endTime[0], span.endTime[1]);
  if (span.attributes) writeAttributes(w, span.attributes, 9);
  w.tag(10, 0);
  w.uint32(span.droppedAttributesCount);
  w.tag(12, 0);
  w.uint32(span.droppedEventsCount);
  w.tag(14, 0);
  w.uint32(span.droppedLinksCount);
  w.tag(15, 2);
  const status = w.begin();
  if (span.status.message) {
    w.tag(2, 2);
    w.string(span.status.message);
  }
  w.tag(3, 0);
  w.uint32(span.status.code);
  w.end(status);
  let flags = (ctx.traceFlags & 0xff) | HAS_IS_REMOTE;
  if (parent?.isRemote) flags |= IS_REMOTE;
  w.tag(16, 5);
  w.fixed32(flags);
  w.end(start);
}

/** ExportTraceServiceRequest bytes for these spans (what ProtobufTraceSerializer.serializeRequest returns). */
export function serializeTraces(spans: readonly ReadableSpan[]): Uint8Array {
  for (const s of spans) {
    if (s.events.length || s.links.length || s.spanContext().traceState) {
      return ProtobufTraceSerializer.serializeRequest(spans as ReadableSpan[]) ?? new Uint8Array(0);
    }
  }
  return writeRequest(traceWriter, spans, writeSpan);
}

function writeLogRecord(w: ProtoWriter, log: ReadableLogRecord): void {
  const start = w.begin();
  w.tag(1, 1);
  w.hrTime(log.hrTime[0], log.hrTime[1]);
  if (log.severityNumber !== undefined && log.severityNumber !== 0) {
    w.tag(2, 0);
    w.uint32(log.severityNumber);
  }
  if (log.severityText) {
    w.tag(3, 2);
    w.string(log.severityText);
  }
  if (log.body !== undefined) {
    w.tag(5, 2);
    const body = w.begin();
    writeAnyValue(w, log.body);
    w.end(body);
  }
  if (log.attributes) writeAttributes(w, log.attributes, 6);
  w.tag(7, 0);
  w.uint32(log.droppedAttributesCount);
  const ctx = log.spanContext;
  if (ctx?.traceFlags) {
    w.tag(8, 5);
    w.fixed32(ctx.traceFlags);
  }
  if (ctx?.traceId) {
    w.tag(9, 2);
    w.hexId(ctx.traceId);
  }
  if (ctx?.spanId) {
    w.tag(10, 2);
    w.hexId(ctx.spanId);
  }
  w.tag(11, 1);
  w.hrTime(log.hrTimeObserved[0], log.hrTimeObserved[1]);
  if (log.eventName) {
    w.tag(12, 2);
    w.string(log.eventName);
  }
  w.end(start);
}

/** ExportLogsServiceRequest bytes for these log records (what ProtobufLogsSerializer.serializeRequest returns). */
export function serializeLogs(logs: readonly ReadableLogRecord[]): Uint8Array {
  for (const l of logs) {
    if (!Number.isInteger(l.droppedAttributesCount) || l.droppedAttributesCount < 0) {
      return ProtobufLogsSerializer.serializeRequest(logs as ReadableLogRecord[]) ?? new Uint8Array(0);
    }
  }
  return writeRequest(logWriter, logs, writeLogRecord);
}
