import type { Row, TopModel } from "./model.js";

export interface FrameInfo {
  eventsPerSec: number;
  lost: number;
  connections: number;
  width: number;
}

function table(title: string, rows: Row[], seconds: number, limit: number, keyWidth: number): string {
  let out = `${title.padEnd(keyWidth)} ${"req/s".padStart(8)} ${"err%".padStart(6)} ${"p50 ms".padStart(9)} ${"p99 ms".padStart(9)}\n`;
  const sorted = rows
    .map((r) => ({ key: r.key, ...r.summary(seconds) }))
    .filter((r) => r.requests > 0)
    .sort((a, b) => b.rate - a.rate || a.key.localeCompare(b.key))
    .slice(0, limit);
  for (const r of sorted) {
    out += `${r.key.slice(0, keyWidth).padEnd(keyWidth)} ${r.rate.toFixed(1).padStart(8)} ${(r.errorRatio * 100).toFixed(1).padStart(6)} ${r.p50Ms.toFixed(2).padStart(9)} ${r.p99Ms.toFixed(2).padStart(9)}\n`;
  }
  if (!sorted.length) out += "(no requests yet)\n";
  return out;
}

/** One screen of `kalman top`: the service map's edges, then the busiest endpoints. Plain text. */
export function renderFrame(model: TopModel, info: FrameInfo): string {
  const keyWidth = Math.max(30, Math.min(70, info.width - 36));
  const s = model.windowSeconds;
  let out = `kalman top — ${new Date().toISOString().slice(11, 19)}  window ${s}s  ${info.eventsPerSec.toFixed(0)} events/s  ${info.connections} connections  lost ${info.lost}\n\n`;
  out += table("SERVICE MAP (client → server)", [...model.edges.values()], s, 20, keyWidth);
  out += "\n";
  out += table("ENDPOINTS (server  protocol operation)", [...model.endpoints.values()], s, 20, keyWidth);
  return out;
}
