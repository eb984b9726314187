import { TopModel } from "../top/model.js";
import { renderFrame } from "../top/render.js";
import { type LiveViewOptions, runLiveView } from "./live-view.js";

export interface TopOptions extends LiveViewOptions {
  ports?: number[];
  pids?: number[];
}

/** `kalman top`: a live view of the service map and endpoints with rate, errors and p50/p99. */
export function runTop(opts: TopOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const model = new TopModel();
  return runLiveView(
    {
      name: "top",
      pipeline: {
        tracer: { ports: opts.ports, pids: opts.pids, closeOnSignals: false },
        onRecordsWithServices: (records, serviceOf) => model.add(records, serviceOf),
      },
      frame: ({ pipeline, eventsPerSec, lost }) => {
        const text = renderFrame(model, {
          eventsPerSec,
          lost,
          connections: pipeline.aggregator.stats().connections,
          width: (out as NodeJS.WriteStream).columns ?? 120,
        });
        model.tick();
        return { text };
      },
    },
    opts,
  );
}
