import { BoundedMap } from "@kalman/flow-aggregator";
import type { Span } from "@kalman/span-correlator";

/** Nanoseconds since baseS: exact (epoch nanoseconds do not fit a double's 53 bits). */
const ns = (t: [number, number], baseS: number) => (t[0] - baseS) * 1e9 + t[1];

/** One trace as `kalman traces` shows it: its spans (capped) and what the list prints. */
export interface TraceEntry {
  traceId: string;
  /** Spans kept for the waterfall (at most maxSpansPerTrace, the first to arrive). */
  spans: Span[];
  /** Every span seen, kept or not. */
  spanCount: number;
  /** Services in the order their first span started (set when the trace completes, or by summarize). */
  services: string[];
  /** The local root: the earliest kept span whose parent is not in the trace (as services). */
  root?: Span;
  /** Service -> start of its first span (ns); at most 32 services. */
  serviceStarts: Map<string, number>;
  /** Epoch second the times below count from (the first span's start). */
  baseS: number;
  /** Start of the earliest span and end of the latest, in ns since baseS. */
  startNs: number;
  endNs: number;
  error: boolean;
  /** When the last span arrived (ms). */
  lastSeenMs: number;
  firstSeenMs: number;
  /** When it moved to the completed ring (ms); undefined while open. */
  completedMs?: number;
}

export interface TracesModelOptions {
  /** Completed traces kept, newest first (default 200). */
  maxTraces?: number;
  /** Spans kept per trace for the waterfall (default 256); the rest are counted only. */
  maxSpansPerTrace?: number;
  /** Traces being assembled at once; past it the oldest is completed early (default 4096). */
  maxOpen?: number;
  /** A trace is complete when no span has arrived for this long (default 500 ms). */
  settleMs?: number;
  /** ...or when it has been open this long (default 30 s). */
  maxOpenMs?: number;
  /** Only this trace (a trace id or a prefix of one, lower-case hex); others are not kept. */
  only?: string;
}

export interface TracesModelStats {
  spans: number;
  open: number;
  completed: number;
  /** Spans counted but not kept (a trace's cap). */
  spansNotKept: number;
  /** Traces completed early because too many were open. */
  closedEarly: number;
  /** Spans of other traces skipped because of `only`. */
  skipped: number;
}

/**
 * The numbers behind `kalman traces`: spans grouped by trace id while they arrive, a trace completed
 * once it has been quiet for settleMs, then kept in a ring of the last maxTraces. Everything is
 * bounded: open traces, completed traces and spans per trace.
 */
export class TracesModel {
  private readonly open: BoundedMap<string, TraceEntry>;
  private readonly ring: Array<TraceEntry | undefined>;
  private head = 0;
  private readonly completedById = new Map<string, TraceEntry>();
  private readonly maxSpans: number;
  private readonly maxOpen: number;
  private readonly settleMs: number;
  private readonly maxOpenMs: number;
  private readonly only: string | undefined;
  private readonly counters = { spans: 0, completed: 0, spansNotKept: 0, closedEarly: 0, skipped: 0 };

  constructor(opts: TracesModelOptions = {}) {
    this.ring = new Array(Math.max(1, opts.maxTraces ?? 200));
    this.maxSpans = Math.max(1, opts.maxSpansPerTrace ?? 256);
    this.maxOpen = Math.max(1, opts.maxOpen ?? 4096);
    // evicted explicitly (opened), so that the oldest trace is completed, not lost
    this.open = new BoundedMap(this.maxOpen + 1);
    this.settleMs = opts.settleMs ?? 500;
    this.maxOpenMs = opts.maxOpenMs ?? 30_000;
    this.only = opts.only?.toLowerCase();
  }

  add(spans: readonly Span[], nowMs: number): void {
    for (const s of spans) {
      if (this.only !== undefined && !s.traceId.startsWith(this.only)) {
        this.counters.skipped++;
        continue;
      }
      this.counters.spans++;
      // a late span of a trace already shown joins it
      const entry =
        this.open.get(s.traceId) ?? this.completedById.get(s.traceId) ?? this.opened(s.traceId, s.start[0], nowMs);
      this.addSpan(entry, s, nowMs);
    }
  }

  /** Completes the traces that have been quiet for settleMs (or open for maxOpenMs). */
  tick(nowMs: number): void {
    for (const [id, t] of this.open) {
      if (nowMs - t.lastSeenMs >= this.settleMs || nowMs - t.firstSeenMs >= this.maxOpenMs) {
        this.open.delete(id);
        this.complete(t, nowMs);
      }
    }
  }

  /** Completed traces, newest first. */
  recent(limit = Number.POSITIVE_INFINITY): TraceEntry[] {
    const out: TraceEntry[] = [];
    const n = this.ring.length;
    for (let i = 1; i <= n && out.length < limit; i++) {
      const t = this.ring[(this.head - i + n) % n];
      if (!t) break;
      out.push(t);
    }
    return out;
  }

  /** A trace by id or id prefix: the newest completed one, else one still open. */
  find(idPrefix: string): { trace: TraceEntry; complete: boolean } | undefined {
    const p = idPrefix.toLowerCase();
    const done = this.completedById.get(p) ?? this.recent().find((t) => t.traceId.startsWith(p));
    if (done) return { trace: summarize(done), complete: true };
    for (const t of this.open.values()) if (t.traceId.startsWith(p)) return { trace: summarize(t), complete: false };
    return undefined;
  }

  stats(): TracesModelStats {
    return { ...this.counters, open: this.open.size };
  }

  private opened(traceId: string, baseS: number, nowMs: number): TraceEntry {
    if (this.open.size >= this.maxOpen) {
      const [id, oldest] = this.open.oldest() as [string, TraceEntry];
      this.open.delete(id);
      this.complete(oldest, nowMs);
      this.counters.closedEarly++;
    }
    const t: TraceEntry = {
      traceId,
      spans: [],
      spanCount: 0,
      services: [],
      serviceStarts: new Map(),
      baseS,
      startNs: Number.POSITIVE_INFINITY,
      endNs: 0,
      error: false,
      lastSeenMs: nowMs,
      firstSeenMs: nowMs,
    };
    this.open.set(traceId, t);
    return t;
  }

  private addSpan(t: TraceEntry, s: Span, nowMs: number): void {
    t.spanCount++;
    t.lastSeenMs = nowMs;
    const start = ns(s.start, t.baseS);
    const end = ns(s.end, t.baseS);
    if (start < t.startNs) t.startNs = start;
    if (end > t.endNs) t.endNs = end;
    if (s.status.code === "error") t.error = true;
    if (t.spans.length < this.maxSpans) t.spans.push(s);
    else this.counters.spansNotKept++;
    const name = s.service.serviceName;
    const first = t.serviceStarts.get(name);
    if (first === undefined ? t.serviceStarts.size < 32 : start < first) t.serviceStarts.set(name, start);
    if (t.completedMs !== undefined) summarize(t); // a late span
  }

  private complete(t: TraceEntry, nowMs: number): void {
    summarize(t);
    t.completedMs = nowMs;
    const old = this.ring[this.head];
    if (old && this.completedById.get(old.traceId) === old) this.completedById.delete(old.traceId);
    this.ring[this.head] = t;
    this.head = (this.head + 1) % this.ring.length;
    this.completedById.set(t.traceId, t);
    this.counters.completed++;
  }
}

/** Sets a trace's root and its services in order (work done once per trace, not per span). */
export function summarize(t: TraceEntry): TraceEntry {
  t.services = [...t.serviceStarts].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const ids = new Set(t.spans.map((x) => x.spanId));
  let root: Span | undefined;
  for (const s of t.spans) {
    if (s.parentSpanId !== undefined && ids.has(s.parentSpanId)) continue;
    if (!root || ns(s.start, t.baseS) < ns(root.start, t.baseS)) root = s;
  }
  t.root = root;
  return t;
}
