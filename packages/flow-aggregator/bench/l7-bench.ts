// pnpm bench:l7 — requests/s through inference + parsing + pairing on one core, and RSS over 1M requests.
// Replays recorded request/response bytes (fixtures) as socket events on many keep-alive connections.
import { readFileSync } from "node:fs";
import { L7Aggregator } from "../src/aggregator.js";
import type { PayloadView } from "../src/payload.js";

/** A re-pointed fake event: no per-event allocation, like the receiver's cursor. */
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
  pid = 4242;
  tid = 4242;
  localPort = 8080;
  remotePort = 40000;
  netns = 1;
  cgroupId = 1;
  data: Uint8Array = new Uint8Array(0);
  payload(): Uint8Array {
    return this.data;
  }
  localAddr(): string {
    return "127.0.0.1";
  }
  remoteAddr(): string {
    return "127.0.0.1";
  }
  comm(): string {
    return "bench";
  }
}

interface Exchange {
  name: string;
  request: Uint8Array;
  response: Uint8Array;
  port: number;
}

function fixtureExchanges(): Exchange[] {
  const tsv = readFileSync(new URL("../../test/fixtures/http1/nginx-curl.tsv", import.meta.url), "utf8")
    .split("\n")
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => l.split("\t"));
  const chunk = (i: number) => Uint8Array.from(Buffer.from(tsv[i]?.[2] ?? "", "hex"));
  return [{ name: "http1 GET /ok keep-alive", request: chunk(0), response: chunk(1), port: 8080 }];
}

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Redis GET as redis-cli sends it, and its bulk-string reply. */
function redisExchange(): Exchange {
  return {
    name: "redis GET",
    request: ascii("*2\r\n$3\r\nGET\r\n$6\r\nuser:1\r\n"),
    response: ascii("$12\r\ns3cret-value\r\n"),
    port: 6379,
  };
}

/** A PostgreSQL simple query and its answer: RowDescription, DataRow, CommandComplete, ReadyForQuery. */
function postgresExchange(): Exchange {
  const msg = (type: string, body: number[]) => [type.charCodeAt(0), ...u32(body.length + 4), ...body];
  const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const u16 = (n: number) => [(n >>> 8) & 255, n & 255];
  const cstr = (t: string) => [...ascii(t), 0];
  const query = msg("Q", cstr("SELECT price FROM items WHERE id = 42"));
  const column = [...cstr("price"), ...u32(0), ...u16(0), ...u32(1700), ...u16(65535), ...u32(0xffffffff), ...u16(0)];
  const response = [
    ...msg("T", [...u16(1), ...column]),
    ...msg("D", [...u16(1), ...u32(4), ...ascii("63.0")]),
    ...msg("C", cstr("SELECT 1")),
    ...msg(
      "Z",
      [..."I"].map((c) => c.charCodeAt(0)),
    ),
  ];
  return {
    name: "postgresql SELECT",
    request: Uint8Array.from(query),
    response: Uint8Array.from(response),
    port: 5432,
  };
}

function run(exchanges: Exchange[], requests: number, connections: number) {
  const agg = new L7Aggregator();
  const v = new ReplayView();
  const seq = new Uint32Array(connections * 2);
  let ns = 1e9;
  let records = 0;
  const rss: number[] = [];
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < requests; i++) {
    const conn = i % connections;
    const ex = exchanges[conn % exchanges.length] as Exchange;
    v.connId = conn + 1;
    v.localPort = ex.port;
    v.remotePort = 40000 + conn;
    // request in (server side), response out
    v.egress = false;
    v.data = ex.request;
    v.bytes = ex.request.length;
    v.tcpSeq = seq[conn * 2] as number;
    v.startNs = ns;
    v.endNs = ns + 1000;
    agg.ingest(v);
    seq[conn * 2] = (v.tcpSeq + v.bytes) >>> 0;
    v.egress = true;
    v.data = ex.response;
    v.bytes = ex.response.length;
    v.tcpSeq = seq[conn * 2 + 1] as number;
    v.startNs = ns + 20_000;
    v.endNs = ns + 21_000;
    agg.ingest(v);
    seq[conn * 2 + 1] = (v.tcpSeq + v.bytes) >>> 0;
    ns += 50_000;
    if ((i & 1023) === 1023) records += agg.takeRecords().length;
    if (i % (requests / 4) === 0) rss.push(process.memoryUsage().rss);
  }
  records += agg.takeRecords().length;
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu);
  rss.push(process.memoryUsage().rss);
  return { records, wall, cpuS: (c.user + c.system) / 1e6, rss, stats: agg.stats() };
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MB`;
const n = 1_000_000;
const http = fixtureExchanges();
const mix = [...http, redisExchange(), postgresExchange()];
process.stdout.write("l7 benchmark: inference + parsing + pairing + records, one core (this process)\n");
for (const [label, exchanges] of [
  ["http1 keep-alive", http],
  ["redis GET", [redisExchange()]],
  ["postgresql simple query", [postgresExchange()]],
  ["mix http1 + redis + postgresql", mix],
] as const) {
  if (process.env.KALMAN_BENCH_ONLY && !label.startsWith(process.env.KALMAN_BENCH_ONLY)) continue;
  run([...exchanges], 50_000, 100); // warm up the JIT
  const r = run([...exchanges], n, 999);
  process.stdout.write(`\n  ${label}: ${n} requests (2 events each) on 999 keep-alive connections\n`);
  process.stdout.write(
    `    throughput            ${(n / r.cpuS / 1000).toFixed(0)}k requests/s per core (cpu), ${(n / r.wall / 1000).toFixed(0)}k/s wall\n`,
  );
  process.stdout.write(`    CPU per request       ${((r.cpuS / n) * 1e6).toFixed(2)} µs\n`);
  process.stdout.write(`    RSS at 0/25/50/75/100% ${r.rss.map(mb).join(" / ")}\n`);
  process.stdout.write(
    `    records ${r.records}, malformed ${r.stats.malformed}, unknown connections ${r.stats.connectionsUnknown}\n`,
  );
  if (r.records !== n) process.stdout.write(`    WARNING: ${n - r.records} requests produced no record\n`);
}
