import { TracesModel } from "../traces/model.js";
import { renderTraceDetail, renderTraceList } from "../traces/render.js";
import { type LiveViewOptions, runLiveView } from "./live-view.js";

export interface TracesOptions extends LiveViewOptions {
  ports?: number[];
  pids?: number[];
  /** Show this trace's waterfall (an id or a prefix of one) once it completes, then exit. */
  traceId?: string;
  /** Show the waterfall of the most recent completed trace instead of the list. */
  last?: boolean;
  /** Completed traces kept (default 200) and spans kept per trace (default 256). */
  maxTraces?: number;
  maxSpansPerTrace?: number;
}

/**
 * `kalman traces`: a live list of the most recently completed traces (root span, services crossed,
 * span count, duration, error), or one trace's waterfall. With traceId, it stops once that trace is
 * shown (exit 1 when it never completed).
 */
export async function runTraces(opts: TracesOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const model = new TracesModel({
    maxTraces: opts.maxTraces,
    maxSpansPerTrace: opts.maxSpansPerTrace,
    only: opts.traceId,
  });
  const width = () => (out as NodeJS.WriteStream).columns ?? 160;
  const rows = () => Math.max(5, ((out as NodeJS.WriteStream).rows ?? 24) - 5);
  let lastCompleted = 0;
  let shown = false;
  const code = await runLiveView(
    {
      name: "traces",
      pipeline: {
        tracer: { ports: opts.ports, pids: opts.pids, closeOnSignals: false },
        onSpans: (spans) => model.add(spans, Date.now()),
      },
      started: (pipeline) => {
        const scope = [
          opts.ports ? `ports ${opts.ports.join(",")}` : "",
          opts.pids ? `pids ${opts.pids.join(",")}` : "",
        ].filter(Boolean);
        err.write(
          `kalman traces: ${pipeline.tracer.programIds().length} eBPF programs attached (${scope.join(", ") || "every process"}); ` +
            `${opts.traceId ? `waiting for trace ${opts.traceId}` : "a trace is shown once no span has arrived for 0.5 s"}\n`,
        );
      },
      frame: ({ eventsPerSec, lost, intervalMs, clear, now }) => {
        model.tick(now);
        const completed = model.stats().completed;
        const info = {
          eventsPerSec,
          lost,
          tracesPerSec: ((completed - lastCompleted) * 1000) / intervalMs,
          width: width(),
          rows: clear ? rows() : 20,
        };
        lastCompleted = completed;
        if (opts.traceId !== undefined) {
          shown = model.find(opts.traceId)?.complete === true;
          return { text: renderTraceDetail(model, info, { traceId: opts.traceId }), done: shown };
        }
        return { text: opts.last ? renderTraceDetail(model, info, "last") : renderTraceList(model, info) };
      },
    },
    opts,
  );
  if (code !== 0) return code;
  if (opts.traceId !== undefined && !shown) {
    err.write(`kalman traces: trace ${opts.traceId} was not seen completed\n`);
    return 1;
  }
  return 0;
}
