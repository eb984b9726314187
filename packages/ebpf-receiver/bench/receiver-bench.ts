// pnpm bench:receiver — events/s into JS, the receiver's CPU share, kernel-side loss,
// and the kernel cost per traced syscall. Prints figures; asserts nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SocketTracer } from "../src/index.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pnpm-workspace.yaml")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
const loadgenPath = join(repoRoot(), "native/build/kl_loadgen");

interface Load {
  child: ChildProcess;
  port: number;
  go(): void;
  done: Promise<{ calls: number; seconds: number }>;
}

async function startLoad(mode: "write" | "peek", seconds: number, rate: number, threads: number): Promise<Load> {
  const child = spawn(loadgenPath, [mode, String(seconds), String(rate), String(threads)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  let out = "";
  let onPort: (p: number) => void = () => {};
  const port = new Promise<number>((r) => {
    onPort = r;
  });
  const done = new Promise<{ calls: number; seconds: number }>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const p = /port (\d+)/.exec(out);
      if (p) onPort(Number(p[1]));
      const m = /calls (\d+) seconds ([\d.]+)/.exec(out);
      if (m) resolve({ calls: Number(m[1]), seconds: Number(m[2]) });
    });
    child.on("exit", (code) => (code === 0 ? undefined : reject(new Error(`loadgen exited ${code}`))));
  });
  return { child, port: await port, go: () => child.stdin?.end("go\n"), done };
}

/** Walks every record of a batch the way a consumer would: read a few fields. */
function consume(tracer: SocketTracer, sink: { n: number; bytes: number }): number {
  const batch = tracer.drainOnce();
  if (!batch) return 0;
  const c = batch.cursor();
  while (c.next()) {
    sink.n++;
    sink.bytes += c.type === 1 ? c.bytes : 0;
  }
  return batch.count;
}

function cpuSeconds(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);
const rows: Array<[string, string]> = [];
const report = (k: string, v: string) => {
  rows.push([k, v]);
  process.stdout.write(`  ${k.padEnd(58)} ${v}\n`);
};

async function baseline(mode: "write" | "peek", seconds: number): Promise<number> {
  const load = await startLoad(mode, seconds, 0, 1);
  load.go();
  const r = await load.done;
  return r.calls / r.seconds;
}

/** Live: the receiver drains on its timer while the load runs. */
async function live(mode: "write" | "peek", seconds: number, rate: number, threads: number) {
  const load = await startLoad(mode, seconds, rate, threads);
  const tracer = SocketTracer.open({ ports: [load.port], captureBytes: 64, closeOnSignals: false });
  const sink = { n: 0, bytes: 0 };
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  load.go();
  let finished = false;
  load.done.then(() => {
    finished = true;
  });
  while (!finished) {
    while (consume(tracer, sink) > 0) {}
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 20));
  while (consume(tracer, sink) > 0) {}
  const wall = (performance.now() - t0) / 1000;
  const cpuUsed = cpuSeconds(cpu);
  const s = tracer.stats();
  const r = await load.done;
  tracer.close();
  return {
    eventsPerSec: sink.n / wall,
    cpuShare: cpuUsed / wall,
    lost: s.lostRingFull + s.lostStashFull,
    kernelEvents: s.kernelEvents,
    received: s.received,
    callRate: r.calls / r.seconds,
    nsPerEvent: (cpuUsed * 1e9) / Math.max(1, sink.n),
  };
}

/** Capacity: let the ring fill without draining, then drain it as fast as JS can. */
async function capacity() {
  const load = await startLoad("peek", 1, 0, 2);
  const tracer = SocketTracer.open({
    ports: [load.port],
    captureBytes: 16,
    ringBufferBytes: 512 * 1024 * 1024,
    batchBytes: 8 << 20,
    closeOnSignals: false,
  });
  load.go();
  await load.done;
  const sink = { n: 0, bytes: 0 };
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  while (consume(tracer, sink) > 0) {}
  const wall = (performance.now() - t0) / 1000;
  const used = cpuSeconds(cpu);
  const s = tracer.stats();
  tracer.close();
  return { events: sink.n, eventsPerSec: sink.n / wall, nsPerEvent: (used * 1e9) / sink.n, lost: s.lostRingFull };
}

async function main() {
  if (!existsSync(loadgenPath)) throw new Error(`${loadgenPath} missing: run pnpm build`);
  process.stdout.write("receiver benchmark (2 cores shared by load generator, kernel probes and this process)\n\n");

  const cap = await capacity();
  report("capacity: drain + walk a full ring, events/s into JS", `${fmt(cap.eventsPerSec)}/s (${cap.events} events)`);
  report("capacity: JS CPU per event (drain copy + cursor walk)", `${cap.nsPerEvent.toFixed(1)} ns`);
  report("capacity: % of one core needed for 2M events/s", `${((2e6 * cap.nsPerEvent) / 1e7).toFixed(1)} %`);

  const peekOff = await baseline("peek", 2);
  const peekOn = await live("peek", 3, 0, 1);
  report("live, max load (recv MSG_PEEK, 1 thread): events/s into JS", `${fmt(peekOn.eventsPerSec)}/s`);
  report("live, max load: receiver CPU (share of one core)", `${(peekOn.cpuShare * 100).toFixed(1)} %`);
  report("live, max load: receiver CPU per event", `${peekOn.nsPerEvent.toFixed(1)} ns`);
  report(
    "live, max load: lost in kernel (ring full + stash full)",
    `${peekOn.lost} of ${peekOn.kernelEvents + peekOn.lost}`,
  );
  report(
    "kernel cost per traced syscall (recv, probes on vs off)",
    `${((1 / peekOn.callRate - 1 / peekOff) * 1e9).toFixed(0)} ns (${fmt(peekOff)}/s → ${fmt(peekOn.callRate)}/s)`,
  );

  const writeOff = await baseline("write", 2);
  const writeOn = await live("write", 3, 0, 1);
  report("live, max load (1-byte TCP write): events/s into JS", `${fmt(writeOn.eventsPerSec)}/s`);
  report(
    "kernel cost per traced syscall (write, probes on vs off)",
    `${((1 / writeOn.callRate - 1 / writeOff) * 1e9).toFixed(0)} ns (${fmt(writeOff)}/s → ${fmt(writeOn.callRate)}/s)`,
  );

  const paced = await live("write", 5, 200_000, 1);
  report("paced 200k writes/s for 5 s: events/s into JS (writes + reads)", `${fmt(paced.eventsPerSec)}/s`);
  report("paced 200k writes/s: receiver CPU (share of one core)", `${(paced.cpuShare * 100).toFixed(1)} %`);
  report("paced 200k writes/s: lost in kernel", `${paced.lost}`);
  process.stdout.write(`\n${JSON.stringify(Object.fromEntries(rows))}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench:receiver failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
