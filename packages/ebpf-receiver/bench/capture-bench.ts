// pnpm bench:capture — packets/s delivered to JS by PacketCapture, CPU of the drain loop and kernel
// drops, for a UDP flood across a veth pair between two namespaces this script creates (and removes).
// Prints figures; asserts nothing.
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PacketCapture } from "../src/index.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "pnpm-workspace.yaml")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
const flood = join(repoRoot(), "native/build/kl_udpflood");
const id = process.pid;
const nsA = `klcapb-a-${id}`;
const nsB = `klcapb-b-${id}`;
const ifA = `kba${id}`.slice(0, 15);
const ifB = `kbb${id}`.slice(0, 15);
const PORT = 9;
const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

function setUp(): void {
  ip("netns", "add", nsA);
  ip("netns", "add", nsB);
  ip("-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB);
  ip("-n", nsA, "addr", "add", "198.18.90.1/24", "dev", ifA);
  ip("-n", nsB, "addr", "add", "198.18.90.2/24", "dev", ifB);
  ip("-n", nsA, "link", "set", ifA, "up");
  ip("-n", nsB, "link", "set", ifB, "up");
  // no ICMP port-unreachable replies competing with the flood
  ip("netns", "exec", nsB, "sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=1000000");
}

function tearDown(): void {
  for (const ns of [nsA, nsB]) {
    try {
      ip("netns", "del", ns);
    } catch {
      // not created
    }
  }
}

async function runFlood(seconds: number, rate: number, payload: number): Promise<{ sent: number; seconds: number }> {
  const child = spawn(
    "ip",
    ["netns", "exec", nsA, flood, "198.18.90.2", String(PORT), String(seconds), String(payload), String(rate)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const m = /sent (\d+) seconds ([\d.]+)/.exec(out);
  if (code !== 0 || !m) throw new Error(`kl_udpflood exited ${code}: ${out}`);
  return { sent: Number(m[1]), seconds: Number(m[2]) };
}

/** Walks a batch the way the L4 decoder would start: a few header fields and the first data bytes. */
interface Sink {
  n: number;
  bytes: number;
  lastNs: number;
  etherTypes: number;
}
const newSink = (): Sink => ({ n: 0, bytes: 0, lastNs: 0, etherTypes: 0 });

function consume(capture: PacketCapture, sink: Sink): number {
  const batch = capture.drain();
  if (!batch) return 0;
  const p = batch.cursor();
  const buf = batch.buffer;
  while (p.next()) {
    sink.n++;
    sink.bytes += p.wireLen;
    sink.lastNs = p.monoNs;
    sink.etherTypes ^= buf[p.dataOffset + 12] ?? 0;
  }
  return batch.count;
}

function open(ringBytes: number): PacketCapture {
  return PacketCapture.open({
    targets: [{ netns: `/var/run/netns/${nsB}`, interfaces: [ifB] }],
    filter: `udp port ${PORT}`,
    snapLen: 128,
    ringBytes,
  });
}

/** Live: drain every intervalMs while the flood runs (what the agent does). */
async function live(seconds: number, rate: number, intervalMs = 10) {
  const capture = open(16 << 20);
  const sink = newSink();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  let finished = false;
  const load = runFlood(seconds, rate, 64).then((r) => {
    finished = true;
    return r;
  });
  while (!finished) {
    while (consume(capture, sink) > 0) {}
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await new Promise((r) => setTimeout(r, 100)); // last block retires after retireMs
  while (consume(capture, sink) > 0) {}
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const s = capture.stats();
  capture.close();
  const sent = await load;
  return {
    pps: sink.n / wall,
    sentPps: sent.sent / sent.seconds,
    sent: sent.sent,
    delivered: s.delivered,
    cpuShare: (used.user + used.system) / 1e6 / wall,
    nsPerPacket: ((used.user + used.system) * 1e3) / Math.max(1, sink.n),
    drops: s.kernelDrops,
    freezes: s.freezeQueue,
    drains: s.drains,
  };
}

/** Capacity: let a large ring fill while JS sleeps, then drain it as fast as JS can. */
async function capacity() {
  const capture = open(256 << 20);
  await runFlood(1, 0, 64);
  await new Promise((r) => setTimeout(r, 100));
  const sink = newSink();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  while (consume(capture, sink) > 0) {}
  const wall = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  const s = capture.stats();
  capture.close();
  return {
    packets: sink.n,
    pps: sink.n / wall,
    nsPerPacket: ((used.user + used.system) * 1e3) / Math.max(1, sink.n),
    drops: s.kernelDrops,
  };
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);
const rows: Array<[string, string]> = [];
const report = (k: string, v: string) => {
  rows.push([k, v]);
  process.stdout.write(`  ${k.padEnd(60)} ${v}\n`);
};

async function main() {
  if (!existsSync(flood)) throw new Error(`${flood} missing: run pnpm build`);
  process.stdout.write(
    "capture benchmark: 64-byte UDP flood over a veth pair, captured in the peer netns, snapLen 128\n" +
      "(2 cores shared by the flood, the kernel and this process)\n\n",
  );
  const onSignal = () => {
    tearDown();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  setUp();
  try {
    const baseline = await runFlood(2, 0, 64);
    const cap = await capacity();
    report("capacity: drain + walk a full ring, packets/s into JS", `${fmt(cap.pps)}/s (${cap.packets} packets)`);
    report("capacity: JS CPU per packet (drain copy + cursor walk)", `${cap.nsPerPacket.toFixed(1)} ns`);

    const max = await live(3, 0);
    report("live, max flood: packets/s delivered to JS", `${fmt(max.pps)}/s`);
    report(
      "live, max flood: sender rate without / with capture",
      `${fmt(baseline.sent / baseline.seconds)}/s / ${fmt(max.sentPps)}/s`,
    );
    report("live, max flood: drain loop CPU (share of one core)", `${(max.cpuShare * 100).toFixed(1)} %`);
    report("live, max flood: drain loop CPU per packet", `${max.nsPerPacket.toFixed(1)} ns`);
    report("live, max flood: kernel drops (ring full) / freezes", `${max.drops} of ${max.sent} sent / ${max.freezes}`);

    const paced = await live(3, 100_000);
    report("paced 100k packets/s: packets/s delivered to JS", `${fmt(paced.pps)}/s`);
    report("paced 100k packets/s: drain loop CPU (share of one core)", `${(paced.cpuShare * 100).toFixed(1)} %`);
    report("paced 100k packets/s: kernel drops", `${paced.drops} of ${paced.sent} sent`);
  } finally {
    tearDown();
  }
  process.stdout.write(`\n${JSON.stringify(Object.fromEntries(rows))}\n`);
}

main().catch((e) => {
  tearDown();
  process.stderr.write(`bench:capture failed: ${(e as Error).stack}\n`);
  process.exit(1);
});
