import type { SinkStats } from "./batch-loop.js";

/**
 * The sink of a signal turned off (OTEL_TRACES_EXPORTER=none, OTEL_LOGS_EXPORTER=none): it takes
 * nothing and counts nothing. Callers can check `kind === "none"` and skip producing the items.
 */
export class DisabledSink {
  readonly kind = "none" as const;
  constructor(readonly target: string) {}
  add(_items: readonly unknown[]): void {}
  addFlows(_items: readonly unknown[]): void {}
  async flush(): Promise<void> {}
  async shutdown(): Promise<void> {}
  stats(): SinkStats {
    return { queued: 0, inFlight: 0, exported: 0, dropped: 0, failedExports: 0 };
  }
}

/** True when an OTEL_<SIGNAL>_EXPORTER value turns the signal off ("none", per the OTel SDK spec). */
export function exporterIsNone(value: string | undefined): boolean {
  return value?.trim() === "none";
}
