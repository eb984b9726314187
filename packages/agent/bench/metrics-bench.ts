// pnpm bench:metrics — request records through tagging (pid -> service, both ends named by the
// service directory) and metric aggregation (RED histograms + service graph), per core:
// string tags (OpenTelemetry SDK instruments fed attribute objects) vs encoded ids (SmartEncoding),
// side by side in one run, with heap used. Prints figures; asserts nothing.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { L7ProtocolName, RequestRecord } from "@kalman/flow-aggregator";
import { createMetricsPipeline } from "@kalman/otlp-bridge";
import { ServiceResolver } from "@kalman/span-correlator";
import { ServiceDirectory } from "../src/service-directory.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const RECORDS = Number(process.env.BENCH_RECORDS ?? 200_000);
const BATCH = 256;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

/** Connections the records are spread over (each keeps its pid, protocol, side, addresses and ports). */
const CONNECTIONS = 4096;

/**
 * A mixed workload: 12 services (pids), HTTP server and client sides with id paths, redis, postgres,
 * gRPC. Records come from CONNECTIONS connections, as from the aggregator: a connection's records
 * share its pid, comm, protocol, side, address strings, ports and connId; method, path, status and
 * duration vary per request.
 */
function workload(): RequestRecord[] {
  const out: RequestRecord[] = [];
  let seed = 7;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  // one address string per host, as the aggregator hands them out per connection
  const hosts = Array.from({ length: 12 }, (_, i) => `10.1.0.${i + 1}`);
  const comms = Array.from({ length: 12 }, (_, i) => `svc${i}`);
  const domains = Array.from({ length: 12 }, (_, i) => `svc${i}.local:8080`);
  const routes = ["/api/users/", "/api/orders/", "/health", "/api/items/", "/static/app.js", "/api/cart/"];
  const connections = Array.from({ length: CONNECTIONS }, (_, connId) => {
    const s = Math.floor(rnd() * 12);
    const peer = (s + 1 + Math.floor(rnd() * 11)) % 12;
    const kind = rnd();
    let protocol: L7ProtocolName = "http1";
    let serverPort = 8080;
    let observationPoint: "client" | "server" = kind < 0.5 ? "server" : "client";
    if (kind > 0.85) {
      protocol = "redis";
      serverPort = 6379;
      observationPoint = "client";
    } else if (kind > 0.75) {
      protocol = "postgresql";
      serverPort = 5432;
      observationPoint = "client";
    } else if (kind > 0.7) {
      protocol = "grpc";
      serverPort = 9090;
    }
    const serverHost = observationPoint === "server" ? s : peer;
    const clientHost = observationPoint === "server" ? peer : s;
    return {
      connId,
      s,
      protocol,
      serverPort,
      observationPoint,
      serverHost,
      clientAddr: hosts[clientHost] as string,
      clientPort: 40_000 + connId,
      serverAddr: hosts[serverHost] as string,
    };
  });
  for (let i = 0; i < RECORDS; i++) {
    const c = connections[Math.floor(rnd() * CONNECTIONS)] as (typeof connections)[number];
    const protocol = c.protocol;
    let requestType = "POST";
    let endpoint: string | undefined;
    if (protocol === "http1") {
      requestType = rnd() < 0.8 ? "GET" : "POST";
      const base = routes[Math.floor(rnd() * routes.length)] as string;
      endpoint = base.endsWith("/") ? `${base}${Math.floor(rnd() * 5000)}` : base;
    } else if (protocol === "redis") {
      requestType = rnd() < 0.5 ? "GET" : "SET";
      endpoint = requestType;
    } else if (protocol === "postgresql") {
      requestType = "SELECT";
      endpoint = "SELECT orders";
    } else endpoint = "/shop.Cart/AddItem";
    const code =
      protocol === "http1" ? (rnd() < 0.95 ? 200 : rnd() < 0.5 ? 404 : 503) : protocol === "grpc" ? 0 : undefined;
    const durationNs = Math.floor(rnd() * 50e6);
    out.push({
      protocol,
      version: protocol === "http1" ? "1.1" : undefined,
      requestType,
      endpoint,
      resource: endpoint,
      domain: protocol === "http1" ? domains[c.serverHost] : undefined,
      status: code === 404 ? "client_error" : code === 503 ? "server_error" : "ok",
      code,
      startNs: i * 1000,
      endNs: i * 1000 + durationNs,
      durationNs,
      requestBytes: 200,
      responseBytes: 900,
      pid: 100_000 + c.s,
      reqTid: 100_000 + c.s,
      comm: comms[c.s] as string,
      observationPoint: c.observationPoint,
      transport: "tcp",
      clientAddr: c.clientAddr,
      clientPort: c.clientPort,
      serverAddr: c.serverAddr,
      serverPort: c.serverPort,
      connId: c.connId,
      netns: 4026531840,
      cgroupId: 1,
    });
  }
  return out;
}

interface Result {
  label: string;
  recordsPerSec: number;
  cpuNsPerRecord: number;
  heapDuringMB: number;
  retainedMB: number;
  series: number;
}

async function run(label: string, encoding: "ids" | "strings", records: RequestRecord[]): Promise<Result> {
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  // a pid the bench cannot read /proc for: the resolver names it by comm (cached per pid, as in the agent)
  const services = new ServiceResolver();
  const directory = new ServiceDirectory(services);
  // the real pipeline, read by a Prometheus endpoint on loopback (scraped once at the end)
  const metrics = createMetricsPipeline({
    encoding,
    exporter: "none",
    prometheus: { port: 0 },
    env: {},
    logger: { warn() {}, info() {} },
  });
  await metrics.ready;
  // the batches as the pipeline hands them over, made before the clock starts
  const batches: RequestRecord[][] = [];
  for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH));
  const step = (batch: RequestRecord[]) => {
    directory.learn(batch);
    metrics.record(batch, directory.serviceOf);
  };
  // warm up (JIT, dictionary, series)
  for (const batch of batches) step(batch);
  let done = 0;
  let peakHeap = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = Number(t0) + SECONDS * 1e9;
  let now = Number(t0);
  while (now < deadline) {
    for (const batch of batches) step(batch);
    done += records.length;
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    now = Number(process.hrtime.bigint());
  }
  const elapsed = (now - Number(t0)) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  // a scrape resolves the strings (ids path): part of the export, not of the hot path
  const scrape = await (await fetch(metrics.prometheusUrl as string)).text();
  if (!scrape.includes("http_server_request_duration_seconds_bucket"))
    throw new Error("the scrape has no RED histogram");
  gc();
  const retained = process.memoryUsage().heapUsed - heapBefore;
  const series = metrics.stats().series;
  await metrics.shutdown();
  return {
    label,
    recordsPerSec: done / elapsed,
    cpuNsPerRecord: ((cpu.user + cpu.system) * 1000) / done,
    heapDuringMB: (peakHeap - heapBefore) / 1048576,
    retainedMB: retained / 1048576,
    series,
  };
}

async function main(): Promise<void> {
  const records = workload();
  console.log(
    `bench:metrics — ${RECORDS} records over ${CONNECTIONS} connections (HTTP server/client with id paths, redis, postgres, gRPC; 12 services), batches of ${BATCH}, ${SECONDS} s per run, one core`,
  );
  const results: Result[] = [];
  // alternate, twice each, so neither path gets the warmer machine
  const only = process.env.BENCH_ONLY;
  for (const round of [1, 2]) {
    if (only !== "ids") results.push(await run(`strings #${round}`, "strings", records));
    if (only !== "strings") results.push(await run(`ids     #${round}`, "ids", records));
  }
  console.log(
    "path          records/s   cpu ns/record   heap growth while running (MB)   retained after GC (MB)   series",
  );
  for (const r of results)
    console.log(
      `${r.label.padEnd(12)} ${r.recordsPerSec.toFixed(0).padStart(10)} ${r.cpuNsPerRecord.toFixed(0).padStart(15)} ${r.heapDuringMB
        .toFixed(1)
        .padStart(32)} ${r.retainedMB.toFixed(1).padStart(24)} ${String(r.series).padStart(8)}`,
    );
  const best = (p: string) => Math.max(...results.filter((r) => r.label.startsWith(p)).map((r) => r.recordsPerSec));
  const s = best("strings");
  const i = best("ids");
  console.log(
    `encoded ids: ${(i / 1e6).toFixed(2)}M records/s per core (target ≥ 1M), ${(i / s).toFixed(1)}x the string tags' ${(s / 1e3).toFixed(0)}k records/s (target ≥ 3x)`,
  );
}

void main();
