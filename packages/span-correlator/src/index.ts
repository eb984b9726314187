export { MonotonicClock } from "./clock.js";
export { type CorrelatorOptions, type CorrelatorStats, SpanCorrelator } from "./correlator.js";
export { newSpanId, newTraceId } from "./ids.js";
export { type LinkIndex, type LinkTarget, LocalLinkIndex, type WireKey, wireKey } from "./link-index.js";
export {
  NETWORK_OBSERVER,
  NetworkPathJoiner,
  type NetworkPathOptions,
  type NetworkPathStats,
} from "./network-path.js";
export {
  containerFromCgroup,
  type Enricher,
  type Enrichment,
  parseResourceAttributes,
  ServiceResolver,
  type ServiceResolverOptions,
} from "./service.js";
export { recordToSpan, spanAttributes, spanName, spanStatus } from "./spans.js";
export type { HrTime, ServiceIdentity, Span, SpanKind, SpanStatus } from "./types.js";
