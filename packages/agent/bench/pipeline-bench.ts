// pnpm bench:pipeline — (1) records → spans → OTLP protobuf encode, offline, spans/s per core;
// (2) live: the agent's pipeline (eBPF receiver → parsers → correlator → spans → OTLP encode) in this
// process while h2load loads nginx on loopback: agent CPU µs per observed HTTP request;
// (3) live, end to end: a real `kalman run` process (spans, request logs, and
// metrics when exporting over OTLP), its CPU read from /proc/<pid>/stat over the load only.
// Prints figures; asserts nothing. BENCH_ONLY=offline|pipeline|run runs one part.
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNginx } from "@kalman/examples";
import { L7Aggregator, type PayloadView } from "@kalman/flow-aggregator";
import { encodeTraceRequest, SpanConverter } from "@kalman/otlp-bridge";
import { MonotonicClock, recordToSpan, ServiceResolver, type Span, SpanCorrelator } from "@kalman/span-correlator";
import { Pipeline } from "../src/pipeline.js";

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

class ReplayView implements PayloadView {
  connId = 0;
  egress = false;
  role = 2;
  transport: "tcp" | "udp" = "tcp";
  startNs = 0;
  endNs = 0;
  bytes = 0;
  tcpSeq = 0;
  seqValid = true;
  pid = process.pid;
  tid = 1;
  localPort = 8080;
  remotePort = 40000;
  netns = 1;
  cgroupId = 1;
  data = new Uint8Array(0);
  payload() {
    return this.data;
  }
  localAddr() {
    return "127.0.0.1";
  }
  remoteAddr() {
    return "127.0.0.1";
  }
  comm() {
    return "bench";
  }
}

function offline(requests: number) {
  const req = ascii("GET /api/items/42 HTTP/1.1\r\nHost: shop\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n");
  const resp = ascii("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  const correlator = new SpanCorrelator();
  const agg = new L7Aggregator({ listener: correlator });
  const clock = new MonotonicClock();
  const services = new ServiceResolver();
  const converter = new SpanConverter({ hostName: "bench" });
  const v = new ReplayView();
  let encoded = 0;
  let spans = 0;
  let ns = 1e9;
  const batch: Span[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < requests; i++) {
    v.connId = (i % 500) + 1;
    v.tid = (i % 500) + 1;
    v.egress = false;
    v.data = req;
    v.bytes = req.length;
    v.tcpSeq = i * 1000;
    v.startNs = ns;
    v.endNs = ns + 1000;
    agg.ingest(v);
    v.egress = true;
    v.data = resp;
    v.bytes = resp.length;
    v.tcpSeq = i * 1000 + 500;
    v.startNs = ns + 20_000;
    v.endNs = ns + 21_000;
    agg.ingest(v);
    ns += 50_000;
    if ((i & 511) === 511) {
      agg.endBatch();
      for (const r of agg.takeRecords()) {
        const s = recordToSpan(r, clock, services);
        if (s) batch.push(s);
      }
      const readable = [];
      for (const s of batch) {
        const r = converter.convert(s);
        if (r) readable.push(r);
      }
      encoded += encodeTraceRequest(readable).length;
      spans += batch.length;
      batch.length = 0;
    }
  }
  const c = process.cpuUsage(cpu);
  return { spans, cpuS: (c.user + c.system) / 1e6, encoded };
}

/** `rps` requests/s in total from 8 HTTP/1 clients (h2load paces them), for `seconds`. */
async function live(seconds: number, rps: number) {
  const nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
  const converter = new SpanConverter({ hostName: "bench" });
  let records = 0;
  let spans = 0;
  let bytes = 0;
  const pipeline = new Pipeline({
    tracer: { ports: [nginx.port], closeOnSignals: false },
    onRecords: (rs) => {
      records += rs.length;
    },
    onSpans: (ss) => {
      spans += ss.length;
      const readable = [];
      for (const s of ss) {
        const r = converter.convert(s);
        if (r) readable.push(r);
      }
      bytes += encodeTraceRequest(readable).length;
    },
  });
  const timer = setInterval(() => pipeline.pump(), 5);
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let out = "";
  try {
    out = await new Promise<string>((resolve, reject) => {
      // the load runs as a child: the agent's own process is excluded from tracing in the kernel
      execFile("h2load", h2loadArgs(nginx.port, seconds, rps), (e, stdout) => (e ? reject(e) : resolve(stdout)));
    });
    await new Promise((r) => setTimeout(r, 300));
    pipeline.pump();
  } finally {
    clearInterval(timer);
  }
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu);
  const t = pipeline.tracer.stats();
  pipeline.close();
  await nginx.stop();
  const wrkRequests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(out)?.[1] ?? 0);
  return {
    wrkRequests,
    records,
    spans,
    bytes,
    cpuS: (c.user + c.system) / 1e6,
    wall,
    lost: t.lostRingFull + t.lostStashFull,
    events: t.received,
  };
}

const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 4);
/** Seconds of load each `kalman run` round is measured over. */
const RUN_SECONDS = 5;

/** utime + stime of a process, in seconds (USER_HZ = 100). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * h2load's arguments for `rps` requests/s in total (0: as fast as it can, 8 connections). Paced, one
 * connection manages only a few hundred requests/s here (one in flight, timer-driven), so the rate is
 * spread over enough connections for each to stay near 250/s.
 */
function h2loadArgs(port: number, seconds: number, rps: number): string[] {
  if (rps <= 0) return ["--h1", "-c8", "-t1", `-D${seconds}`, `http://127.0.0.1:${port}/`];
  const clients = Math.min(256, Math.max(8, Math.ceil(rps / 250)));
  return ["--h1", `-c${clients}`, "-t1", `--rps=${rps / clients}`, `-D${seconds}`, `http://127.0.0.1:${port}/`];
}

function h2load(port: number, seconds: number, rps: number): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("h2load", h2loadArgs(port, seconds, rps), (e, out) => (e ? reject(e) : resolve(out))),
  );
}

/**
 * A real `kalman run` (default configuration: spans and request logs as OTLP-JSON
 * files; or `otlp`: everything over OTLP/HTTP to a local sink that answers 200) traces nginx under
 * h2load; its CPU is read from /proc over the load (startup, a warm-up load and shutdown left out).
 */
async function liveRun(
  seconds: number,
  rps: number,
  otlp: boolean,
  cli = new URL("../src/cli.js", import.meta.url).pathname,
  env: Record<string, string> = {},
) {
  const nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
  const dir = mkdtempSync(join(tmpdir(), `kalman-bench-${process.pid}-`));
  let received = 0;
  const backend = createServer((req, res) => {
    req.on("data", (d: Buffer) => {
      received += d.length;
    });
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  const backendPort = (backend.address() as { port: number }).port;
  const args = [cli, "run", "--ports", String(nginx.port), "--quiet", "--status-interval", "0"];
  args.push("--duration", String(WARMUP_SECONDS + seconds + 8), "--data-dir", dir);
  // an older build writes its request-record lines by default: into the temporary directory then
  if (process.env.BENCH_COMPARE && cli === process.env.BENCH_COMPARE)
    args.push("--output", join(dir, "requests.jsonl"));
  if (otlp) args.push("--otlp-endpoint", `http://127.0.0.1:${backendPort}`, "--otlp-protocol", "http/protobuf");
  const agent = spawn(
    process.execPath,
    [...(process.env.BENCH_AGENT_NODE_ARGS?.split(" ").filter(Boolean) ?? []), ...args],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } },
  );
  let stderr = "";
  agent.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((r) => agent.on("exit", () => r()));
  try {
    for (let i = 0; i < 100 && !stderr.includes("attached and exporting"); i++)
      await new Promise((r) => setTimeout(r, 100));
    if (!stderr.includes("attached and exporting")) throw new Error(`kalman run did not start:\n${stderr}`);
    const pid = agent.pid as number;
    // the first seconds of load are JIT compilation (V8's compiler threads): measure the steady state after them
    const warm = await h2load(nginx.port, WARMUP_SECONDS, rps);
    await new Promise((r) => setTimeout(r, 1500));
    const cpu0 = cpuSecondsOf(pid);
    const t0 = performance.now();
    const out = await h2load(nginx.port, seconds, rps);
    // the last batches: the sinks flush every second
    await new Promise((r) => setTimeout(r, 1500));
    const cpuS = cpuSecondsOf(pid) - cpu0;
    const wall = (performance.now() - t0) / 1000;
    agent.kill("SIGINT");
    await exited;
    const requests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(out)?.[1] ?? 0);
    const warmupRequests = Number(/requests: \d+ total, \d+ started, (\d+) done/.exec(warm)?.[1] ?? 0);
    const recorded = Number(/stopped\. (\d+) requests recorded/.exec(stderr)?.[1] ?? 0);
    const lost = Number(/kernel lost (\d+)/.exec(stderr)?.[1] ?? 0);
    // dropped by the span and log sinks' queues over the whole run, warm-up included
    const spansDropped = Number(/spans exported \d+, dropped (\d+)/.exec(stderr)?.[1] ?? 0);
    const logsDropped = Number(/logs exported \d+, dropped (\d+)/.exec(stderr)?.[1] ?? 0);
    return { requests, warmupRequests, recorded, lost, spansDropped, logsDropped, cpuS, wall, received };
  } finally {
    if (agent.exitCode === null) {
      agent.kill("SIGKILL");
      await exited;
    }
    backend.close();
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`);
const only = process.env.BENCH_ONLY;
process.stdout.write("pipeline benchmark\n\n");
if (!only || only === "offline") {
  offline(20_000); // warm up
  const o = offline(300_000);
  process.stdout.write(
    `  offline: records → spans → OTLP protobuf     ${fmt(o.spans / o.cpuS)} spans/s per core (${((o.cpuS / o.spans) * 1e6).toFixed(2)} µs per span, ${o.spans} spans, ${(o.encoded / 2 ** 20).toFixed(0)} MiB encoded)\n`,
  );
}
for (const rps of !only || only === "pipeline" ? [5000, 0] : []) {
  const l = await live(5, rps);
  const label = rps ? `${rps / 1000}k req/s` : "saturated";
  process.stdout.write(
    `\n  live (${label}): h2load → nginx, agent traces both sides: ${l.wrkRequests} requests in ${l.wall.toFixed(1)} s, ${l.records} records, ${l.spans} spans, ${l.events} kernel events, ${l.lost} lost\n`,
  );
  process.stdout.write(
    `    agent CPU                              ${((l.cpuS / l.wall) * 100).toFixed(0)}% of one core\n`,
  );
  process.stdout.write(
    `    agent CPU per observed HTTP request    ${((l.cpuS / Math.max(1, l.wrkRequests)) * 1e6).toFixed(2)} µs (${((l.cpuS / Math.max(1, l.records)) * 1e6).toFixed(2)} µs per record; each request is recorded at the client and at nginx)\n`,
  );
}
if (!only || only === "run") {
  // rounds interleaved (this machine is noisy): each configuration's median and range. BENCH_COMPARE=<other
  // checkout's packages/agent/dist/src/cli.js> runs that build too, in the same rounds.
  const rps = Number(process.env.BENCH_RPS ?? 5000);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const other = process.env.BENCH_COMPARE;
  const configs: Array<{ label: string; otlp: boolean; cli?: string; env?: Record<string, string> }> = [
    { label: "default: OTLP-JSON span and log files", otlp: false },
    { label: "OTLP/HTTP: spans, logs, metrics", otlp: true },
    // Beyla's default signals: request logs off
    { label: "OTLP/HTTP: spans, metrics (OTEL_LOGS_EXPORTER=none)", otlp: true, env: { OTEL_LOGS_EXPORTER: "none" } },
  ];
  if (other) configs.push(...configs.map((c) => ({ ...c, label: `${c.label}; ${other}`, cli: other })));
  const runs = configs.map(() => [] as Array<Awaited<ReturnType<typeof liveRun>>>);
  for (let i = 0; i < rounds; i++)
    for (const [k, c] of configs.entries()) runs[k]?.push(await liveRun(RUN_SECONDS, rps, c.otlp, c.cli, c.env));
  for (const [k, c] of configs.entries()) {
    const list = runs[k] ?? [];
    const perRequest = list.map((r) => (r.cpuS / Math.max(1, r.requests)) * 1e6).sort((a, b) => a - b);
    const core = list.map((r) => (r.cpuS / r.wall) * 100).sort((a, b) => a - b);
    const mid = (xs: number[]) => xs[Math.floor(xs.length / 2)] as number;
    const r = list[0] as (typeof list)[number];
    process.stdout.write(
      `\n  kalman run (${c.label}, ${rps / 1000}k req/s asked, ${(r.requests / RUN_SECONDS / 1000).toFixed(1)}k reached, ${rounds} rounds): ${r.requests} requests in ${r.wall.toFixed(1)} s after ${r.warmupRequests} to warm up; kernel lost ${list.reduce((n, x) => n + x.lost, 0)}; sinks dropped ${list.reduce((n, x) => n + x.spansDropped, 0)} spans, ${list.reduce((n, x) => n + x.logsDropped, 0)} logs (warm-up included)\n`,
    );
    process.stdout.write(
      `    agent CPU                              ${mid(core).toFixed(0)}% of one core (${core.map((x) => x.toFixed(0)).join(", ")})\n`,
    );
    process.stdout.write(
      `    agent CPU per observed HTTP request    ${mid(perRequest).toFixed(1)} µs median (${perRequest.map((x) => x.toFixed(1)).join(", ")}); ${(mid(perRequest) / 2).toFixed(1)} µs per record (both ends are traced)\n`,
    );
  }
}
execFileSync("true");
