import type { Span } from "@kalman/span-correlator";

/** The trace with the most spans (ties: the earliest). */
export function largestTrace(spans: Span[]): Span[] {
  const byTrace = new Map<string, Span[]>();
  for (const s of spans) {
    const list = byTrace.get(s.traceId) ?? [];
    list.push(s);
    byTrace.set(s.traceId, list);
  }
  let best: Span[] = [];
  for (const list of byTrace.values()) if (list.length > best.length) best = list;
  return best;
}

/** A terminal waterfall of one trace: the tree by parent id, bars on a shared time axis. */
export function renderWaterfall(trace: Span[], width = 40): string {
  if (!trace.length) return "(no trace)\n";
  // nanoseconds from the earliest second: epoch nanoseconds do not fit a double exactly
  const baseS = Math.min(...trace.map((s) => s.start[0]));
  const ns = (t: [number, number]) => (t[0] - baseS) * 1e9 + t[1];
  const ids = new Set(trace.map((s) => s.spanId));
  const children = new Map<string | undefined, Span[]>();
  for (const s of trace) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : undefined;
    const list = children.get(parent) ?? [];
    list.push(s);
    children.set(parent, list);
  }
  const t0 = Math.min(...trace.map((s) => ns(s.start)));
  const t1 = Math.max(...trace.map((s) => ns(s.end)));
  const span = Math.max(1, t1 - t0);
  let out = `trace ${trace[0]?.traceId}  (${trace.length} spans, ${((t1 - t0) / 1e6).toFixed(2)} ms)\n`;
  const walk = (parent: string | undefined, depth: number) => {
    const list = (children.get(parent) ?? []).sort((a, b) => ns(a.start) - ns(b.start));
    for (const s of list) {
      const from = Math.floor(((ns(s.start) - t0) / span) * width);
      const len = Math.max(1, Math.round((s.durationNs / span) * width));
      const bar = `${" ".repeat(from)}${"█".repeat(Math.min(len, width - from))}`.padEnd(width);
      const who =
        s.kind === "internal" ? `net ${String(s.attributes["network.interface.name"] ?? "")}` : s.service.serviceName;
      const label = `${"  ".repeat(depth)}${s.kind === "server" ? "▶" : s.kind === "client" ? "◀" : "·"} ${who}: ${s.name}`;
      const status = s.status.code === "error" ? ` ERROR ${s.status.message ?? ""}` : "";
      const how = s.linkedBy ? ` (${s.linkedBy})` : "";
      out += `${label.slice(0, 54).padEnd(54)} |${bar}| ${(s.durationNs / 1e6).toFixed(2).padStart(7)} ms${how}${status}\n`;
      walk(s.spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return out;
}
