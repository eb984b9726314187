export { MonotonicClock } from "./clock.js";
export { type CorrelatorOptions, type CorrelatorStats, SpanCorrelator } from "./correlator.js";
export { newSpanId, newTraceId } from "./ids.js";
export { type LinkIndex, type LinkTarget, LocalLinkIndex, wireKey } from "./link-index.js";
export { containerFromCgroup, ServiceResolver } from "./service.js";
export { recordToSpan, spanAttributes, spanName, spanStatus } from "./spans.js";
export type { HrTime, ServiceIdentity, Span, SpanKind, SpanStatus } from "./types.js";
