import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { serializeTraces } from "./encoding/otlp-proto.js";

/** The OTLP protobuf ExportTraceServiceRequest bytes the exporters send for these spans. */
export function encodeTraceRequest(spans: ReadableSpan[]): Uint8Array {
  return serializeTraces(spans);
}
