/** Why a flow ended (undefined on a periodic report of a live flow). */
export type FlowCloseType =
  /** FIN from both sides. */
  | "fin"
  | "client_rst"
  | "server_rst"
  /** SYN answered by RST: nothing listens on the port. */
  | "connection_refused"
  /** SYN never answered by SYN-ACK. */
  | "server_syn_miss"
  /** SYN-ACK never acknowledged by the client. */
  | "client_ack_miss"
  /** One side sent FIN, then the flow went idle. */
  | "half_close_timeout"
  /** Idle past the timeout (established TCP, UDP). */
  | "timeout"
  /** Pushed out by newer flows when the table was full. */
  | "evicted"
  /** Reported at shutdown (or end of a replay) while still open. */
  | "flushed";

/** How the client side was decided. */
export type DirectionSource = "handshake" | "ports";

/** Sums of one latency kind over a report interval, in ns. */
export interface LatencySummary {
  sumNs: number;
  count: number;
  maxNs: number;
}

/**
 * One flow log record (DeepFlow's l4_flow_log, in OTel-ish names): a flow at one observation point,
 * covering [reportStartNs, reportEndNs]. Counters are for that interval; `tx` is what the client
 * sent, `rx` what the server sent. Emitted periodically while the flow lives and once at its close.
 */
export interface FlowRecord {
  flowId: number;
  transport: "tcp" | "udp";
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
  directionFrom: DirectionSource;
  /** Observation point: interface name and network namespace (inode or name) where packets were seen. */
  interface: string;
  netns: string;
  vlanId?: number;
  vni?: number;
  flowStartNs: number;
  reportStartNs: number;
  reportEndNs: number;
  /** From the flow's first packet to its last, so far. */
  durationNs: number;
  packetsTx: number;
  packetsRx: number;
  /** Frame bytes on the wire (as tshark's conversation statistics count them). */
  bytesTx: number;
  bytesRx: number;
  /** L4 payload bytes. */
  payloadTx: number;
  payloadRx: number;
  totalPacketsTx: number;
  totalPacketsRx: number;
  totalBytesTx: number;
  totalBytesRx: number;
  newFlow: boolean;
  closed: boolean;
  closeType?: FlowCloseType;
  synCount: number;
  synAckCount: number;
  /** Handshake times as seen at the observation point (set once measured): SYN→SYN-ACK, SYN-ACK→ACK, and their sum. */
  rttServerNs?: number;
  rttClientNs?: number;
  rttNs?: number;
  /** Data → reverse pure ACK. */
  srt: LatencySummary;
  /** Request data → first response data. */
  art: LatencySummary;
  /** Last response data → next request data (client idle time). */
  cit: LatencySummary;
  retransTx: number;
  retransRx: number;
  zeroWindowTx: number;
  zeroWindowRx: number;
  outOfOrderTx: number;
  outOfOrderRx: number;
  /** Sequence gaps: segments the observation point never saw. */
  lostTx: number;
  lostRx: number;
  rstClient: number;
  rstServer: number;
  finClient: number;
  finServer: number;
  /** Establishment failure, when the handshake never completed. */
  establishFailure?: "connection_refused" | "server_syn_miss" | "client_ack_miss";
}

/** Counters of the flow table itself. */
export interface FlowTableStats {
  flows: number;
  flowsCreated: number;
  flowsClosed: number;
  flowsEvicted: number;
  packets: number;
  records: number;
}
