// Pure logic: the queue, batching, concurrency and retry of every sink, with a fake transport.
import { afterEach, describe, expect, it } from "vitest";
import { BatchLoop, type BatchLoopOptions, type SendResult } from "../src/batch-loop.js";

const quiet = { warn() {}, info() {} };

/** A transport whose sends stay open until the test answers them. */
class ManualLoop extends BatchLoop<number> {
  readonly target = "manual";
  readonly open: Array<{ batch: number[]; answer: (r: SendResult) => void }> = [];
  readonly delivered: number[] = [];
  maxOpen = 0;

  constructor(options: BatchLoopOptions) {
    super(quiet, "items", { flushIntervalMs: 60_000, ...options });
  }

  push(items: number[]): void {
    this.enqueue(items);
  }

  protected send(batch: number[]): Promise<SendResult> {
    return new Promise((resolve) => {
      const entry = {
        batch,
        answer: (r: SendResult) => {
          this.open.splice(this.open.indexOf(entry), 1);
          if (r.ok) this.delivered.push(...batch);
          resolve(r);
        },
      };
      this.open.push(entry);
      this.maxOpen = Math.max(this.maxOpen, this.open.length);
    });
  }

  protected async closeTransport(): Promise<void> {}
}

const tick = () => new Promise((r) => setImmediate(r));
const loops: ManualLoop[] = [];
afterEach(async () => {
  for (const l of loops.splice(0)) {
    for (const o of [...l.open]) o.answer({ ok: true });
    await l.shutdown();
  }
});

function loop(options: BatchLoopOptions): ManualLoop {
  const l = new ManualLoop(options);
  loops.push(l);
  return l;
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe("BatchLoop", () => {
  it("keeps up to maxConcurrentExports batches in flight and delivers every item once", async () => {
    const l = loop({ maxBatchSize: 10, maxQueueSize: 1000, maxConcurrentExports: 3 });
    l.push(range(0, 95));
    const flushed = l.flush();
    await tick();
    expect(l.open).toHaveLength(3);
    expect(l.stats().inFlight).toBe(30);
    // answered out of order: the loop starts the next batch as each one finishes
    while (l.open.length) {
      (l.open[l.open.length - 1] as ManualLoop["open"][number]).answer({ ok: true });
      await tick();
      expect(l.open.length).toBeLessThanOrEqual(3);
    }
    await flushed;
    expect(l.maxOpen).toBe(3);
    expect([...l.delivered].sort((a, b) => a - b)).toEqual(range(0, 95));
    expect(l.stats()).toMatchObject({ exported: 95, dropped: 0, queued: 0, inFlight: 0, failedExports: 0 });
  });

  it("one at a time by default", async () => {
    const l = loop({ maxBatchSize: 10, maxQueueSize: 1000 });
    l.push(range(0, 35));
    const flushed = l.flush();
    while (l.delivered.length < 35) {
      await tick();
      expect(l.open.length).toBeLessThanOrEqual(1);
      l.open[0]?.answer({ ok: true });
    }
    await flushed;
    // in order, as a file needs them
    expect(l.delivered).toEqual(range(0, 35));
  });

  it("after a failed batch starts no new one, lets the others finish, and retries what failed", async () => {
    const l = loop({ maxBatchSize: 10, maxQueueSize: 1000, maxConcurrentExports: 3, retryInitialMs: 20 });
    l.push(range(0, 60)); // a full batch is queued: the loop starts on its own
    await tick();
    const [first, second, third] = [...l.open];
    second?.answer({ ok: false, error: new Error("unavailable"), retryable: true });
    await tick();
    // no new batch while the failure stands
    expect(l.open).toHaveLength(2);
    first?.answer({ ok: true });
    third?.answer({ ok: true });
    await tick();
    expect(l.open).toHaveLength(0);
    expect(l.stats()).toMatchObject({ exported: 20, failedExports: 1, queued: 40 });
    // the retry timer resumes: the failed batch and the rest go out, each item once
    for (let i = 0; i < 200 && l.delivered.length < 60; i++) {
      await new Promise((r) => setTimeout(r, 5));
      for (const o of [...l.open]) o.answer({ ok: true });
    }
    await tick(); // the loop's bookkeeping after the last answer
    expect([...l.delivered].sort((a, b) => a - b)).toEqual(range(0, 60));
    expect(l.stats()).toMatchObject({ exported: 60, dropped: 0, queued: 0 });
  });
});
