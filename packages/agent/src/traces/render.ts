import { renderWaterfall } from "../waterfall.js";
import type { TraceEntry, TracesModel } from "./model.js";

export interface TracesFrameInfo {
  eventsPerSec: number;
  lost: number;
  /** Traces completed per second since the last frame. */
  tracesPerSec: number;
  width: number;
  /** Rows of the list (default 20). */
  rows?: number;
}

/** "12:34:56.789" (UTC, as `kalman top` prints its clock). */
function clock(baseS: number, sinceBaseNs: number): string {
  return new Date(baseS * 1000 + sinceBaseNs / 1e6).toISOString().slice(11, 23);
}

function header(title: string, model: TracesModel, info: TracesFrameInfo): string {
  const s = model.stats();
  const capped = s.spansNotKept ? `  ${s.spansNotKept} spans over the per-trace cap` : "";
  return `${title} — ${new Date().toISOString().slice(11, 19)}  ${info.tracesPerSec.toFixed(1)} traces/s  ${s.open} open  ${info.eventsPerSec.toFixed(0)} events/s  lost ${info.lost}${capped}\n\n`;
}

/** One list line's fields, for the table and for tests. */
export function traceRow(t: TraceEntry): {
  time: string;
  traceId: string;
  durationMs: number;
  spans: number;
  error: boolean;
  root: string;
  services: string;
} {
  const root = t.root ? `${t.root.service.serviceName}: ${t.root.name}` : "?";
  return {
    time: clock(t.baseS, t.startNs),
    traceId: t.traceId,
    durationMs: (t.endNs - t.startNs) / 1e6,
    spans: t.spanCount,
    error: t.error,
    root,
    services: t.services.join(", "),
  };
}

/** The list of recent traces, newest first: start time, trace id, duration, spans, error, root span, services. */
export function renderTraceList(model: TracesModel, info: TracesFrameInfo): string {
  let out = header("kalman traces", model, info);
  const rootWidth = Math.max(24, Math.min(60, Math.floor((info.width - 78) / 2)));
  out += `${"START".padEnd(12)}  ${"TRACE ID".padEnd(32)} ${"DURATION ms".padStart(11)} ${"SPANS".padStart(5)} ERR  ${"ROOT".padEnd(rootWidth)}  SERVICES\n`;
  const list = model.recent(info.rows ?? 20);
  for (const t of list) {
    const r = traceRow(t);
    out += `${r.time.padEnd(12)}  ${r.traceId.padEnd(32)} ${r.durationMs.toFixed(2).padStart(11)} ${String(r.spans).padStart(5)} ${r.error ? "ERR" : "   "}  ${r.root.slice(0, rootWidth).padEnd(rootWidth)}  ${r.services}\n`;
  }
  if (!list.length) out += "(no completed traces yet)\n";
  return out;
}

/** One trace's waterfall, or what is being waited for. */
export function renderTraceDetail(
  model: TracesModel,
  info: TracesFrameInfo,
  which: { traceId: string } | "last",
): string {
  let out = header(which === "last" ? "kalman traces (last)" : "kalman traces", model, info);
  const found =
    which === "last"
      ? (() => {
          const t = model.recent(1)[0];
          return t ? { trace: t, complete: true } : undefined;
        })()
      : model.find(which.traceId);
  if (!found) {
    out += which === "last" ? "(no completed traces yet)\n" : `waiting for trace ${which.traceId}…\n`;
    return out;
  }
  const t = found.trace;
  const r = traceRow(t);
  out += `${r.time}  ${r.spans} spans across ${r.services || "?"}${r.error ? "  ERROR" : ""}${found.complete ? "" : "  (still arriving)"}\n`;
  out += renderWaterfall(t.spans, Math.max(20, Math.min(60, info.width - 90)));
  if (t.spanCount > t.spans.length) out += `(${t.spanCount - t.spans.length} more spans not kept)\n`;
  return out;
}
