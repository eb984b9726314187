// pnpm bench:pipeline — (1) records → spans → OTLP protobuf encode, offline, spans/s per core;
// (2) live: the whole agent (eBPF receiver → parsers → correlator → spans → OTLP encode) while wrk
// loads nginx on loopback: agent CPU µs per observed HTTP request. Prints figures; asserts nothing.
import { execFileSync } from "node:child_process";
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
      const args =
        rps > 0
          ? ["--h1", "-c8", "-t1", `--rps=${rps / 8}`, `-D${seconds}`, `http://127.0.0.1:${nginx.port}/`]
          : ["--h1", "-c8", "-t1", `-D${seconds}`, `http://127.0.0.1:${nginx.port}/`];
      import("node:child_process").then(({ execFile }) =>
        execFile("h2load", args, (e, stdout) => (e ? reject(e) : resolve(stdout))),
      );
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

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`);
process.stdout.write("pipeline benchmark\n\n");
offline(20_000); // warm up
const o = offline(300_000);
process.stdout.write(
  `  offline: records → spans → OTLP protobuf     ${fmt(o.spans / o.cpuS)} spans/s per core (${((o.cpuS / o.spans) * 1e6).toFixed(2)} µs per span, ${o.spans} spans, ${(o.encoded / 2 ** 20).toFixed(0)} MiB encoded)\n`,
);
for (const rps of [5000, 0]) {
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
execFileSync("true");
