import { ReceiverError } from "@kalman/ebpf-receiver";
import { Pipeline, type PipelineOptions } from "../pipeline.js";

/** What the live views (`top`, `traces`) share: where they draw, how often, for how long. */
export interface LiveViewOptions {
  /** Seconds between frames (default 1). */
  intervalS?: number;
  /** Stop after this many frames (default: until Ctrl-C). */
  iterations?: number;
  /** Redraw in place (default when stdout is a terminal). */
  clear?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/** One frame's inputs: the pipeline, kernel events/s since the last frame and lost so far, the frame period. */
export interface FrameContext {
  pipeline: Pipeline;
  eventsPerSec: number;
  lost: number;
  intervalMs: number;
  clear: boolean;
  now: number;
}

export interface LiveView {
  /** Command name, for messages. */
  name: string;
  pipeline: PipelineOptions;
  /** Once the tracer is attached (a startup line). */
  started?(pipeline: Pipeline): void;
  /** The frame's text, and whether the view is done (then the loop ends after drawing it). */
  frame(ctx: FrameContext): { text: string; done?: boolean };
}

/**
 * The live views' loop: attach, pump every 20 ms, draw a frame every interval (in place on a
 * terminal), stop on Ctrl-C / SIGTERM, after `iterations` frames or when the view is done; detach.
 * Returns 2 when the tracer cannot start, else 0.
 */
export async function runLiveView(view: LiveView, opts: LiveViewOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  let pipeline: Pipeline;
  try {
    pipeline = new Pipeline(view.pipeline);
  } catch (e) {
    if (e instanceof ReceiverError) {
      err.write(`kalman ${view.name}: cannot start the eBPF tracer\n${e.message}\n`);
      return 2;
    }
    throw e;
  }
  view.started?.(pipeline);
  let stopping = false;
  const stop = () => {
    stopping = true;
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const intervalMs = (opts.intervalS ?? 1) * 1000;
  const clear = opts.clear ?? (process.stdout.isTTY === true && out === process.stdout);
  let frames = 0;
  let lastEvents = 0;
  let done = false;
  let next = Date.now() + intervalMs;
  try {
    while (!stopping && !done && (opts.iterations === undefined || frames < opts.iterations)) {
      pipeline.pump();
      const now = Date.now();
      if (now >= next) {
        const t = pipeline.tracer.stats();
        const eventsPerSec = ((pipeline.events - lastEvents) * 1000) / intervalMs;
        const lost = t.lostRingFull + t.lostStashFull;
        const f = view.frame({ pipeline, eventsPerSec, lost, intervalMs, clear, now });
        out.write(clear ? `\x1b[H\x1b[2J${f.text}` : `${f.text}\n`);
        done = f.done === true;
        lastEvents = pipeline.events;
        frames++;
        next += intervalMs;
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
