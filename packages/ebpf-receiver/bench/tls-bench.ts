// pnpm bench:tls — cost of the TLS uprobes on a TLS endpoint: nginx (HTTPS, keep-alive) under wrk,
// without the tracer, with the tracer but TLS capture off, with TLS capture on with the OpenSSL
// probes at the exported functions' entries (as before: single-stepped on Debian's OpenSSL 3), and
// with TLS capture on as shipped (probes where the kernel emulates the instruction), in one run
// (rounds interleaved). Prints throughput, the ratio on/off and the added latency per request.
// First prints what one uprobe / uretprobe hit costs here (native/build/kl_uprobe_cost).
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { selfSignedCert, startNginx } from "@kalman/examples";
import { RecordFlag, RecordType, SocketTracer } from "../src/index.js";

const SECONDS = Number(process.env.KALMAN_BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.KALMAN_BENCH_ROUNDS ?? 2);
const CONNECTIONS = 8;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

interface WrkResult {
  rps: number;
  latencyUs: number;
  /** CPU time of nginx's worker + wrk + this process (the tracer's drain) per request, µs. */
  cpuUs: number;
}

/** The nginx worker (the master's child), whose CPU time is read from /proc. */
let nginxWorker = 0;
const TICK_US = 1e6 / 100; // USER_HZ

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function wrk(url: string): Promise<WrkResult> {
  const ticks0 = nginxWorker ? cpuTicks(nginxWorker) : 0;
  const self0 = process.cpuUsage();
  return new Promise((resolve, reject) => {
    // `times` prints the CPU time of the shell's children (wrk): user and system, as "XmY.YYYs"
    const script = 'wrk "$@" && times';
    const args = ["-c", script, "wrk", "-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, url];
    execFile("bash", args, (err, out) => {
      if (err) return reject(err);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const lat = /Latency\s+([\d.]+)(us|ms|s)/.exec(out);
      const reqs = /(\d+) requests in/.exec(out);
      const times = [...out.matchAll(/(\d+)m([\d.]+)s/g)].slice(-2);
      if (!rps || !lat || !reqs || times.length < 2) return reject(new Error(`cannot read wrk output:\n${out}`));
      const scale = lat[2] === "us" ? 1 : lat[2] === "ms" ? 1e3 : 1e6;
      const wrkUs = times.reduce((sum, t) => sum + (Number(t[1]) * 60 + Number(t[2])) * 1e6, 0);
      const nginxUs = nginxWorker ? (cpuTicks(nginxWorker) - ticks0) * TICK_US : 0;
      const self = process.cpuUsage(self0);
      const cpuUs = (wrkUs + nginxUs + self.user + self.system) / Number(reqs[1]);
      resolve({ rps: Number(rps[1]), latencyUs: Number(lat[1]) * scale, cpuUs });
    });
  });
}

type Mode = "no tracer" | "tracer, TLS off" | "TLS on, at entries" | "tracer, TLS on";

async function measure(mode: Mode, url: string, port: number): Promise<WrkResult & { tlsRecords: number }> {
  if (mode === "no tracer") return { ...(await wrk(url)), tlsRecords: 0 };
  const tracer = SocketTracer.open({
    ports: [port],
    tls: mode === "tracer, TLS off" ? false : { probeAt: mode === "TLS on, at entries" ? "entry" : "cheapest" },
    closeOnSignals: false,
    logger: quiet,
  });
  let tlsRecords = 0;
  const drain = () => {
    for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) {
      const c = b.cursor();
      while (c.next()) if (c.type === RecordType.data && c.flags & RecordFlag.tls) tlsRecords++;
    }
  };
  const timer = setInterval(drain, 5);
  try {
    const r = await wrk(url);
    drain();
    const foreign = foreignTlsPrograms();
    if (foreign)
      console.log(`  (${mode}: ${foreign} TLS uprobe programs of other tracers loaded: their traps count too)`);
    const s = tracer.stats();
    if (s.lostRingFull) console.log(`  (${mode}: ${s.lostRingFull} records lost, ring full)`);
    return { ...r, tlsRecords };
  } finally {
    clearInterval(timer);
    tracer.close();
  }
}

/** TLS uprobe programs loaded by other processes (their breakpoints in libssl cost nginx and wrk too). */
function foreignTlsPrograms(): number {
  const mine = new Set<number>();
  for (const fd of readdirSync("/proc/self/fdinfo")) {
    try {
      const m = /prog_id:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      if (m) mine.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  try {
    const progs = JSON.parse(execFileSync("bpftool", ["prog", "show", "-j"], { encoding: "utf8" })) as Array<{
      id: number;
      name?: string;
    }>;
    return progs.filter((p) => /^ssl_(read|write)/.test(p.name ?? "") && !mine.has(p.id)).length;
  } catch {
    return 0;
  }
}

/** The micro benchmark of one probe hit (a C program probing its own functions). */
function uprobeCost(): void {
  const bin = join(dirname(fileURLToPath(import.meta.url)), "../../../../native/build/kl_uprobe_cost");
  try {
    console.log(execFileSync(bin, ["100000"], { encoding: "utf8" }).trimEnd());
  } catch (e) {
    console.log(`(uprobe micro benchmark not run: ${(e as Error).message.split("\n")[0]})`);
  }
}

async function main(): Promise<void> {
  uprobeCost();
  const dir = mkdtempSync(join(tmpdir(), `kalman-bench-tls-${process.pid}-`));
  const { cert, key } = selfSignedCert(dir);
  writeFileSync(join(dir, "page.html"), "x".repeat(16 * 1024));
  const nginx = await startNginx(
    `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n` +
      `    location = /page.html { root ${dir}; }\n    location / { return 200 "ok\\n"; }\n`,
    undefined,
    { listenSuffix: " ssl" },
  );
  try {
    const children = readFileSync(`/proc/${nginx.pid}/task/${nginx.pid}/children`, "utf8").trim().split(" ");
    nginxWorker = Number(children[0]) || 0;
    // a 3-byte answer (the worst case: TLS work per request is tiny) and a 16 KiB page
    for (const path of ["/bench", "/page.html"]) await endpoint(`https://127.0.0.1:${nginx.port}${path}`, nginx.port);
  } finally {
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function endpoint(url: string, port: number): Promise<void> {
  const modes: Mode[] = ["no tracer", "tracer, TLS off", "TLS on, at entries", "tracer, TLS on"];
  const sums = new Map<Mode, { rps: number; lat: number; tls: number; cpu: number }>(
    modes.map((m) => [m, { rps: 0, lat: 0, tls: 0, cpu: 0 }]),
  );
  console.log(`\n${url} (nginx), wrk -t1 -c${CONNECTIONS} ${SECONDS}s per measurement, ${ROUNDS} rounds interleaved`);
  await wrk(url); // warm up
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of modes) {
      const r = await measure(mode, url, port);
      const s = sums.get(mode) as { rps: number; lat: number; tls: number; cpu: number };
      s.cpu += r.cpuUs;
      s.rps += r.rps;
      s.lat += r.latencyUs;
      s.tls += r.tlsRecords;
      console.log(
        `  round ${round + 1} ${mode.padEnd(18)} ${r.rps.toFixed(0).padStart(7)} req/s  avg latency ${r.latencyUs.toFixed(0)} µs  CPU ${r.cpuUs.toFixed(1)} µs/req  TLS records ${r.tlsRecords}`,
      );
    }
  }
  const avg = (m: Mode) => {
    const s = sums.get(m) as { rps: number; lat: number; tls: number; cpu: number };
    return { rps: s.rps / ROUNDS, lat: s.lat / ROUNDS, tls: s.tls / ROUNDS, cpu: s.cpu / ROUNDS };
  };
  const none = avg("no tracer");
  const off = avg("tracer, TLS off");
  const on = avg("tracer, TLS on");
  const entries = avg("TLS on, at entries");
  console.log("means:");
  for (const m of modes) {
    console.log(
      `  ${m.padEnd(18)} ${avg(m).rps.toFixed(0).padStart(7)} req/s  avg latency ${avg(m).lat.toFixed(0)} µs  CPU ${avg(m).cpu.toFixed(1)} µs/req`,
    );
  }
  console.log(`throughput ratio TLS on / TLS off (uprobes alone): ${(on.rps / off.rps).toFixed(3)}`);
  console.log(`  the same with probes at the entries (before):  ${(entries.rps / off.rps).toFixed(3)}`);
  console.log(`throughput ratio TLS on / no tracer:               ${(on.rps / none.rps).toFixed(3)}`);
  // CPU time per request is steadier than req/s on a shared machine: what the ratio would be if
  // nginx + wrk + the tracer were alone on their cores
  console.log(`CPU-time ratio TLS off / TLS on (per request, nginx + wrk + tracer): ${(off.cpu / on.cpu).toFixed(3)}`);
  console.log(`  the same with probes at the entries (before):               ${(off.cpu / entries.cpu).toFixed(3)}`);
  console.log(
    `added CPU per request: ${(on.cpu - off.cpu).toFixed(1)} µs (at the entries: ${(entries.cpu - off.cpu).toFixed(1)} µs)`,
  );
  console.log(`added latency per request, TLS on vs off: ${(on.lat - off.lat).toFixed(1)} µs (wrk average)`);
  console.log(`added time per request at saturation: ${(1e6 / on.rps - 1e6 / off.rps).toFixed(2)} µs (1/throughput)`);
  console.log(`  the same with probes at the entries (before): ${(1e6 / entries.rps - 1e6 / off.rps).toFixed(2)} µs`);
  console.log(
    `TLS plaintext records per request: ${(on.tls / (on.rps * SECONDS)).toFixed(2)} (request + response, both ends)`,
  );
}

await main();
