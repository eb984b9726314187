import { type ExportResult, ExportResultCode } from "@opentelemetry/core";
import { CompressionAlgorithm } from "@opentelemetry/otlp-exporter-base";
import { createEmptyMetadata } from "@opentelemetry/otlp-grpc-exporter-base";
import type { SendResult } from "./batch-loop.js";

/** What the official OTLP exporters (traces, logs) have in common. */
export interface OfficialExporter<T> {
  export(items: T[], done: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/** gRPC status codes the OTLP spec calls retryable. */
const RETRYABLE_GRPC = new Set([1, 4, 8, 10, 11, 14, 15]);
/** HTTP statuses the OTLP spec calls retryable. */
const RETRYABLE_HTTP = new Set([408, 429, 502, 503, 504]);
/** Consecutive retryable gRPC failures after which each retry uses a fresh channel. */
const RECONNECT_AFTER_FAILURES = 3;
/**
 * Batches an OTLP sink has in flight at once. One at a time caps throughput at a batch per round
 * trip: 512 items per 50 ms is about 10k items/s, under a host's request rate.
 */
const OTLP_CONCURRENT_EXPORTS = 8;
/** The most an OTLP sink may be configured to have in flight (the official exporter is told one more). */
export const MAX_CONCURRENT_EXPORTS = 32;

/** maxConcurrentExports of an OTLP sink: the default, and at most MAX_CONCURRENT_EXPORTS. */
export function otlpConcurrency(requested: number | undefined): number {
  return Math.min(MAX_CONCURRENT_EXPORTS, requested ?? OTLP_CONCURRENT_EXPORTS);
}

/**
 * One official exporter seen as a send(batch) → SendResult, with the OTLP retry rules. After a long
 * gRPC outage grpc-js backs off reconnecting for up to 2 minutes; past a few failures each retry gets
 * a fresh channel, so the sink's own backoff decides how soon recovery is noticed.
 */
export class OtlpConnection<T> {
  private exporter: OfficialExporter<T>;
  private consecutiveFailures = 0;

  constructor(
    private readonly protocol: "grpc" | "http/protobuf",
    private readonly make: () => OfficialExporter<T>,
  ) {
    this.exporter = make();
  }

  async send(batch: T[]): Promise<SendResult> {
    if (this.protocol === "grpc" && this.consecutiveFailures >= RECONNECT_AFTER_FAILURES) {
      const old = this.exporter;
      this.exporter = this.make();
      void old.shutdown().catch(() => {});
      // the other batches of this round use the new channel too; this one failing again starts the next
      this.consecutiveFailures = RECONNECT_AFTER_FAILURES - 1;
    }
    const result = await new Promise<SendResult>((resolve) => {
      this.exporter.export(batch, (r) => {
        if (r.code === ExportResultCode.SUCCESS) resolve({ ok: true });
        else {
          const error = r.error ?? new Error("export failed");
          resolve({ ok: false, error, retryable: this.isRetryable(error) });
        }
      });
    });
    this.consecutiveFailures = result.ok || !result.retryable ? 0 : this.consecutiveFailures + 1;
    return result;
  }

  async flush(): Promise<void> {
    await this.exporter.forceFlush?.();
  }

  async shutdown(): Promise<void> {
    await this.exporter.shutdown();
  }

  private isRetryable(error: unknown): boolean {
    const code = (error as { code?: unknown } | null)?.code;
    // no numeric code: a network-level failure (refused, reset, timed out): retry
    if (typeof code !== "number") return true;
    return this.protocol === "grpc" ? RETRYABLE_GRPC.has(code) : RETRYABLE_HTTP.has(code);
  }
}

export function grpcMetadata(headers: Record<string, string>) {
  const metadata = createEmptyMetadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return metadata;
}

export function compressionOf(c: "gzip" | "none" | undefined): CompressionAlgorithm | undefined {
  return c === undefined ? undefined : c === "gzip" ? CompressionAlgorithm.GZIP : CompressionAlgorithm.NONE;
}
