import type { RequestRecord } from "@kalman/flow-aggregator";
import type { Span } from "@kalman/span-correlator";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { logsJson, tracesJson } from "./encoding/otlp-json.js";
import { serializeLogs, serializeTraces } from "./encoding/otlp-proto.js";
import { LogRecordConverter } from "./logs/records.js";
import { SpanConverter } from "./spans.js";

/**
 * Converts and encodes spans and request records the way the sinks do (OTLP-JSON and protobuf, spans
 * and logs) and throws the bytes away: V8 compiles the encoders before real traffic depends on them.
 * Uses its own converters (no resource is cached for later); nothing is sent or counted. Returns the
 * bytes encoded.
 */
export function warmUpEncoders(spans: readonly Span[], records: readonly RequestRecord[]): number {
  const converter = new SpanConverter({ hostName: "warm-up", env: {} });
  const logConverter = new LogRecordConverter({ converter, env: {} });
  const readable: ReadableSpan[] = [];
  for (const s of spans) {
    const r = converter.convert(s);
    if (r) readable.push(r);
  }
  const logs = records.map((r) => logConverter.convert(r));
  let bytes = 0;
  for (let i = 0; i < readable.length; i += 512) {
    const batch = readable.slice(i, i + 512);
    bytes += tracesJson(batch).length + serializeTraces(batch).length;
  }
  for (let i = 0; i < logs.length; i += 512) {
    const batch = logs.slice(i, i + 512);
    bytes += logsJson(batch).length + serializeLogs(batch).length;
  }
  return bytes;
}
