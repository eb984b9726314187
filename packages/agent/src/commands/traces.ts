import { ReceiverError } from "@kalman/ebpf-receiver";
import { Pipeline } from "../pipeline.js";
import { TracesModel } from "../traces/model.js";
import { renderTraceDetail, renderTraceList } from "../traces/render.js";

export interface TracesOptions {
  ports?: number[];
  pids?: number[];
  /** Seconds between frames (default 1). */
  intervalS?: number;
  /** Stop after this many frames (default: until Ctrl-C; with traceId, until the trace is shown). */
  iterations?: number;
  /** Redraw in place (default when stdout is a terminal). */
  clear?: boolean;
  /** Show this trace's waterfall (an id or a prefix of one) once it completes, then exit. */
  traceId?: string;
  /** Show the waterfall of the most recent completed trace instead of the list. */
  last?: boolean;
  /** Completed traces kept (default 200) and spans kept per trace (default 256). */
  maxTraces?: number;
  maxSpansPerTrace?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/**
 * `kalman traces`: a live list of the most recently completed traces (root span, services crossed,
 * span count, duration, error), or one trace's waterfall.
 */
export async function runTraces(opts: TracesOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const model = new TracesModel({
    maxTraces: opts.maxTraces,
    maxSpansPerTrace: opts.maxSpansPerTrace,
    only: opts.traceId,
  });
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline({
      tracer: { ports: opts.ports, pids: opts.pids, closeOnSignals: false },
      onSpans: (spans) => model.add(spans, Date.now()),
    });
  } catch (e) {
    if (e instanceof ReceiverError) {
      err.write(`kalman traces: cannot start the eBPF tracer\n${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const scope = [
    opts.ports ? `ports ${opts.ports.join(",")}` : "",
    opts.pids ? `pids ${opts.pids.join(",")}` : "",
  ].filter(Boolean);
  err.write(
    `kalman traces: ${pipeline.tracer.programIds().length} eBPF programs attached (${scope.join(", ") || "every process"}); ` +
      `${opts.traceId ? `waiting for trace ${opts.traceId}` : "a trace is shown once no span has arrived for 0.5 s"}\n`,
  );
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const interval = (opts.intervalS ?? 1) * 1000;
  const clear = opts.clear ?? (process.stdout.isTTY === true && out === process.stdout);
  const width = () => (out as NodeJS.WriteStream).columns ?? 160;
  const rows = () => Math.max(5, ((out as NodeJS.WriteStream).rows ?? 24) - 5);
  let frames = 0;
  let lastEvents = 0;
  let lastCompleted = 0;
  let shown = false;
  let next = Date.now() + interval;
  try {
    while (!stopping && !shown && (opts.iterations === undefined || frames < opts.iterations)) {
      pipeline.pump();
      const now = Date.now();
      if (now >= next) {
        model.tick(now);
        const t = pipeline.tracer.stats();
        const completed = model.stats().completed;
        const info = {
          eventsPerSec: ((pipeline.events - lastEvents) * 1000) / interval,
          lost: t.lostRingFull + t.lostStashFull,
          tracesPerSec: ((completed - lastCompleted) * 1000) / interval,
          width: width(),
          rows: clear ? rows() : 20,
        };
        let frame: string;
        if (opts.traceId !== undefined) {
          shown = model.find(opts.traceId)?.complete === true;
          frame = renderTraceDetail(model, info, { traceId: opts.traceId });
        } else if (opts.last) frame = renderTraceDetail(model, info, "last");
        else frame = renderTraceList(model, info);
        out.write(clear ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
        lastEvents = pipeline.events;
        lastCompleted = completed;
        frames++;
        next += interval;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    pipeline.close();
  }
  if (opts.traceId !== undefined && !shown) {
    err.write(`kalman traces: trace ${opts.traceId} was not seen completed\n`);
    return 1;
  }
  return 0;
}
