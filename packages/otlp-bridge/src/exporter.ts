import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { OtlpConnection, otlpConcurrency } from "./otlp-connection.js";
import { nonBlank, type OtlpTransportOptions, traceTransport } from "./otlp-exporters.js";
import { type BatchingOptions, BatchingSink, type SendResult } from "./sink.js";

export type OtlpProtocol = "grpc" | "http/protobuf";

export interface OtlpExporterOptions extends BatchingOptions, OtlpTransportOptions {
  /**
   * Transport. Default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL, then
   * inferred from the endpoint's port (4317 -> grpc, anything else -> http/protobuf, as Beyla does).
   */
  protocol?: OtlpProtocol;
}

/**
 * Spans -> OTLP through the official exporters (what @opentelemetry/exporter-trace-otlp-grpc and
 * -proto build, with Kalman's serializer: see otlp-exporters.ts), behind a bounded queue with
 * batching and retry. Up to maxConcurrentExports batches (default 8) are in flight.
 */
export class OtlpSpanExporter extends BatchingSink {
  readonly kind: "otlp-grpc" | "otlp-http";
  readonly target: string;
  readonly protocol: OtlpProtocol;
  private readonly connection: OtlpConnection<ReadableSpan>;

  constructor(options: OtlpExporterOptions = {}) {
    super({ ...options, maxConcurrentExports: otlpConcurrency(options.maxConcurrentExports) });
    this.protocol = resolveProtocol(options, options.env ?? process.env, (msg, fields) =>
      this.logger.warn(msg, fields),
    );
    const t = traceTransport(this.protocol, options);
    this.kind = t.kind;
    this.target = t.target;
    this.connection = new OtlpConnection(this.protocol, t.make);
  }

  protected send(batch: ReadableSpan[]): Promise<SendResult> {
    return this.connection.send(batch);
  }

  protected override async flushTransport(): Promise<void> {
    await this.connection.flush();
  }

  protected async closeTransport(): Promise<void> {
    await this.connection.shutdown();
  }
}

/** The protocol a configuration resolves to (config, then env, then inferred from the endpoint's port). */
export function resolveProtocol(
  options: { protocol?: string; endpoint?: string },
  env: NodeJS.ProcessEnv = process.env,
  warn?: (msg: string, fields?: object) => void,
): OtlpProtocol {
  const raw = (
    options.protocol ??
    nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ??
    nonBlank(env.OTEL_EXPORTER_OTLP_PROTOCOL)
  )?.trim();
  if (raw === "grpc" || raw === "http/protobuf") return raw;
  if (raw !== undefined) {
    warn?.("unsupported OTLP protocol, using http/protobuf", { protocol: raw });
    return "http/protobuf";
  }
  const endpoint =
    options.endpoint ?? nonBlank(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ?? nonBlank(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return endpoint !== undefined && portOf(endpoint) === "4317" ? "grpc" : "http/protobuf";
}

function portOf(endpoint: string): string | undefined {
  const s = endpoint.trim();
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`).port || undefined;
  } catch {
    return undefined;
  }
}

export { httpTracesUrl, traceEndpointFromEnv } from "./otlp-exporters.js";
