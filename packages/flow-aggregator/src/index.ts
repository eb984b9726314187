export { L7Aggregator, type L7AggregatorOptions, type L7Stats } from "./aggregator.js";
export { BoundedMap } from "./bounded-map.js";
export { addresses, Flow, FlowTable, type FlowTableOptions, serverByPorts } from "./flows/flow-table.js";
export { formatTimeline, TcpTimeline, type TimelineRow, tcpOptionsText } from "./flows/timeline.js";
export type {
  DirectionSource,
  FlowCloseType,
  FlowRecord,
  FlowTableStats,
  LatencySummary,
} from "./flows/types.js";
export {
  type DecodeCounters,
  DecodedPacket,
  DecodeStatus,
  formatIp,
  LinkType,
  PacketDecoder,
  TcpFlag,
} from "./packets/decode.js";
export { captureObservations } from "./packets/live.js";
export {
  PacketAggregator,
  type PacketAggregatorOptions,
  type PacketAggregatorStats,
} from "./packets/packet-aggregator.js";
export { type PayloadView, SocketPayloadView } from "./payload.js";
export type { FrameCursor } from "./pcap/frame.js";
export {
  CaptureFileReader,
  type CaptureFileResult,
  type CaptureFormat,
  type CaptureReaderOptions,
  type CaptureReaderStats,
  type CaptureStatus,
  MAX_CAPLEN,
  readCaptureFile,
} from "./pcap/reader.js";
export {
  PacketRetention,
  type PacketRetentionOptions,
  type RetainedPacket,
  type RetentionStats,
} from "./pcap/retention.js";
export { PcapWriter, type PcapWriterOptions, type PcapWriterStats } from "./pcap/writer.js";
export { ByteQueue } from "./protocols/bytes.js";
export { dns } from "./protocols/dns/index.js";
export { http1 } from "./protocols/http1/index.js";
export { http2 } from "./protocols/http2/index.js";
export { kafka } from "./protocols/kafka/index.js";
export { mqtt } from "./protocols/mqtt/index.js";
export { mysql } from "./protocols/mysql/index.js";
export {
  Confidence,
  type Detection,
  type Emit,
  type ProtocolParser,
  type ProtocolSession,
  type SessionOptions,
  type SessionStats,
} from "./protocols/parser.js";
export { postgresql } from "./protocols/postgresql/index.js";
export { redis } from "./protocols/redis/index.js";
export { defaultParsers } from "./protocols/registry.js";
export { parseTraceparent, type TraceParent } from "./protocols/traceparent.js";
export type {
  AttributeValue,
  ChunkMeta,
  ConnectionInfo,
  L7Listener,
  L7Message,
  L7ProtocolName,
  LinkKind,
  ObservationPoint,
  RequestRecord,
  ResponseStatus,
  SpanLink,
} from "./types.js";
