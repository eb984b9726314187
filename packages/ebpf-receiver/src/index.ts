export { ReceiverError, type ReceiverStage } from "./errors.js";
export { type DataRecordFields, EventBatchWriter } from "./event-writer.js";
export { Limits as TracerLimits } from "./layout.generated.js";
export { createStderrLogger, type Logger, type LogLevel } from "./logger.js";
export { nativePaths } from "./native.js";
export {
  type CaptureCounters,
  type CaptureHandle,
  listInterfaces,
  PacketCapture,
  type PacketCaptureOptions,
  type PacketCaptureStats,
  type PacketCaptureTarget,
} from "./packet-capture.js";
export { LinkType, PacketBatch, PacketCursor, PacketFlag, PacketType } from "./packets.js";
export {
  checkBtf,
  checkCapturePrivileges,
  checkPrivileges,
  checkTracefs,
  type PreflightCheck,
  receiverPreflight,
  tracefsRoot,
} from "./preflight.js";
export { type ReceiverStats, SocketTracer, type SocketTracerOptions, type TlsOptions } from "./receiver.js";
export {
  AF_INET,
  AF_INET6,
  Direction,
  EventBatch,
  formatAddress,
  IPPROTO_TCP,
  IPPROTO_UDP,
  RecordCursor,
  RecordFlag,
  RecordType,
  SocketRole,
  Syscall,
} from "./records.js";
export type { TlsTarget } from "./tls-targets.js";
