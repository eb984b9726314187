import { ReceiverError } from "@kalman/ebpf-receiver";
import { Pipeline } from "../pipeline.js";
import { TopModel } from "../top/model.js";
import { renderFrame } from "../top/render.js";

export interface TopOptions {
  ports?: number[];
  pids?: number[];
  /** Seconds between frames (default 1). */
  intervalS?: number;
  /** Stop after this many frames (default: until Ctrl-C). */
  iterations?: number;
  /** Redraw in place (default when stdout is a terminal). */
  clear?: boolean;
  out?: NodeJS.WritableStream;
}

/** `kalman top`: a live view of the service map and endpoints with rate, errors and p50/p99. */
export async function runTop(opts: TopOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const model = new TopModel();
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline({
      tracer: { ports: opts.ports, pids: opts.pids, closeOnSignals: false },
      onRecordsWithServices: (records, serviceOf) => model.add(records, serviceOf),
    });
  } catch (e) {
    if (e instanceof ReceiverError) {
      process.stderr.write(`kalman top: cannot start the eBPF tracer\n${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const interval = (opts.intervalS ?? 1) * 1000;
  const clear = opts.clear ?? (process.stdout.isTTY === true && out === process.stdout);
  let frames = 0;
  let lastEvents = 0;
  let next = Date.now() + interval;
  try {
    while (!stopping && (opts.iterations === undefined || frames < opts.iterations)) {
      pipeline.pump();
      if (Date.now() >= next) {
        const t = pipeline.tracer.stats();
        const frame = renderFrame(model, {
          eventsPerSec: ((pipeline.events - lastEvents) * 1000) / interval,
          lost: t.lostRingFull + t.lostStashFull,
          connections: pipeline.aggregator.stats().connections,
          width: (out as NodeJS.WriteStream).columns ?? 120,
        });
        out.write(clear ? `\x1b[H\x1b[2J${frame}` : `${frame}\n`);
        lastEvents = pipeline.events;
        model.tick();
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
  return 0;
}
