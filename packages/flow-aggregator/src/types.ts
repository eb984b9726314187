/** L7 protocols Kalman parses. */
export type L7ProtocolName = "http1" | "http2" | "grpc" | "dns" | "redis" | "mysql" | "postgresql" | "kafka" | "mqtt";

/** Response status, after OTel semconv: 4xx-style is the client's fault, 5xx-style the server's. */
export type ResponseStatus = "ok" | "client_error" | "server_error" | "timeout" | "unknown";

/** Where the request was seen. */
export type ObservationPoint = "client" | "server" | "network";

export type AttributeValue = string | number | boolean;

/** Timing and position of the chunk a parser is fed; copied into messages that start or end in it. */
export interface ChunkMeta {
  startNs: number;
  endNs: number;
  /** TCP seq of the chunk's first byte (valid when seqValid). */
  tcpSeq: number;
  seqValid: boolean;
  tid: number;
}

/**
 * One protocol message (a request or a response) found by a parser. Parsers fill what the
 * protocol has; the pairing stage joins requests and responses into RequestRecords.
 */
export interface L7Message {
  kind: "request" | "response";
  /**
   * Pairing key: HTTP/2 stream id, Kafka correlation id, DNS transaction id, ...
   * Undefined: responses answer requests in order (HTTP/1, Redis, MySQL, PostgreSQL).
   */
  key?: number;
  /** Protocol actually spoken when a parser refines it (http2 -> grpc). */
  protocol?: L7ProtocolName;
  startNs: number;
  endNs: number;
  /** Message size on the wire in bytes, including parts not captured. */
  bytes: number;
  /** TCP seq of the message's first byte, when known. */
  tcpSeq?: number;
  tid: number;

  // request side
  version?: string;
  /** Method or command: GET, SELECT, PUBLISH, Produce, A? */
  requestType?: string;
  /** Host, database, server name. */
  domain?: string;
  /** Path, query text (redacted), key, topic, query name. */
  resource?: string;
  /** Low-cardinality operation name: route, gRPC method, command, topic. */
  endpoint?: string;
  /** W3C traceparent header, verbatim. */
  traceparent?: string;
  xRequestId?: string;
  /** A request that gets no response by design (MQTT QoS 0 PUBLISH, Kafka acks=0 Produce, ...). */
  oneWay?: boolean;

  // response side
  status?: ResponseStatus;
  /** HTTP status, gRPC status, SQL error code, DNS rcode, ... */
  code?: number;
  exception?: string;
  /** A response that carries no request (server push, MQTT PUBLISH from the broker): kept as such. */
  unsolicited?: boolean;

  /** Protocol-specific extras, with OTel semconv names where they exist. */
  attributes?: Record<string, AttributeValue>;

  /** Trace context a listener (the span correlator) gave this request; filled by the end of the batch. */
  span?: SpanLink;
}

/** How a request's span joins a trace (see span-correlator). */
export type LinkKind = "traceparent" | "tcp_seq" | "thread" | "x_request_id";

/** W3C ids of a request's span, and why it has (or lacks) a parent. */
export interface SpanLink {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  linkedBy?: LinkKind;
  /** Why no parent was set (never guessed): e.g. "ambiguous: 3 requests in flight on thread". */
  unlinkedReason?: string;
}

/** What a listener learns about the connection a message belongs to. */
export interface ConnectionInfo {
  readonly connId: number;
  readonly pid: number;
  readonly comm: string;
  readonly transport: "tcp" | "udp";
  /** The observed process is the client of this connection. */
  readonly weAreClient: boolean;
  readonly localAddr: string;
  readonly localPort: number;
  readonly remoteAddr: string;
  readonly remotePort: number;
  readonly netns: number;
  /** Set when the connection was rebuilt from packets: the interface they were captured on. */
  readonly interfaceName?: string;
}

/** Hooks for request context propagation (span-correlator implements them). */
export interface L7Listener {
  /** A request was parsed (read on a server connection, or written on a client connection). */
  onRequest(conn: ConnectionInfo, request: L7Message): void;
  /** A response was parsed; `request` is the one it answers when known. */
  onResponse(conn: ConnectionInfo, response: L7Message, request: L7Message | undefined): void;
  /** The end of an ingested batch: resolve what waited for the rest of the batch. */
  onBatchEnd(): void;
}

/** One request with its response: DeepFlow's l7_flow_log, in OTel terms. */
export interface RequestRecord {
  protocol: L7ProtocolName;
  version?: string;
  requestType?: string;
  domain?: string;
  resource?: string;
  endpoint?: string;
  status: ResponseStatus;
  code?: number;
  exception?: string;
  startNs: number;
  endNs: number;
  durationNs: number;
  requestBytes: number;
  responseBytes: number;
  traceId?: string;
  spanId?: string;
  xRequestId?: string;
  reqTcpSeq?: number;
  respTcpSeq?: number;
  pid: number;
  /** Thread that read or wrote the request. */
  reqTid: number;
  /** Thread that read or wrote the response. */
  respTid?: number;
  comm: string;
  observationPoint: ObservationPoint;
  /** Interface name when observationPoint is "network". */
  interface?: string;
  transport: "tcp" | "udp";
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
  /** Connection id: the socket id (or flow id on the packet path). */
  connId: number;
  netns: number;
  cgroupId: number;
  tls?: boolean;
  attributes?: Record<string, AttributeValue>;
  /** Trace context from the span correlator, when one listens. */
  span?: SpanLink;
}
