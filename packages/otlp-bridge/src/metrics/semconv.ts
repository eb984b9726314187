// Names, units and bucket boundaries of the metrics Kalman produces, after OTel semantic
// conventions (RED) and the Collector's servicegraph connector / Tempo (service graph).

/** Semconv HTTP duration buckets, in seconds (also the semconv advice for RPC and messaging). */
export const HTTP_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
/** Semconv db.client.operation.duration buckets, in seconds. */
export const DB_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];

/** The RED histograms, one per (protocol family, side). */
export const RED_METRICS = {
  httpServer: {
    name: "http.server.request.duration",
    description: "Duration of HTTP server requests.",
  },
  httpClient: {
    name: "http.client.request.duration",
    description: "Duration of HTTP client requests.",
  },
  rpcServer: {
    name: "rpc.server.call.duration",
    description: "Measures the duration of inbound remote procedure calls.",
  },
  rpcClient: {
    name: "rpc.client.call.duration",
    description: "Measures the duration of outbound remote procedure calls.",
  },
  dbClient: {
    name: "db.client.operation.duration",
    description: "Duration of database client operations.",
  },
  messagingClient: {
    name: "messaging.client.operation.duration",
    description: "Duration of messaging operation initiated by a producer or consumer client.",
  },
  dnsLookup: {
    name: "dns.lookup.duration",
    description: "Measures the time taken to perform a DNS lookup.",
  },
} as const;

export type RedMetricKey = keyof typeof RED_METRICS;

/**
 * Service graph metrics, named in OTLP exactly as the Collector's servicegraph connector emits them
 * (scope "traces_service_graph"). After the OTLP -> Prometheus translation (unit "s" -> `_seconds`,
 * monotonic sums keep their `_total`) they are Tempo's metrics-generator names:
 * traces_service_graph_request_total, traces_service_graph_request_failed_total,
 * traces_service_graph_request_server_seconds, traces_service_graph_request_client_seconds.
 */
export const SERVICE_GRAPH_METRICS = {
  scope: "traces_service_graph",
  requestTotal: "traces_service_graph_request_total",
  requestFailedTotal: "traces_service_graph_request_failed_total",
  requestServer: "traces_service_graph_request_server",
  requestClient: "traces_service_graph_request_client",
} as const;

/** connection_type label values (the connector's and Tempo's; "virtual_node" is not used here). */
export type ConnectionType = "" | "database" | "messaging_system";

/** Counter of measurements that went to an overflow series or endpoint bucket. */
export const OVERFLOW_METRIC = "kalman.metrics.overflow";

/** Attributes of an overflow series: the same marker the SDK and the spec use. */
export const OVERFLOW_ATTRIBUTES = Object.freeze({ "otel.metric.overflow": true });

/** HTTP methods semconv knows; any other becomes "_OTHER". */
export const KNOWN_HTTP_METHODS: ReadonlySet<string> = new Set([
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "QUERY",
  "TRACE",
]);
