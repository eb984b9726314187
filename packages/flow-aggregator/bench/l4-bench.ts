// pnpm bench:l4 — packets/s through decode + L4 flow table (and + L7) from a pcap replay on one
// core, peak RSS with 100k concurrent flows, and tshark -r on the same file for comparison.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LinkType } from "../src/packets/decode.js";
import { PacketAggregator } from "../src/packets/packet-aggregator.js";
import { readCaptureFile } from "../src/pcap/reader.js";
import { PcapWriter } from "../src/pcap/writer.js";

const FLOWS = Number(process.env.KALMAN_BENCH_FLOWS ?? 100_000);
const ROUNDS = Number(process.env.KALMAN_BENCH_ROUNDS ?? 2);

const REQUEST = Buffer.from("GET /items/12345 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench\r\n\r\n");
const RESPONSE = Buffer.from("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
const FLAGS = { syn: 0x02, synAck: 0x12, ack: 0x10, pshAck: 0x18, finAck: 0x11 };

/** Writes one Ethernet/IPv4/TCP frame into `frame`; returns its length. */
function tcpFrame(
  frame: Buffer,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  flags: number,
  seq: number,
  ack: number,
  payload: Buffer | undefined,
): number {
  const plen = payload?.length ?? 0;
  const total = 40 + plen;
  frame.fill(0, 0, 54);
  frame[12] = 0x08;
  frame[14] = 0x45;
  frame.writeUInt16BE(total, 16);
  frame[22] = 64;
  frame[23] = 6;
  frame.writeUInt32BE(src >>> 0, 26);
  frame.writeUInt32BE(dst >>> 0, 30);
  frame.writeUInt16BE(sport, 34);
  frame.writeUInt16BE(dport, 36);
  frame.writeUInt32BE(seq >>> 0, 38);
  frame.writeUInt32BE(ack >>> 0, 42);
  frame[46] = 0x50;
  frame[47] = flags;
  frame.writeUInt16BE(65535, 48);
  payload?.copy(frame, 54);
  return 14 + total;
}

/** FLOWS concurrent HTTP keep-alive connections, interleaved packet by packet. */
function writeCapture(path: string): number {
  const w = PcapWriter.toFile(path, { linkType: LinkType.ethernet });
  const frame = Buffer.alloc(256);
  const server = 0xc6130001;
  const steps = 3 + ROUNDS * 4 + 3;
  let t = 0;
  for (let step = 0; step < steps; step++) {
    for (let f = 0; f < FLOWS; f++) {
      const client = 0xc6120000 + (f >>> 14);
      const cport = 1024 + (f & 0x3fff);
      const c0 = 1001; // client's first data seq (ISN 1000)
      const s0 = 9001; // server's (ISN 9000)
      const cEnd = c0 + ROUNDS * REQUEST.length;
      const sEnd = s0 + ROUNDS * RESPONSE.length;
      let len: number;
      if (step === 0) len = tcpFrame(frame, client, server, cport, 80, FLAGS.syn, c0 - 1, 0, undefined);
      else if (step === 1) len = tcpFrame(frame, server, client, 80, cport, FLAGS.synAck, s0 - 1, c0, undefined);
      else if (step === 2) len = tcpFrame(frame, client, server, cport, 80, FLAGS.ack, c0, s0, undefined);
      else if (step < steps - 3) {
        const r = Math.floor((step - 3) / 4);
        const req = c0 + r * REQUEST.length;
        const resp = s0 + r * RESPONSE.length;
        const phase = (step - 3) % 4;
        if (phase === 0) len = tcpFrame(frame, client, server, cport, 80, FLAGS.pshAck, req, resp, REQUEST);
        else if (phase === 1)
          len = tcpFrame(frame, server, client, 80, cport, FLAGS.ack, resp, req + REQUEST.length, undefined);
        else if (phase === 2)
          len = tcpFrame(frame, server, client, 80, cport, FLAGS.pshAck, resp, req + REQUEST.length, RESPONSE);
        else
          len = tcpFrame(
            frame,
            client,
            server,
            cport,
            80,
            FLAGS.ack,
            req + REQUEST.length,
            resp + RESPONSE.length,
            undefined,
          );
      } else if (step === steps - 3)
        len = tcpFrame(frame, client, server, cport, 80, FLAGS.finAck, cEnd, sEnd, undefined);
      else if (step === steps - 2)
        len = tcpFrame(frame, server, client, 80, cport, FLAGS.finAck, sEnd, cEnd + 1, undefined);
      else len = tcpFrame(frame, client, server, cport, 80, FLAGS.ack, cEnd + 1, sEnd + 1, undefined);
      t += 700; // ns between packets
      w.write(1_700_000_000 + Math.floor(t / 1e9), t % 1e9, frame.subarray(0, len), len);
    }
  }
  const packets = w.stats().packets;
  w.close();
  return packets;
}

function replay(path: string, l7: boolean) {
  const agg = new PacketAggregator(l7 ? {} : { l7: false });
  let peakFlows = 0;
  let lastTick = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const result = readCaptureFile(path, (frames) => {
    agg.ingest(frames);
    const flows = agg.flows.stats().flows;
    if (flows > peakFlows) peakFlows = flows;
    if (frames.timeNs - lastTick > 1e9) {
      agg.tick(frames.timeNs);
      lastTick = frames.timeNs;
      agg.takeFlowRecords();
      agg.takeRequestRecords();
    }
  });
  agg.flush();
  const flowRecords = agg.takeFlowRecords().length;
  const requests = agg.takeRequestRecords().length;
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  const cpuS = (cpu.user + cpu.system) / 1e6;
  return { packets: result.stats.packets, cpuS, wallMs, peakFlows, flowRecords, requests, stats: agg.stats() };
}

/** tshark on the same file, timed by /usr/bin/time; `args` are extra options (a tap makes it dissect). */
function tsharkTimed(path: string, args: string[]): { wallS: number; cpuS: number; maxRssMb: number } | string {
  try {
    const err = execFileSync(
      "sh",
      ["-c", '/usr/bin/time -f "%e %U %S %M" tshark -n -r "$@" 2>&1 >/dev/null | tail -1', "sh", path, ...args],
      { encoding: "utf8", maxBuffer: 256 << 20 },
    );
    const [wall, user, sys, rss] = err.trim().split(/\s+/).map(Number);
    return { wallS: wall as number, cpuS: (user as number) + (sys as number), maxRssMb: (rss as number) / 1024 };
  } catch (e) {
    return `tshark failed: ${(e as Error).message.split("\n")[0]}`;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(0)} MB`;
}

/** One replay in a child process, so that its peak RSS is its own. */
function replayInChild(path: string, l7: boolean): ReturnType<typeof replay> & { maxRssMb: number } {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--replay", path, l7 ? "l7" : "flows"], {
    encoding: "utf8",
  });
  return JSON.parse(out);
}

if (process.argv[2] === "--replay") {
  const r = replay(process.argv[3] as string, process.argv[4] === "l7");
  process.stdout.write(JSON.stringify({ ...r, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "kalman-bench-l4-"));
try {
  const path = join(dir, "flows.pcap");
  const packets = writeCapture(path);
  console.log(
    `capture: ${packets} packets, ${FLOWS} concurrent HTTP keep-alive flows x ${ROUNDS} requests, ${mb(statSync(path).size)}`,
  );
  let best = Number.POSITIVE_INFINITY;
  for (const l7 of [false, true]) {
    for (let run = 0; run < 2; run++) {
      const r = replayInChild(path, l7);
      if (!l7) best = Math.min(best, r.cpuS);
      console.log(
        `kalman ${l7 ? "decode + flows + L7" : "decode + flows     "} run ${run + 1}: ${(r.packets / r.cpuS / 1e6).toFixed(2)}M packets/s per core ` +
          `(${(r.cpuS * 1e3).toFixed(0)} ms CPU, ${r.wallMs.toFixed(0)} ms wall), peak RSS ${r.maxRssMb.toFixed(0)} MB, ` +
          `peak flows ${r.peakFlows}, ${r.flowRecords} flow records, ${r.requests} requests`,
      );
    }
  }
  for (const [label, args] of [
    ["tshark -r -q (reads, no dissection)", ["-q"]],
    ["tshark -r -q -z conv,tcp (dissects to TCP, conversations)", ["-q", "-z", "conv,tcp"]],
  ] as const) {
    const t = tsharkTimed(path, [...args]);
    if (typeof t === "string") console.log(`${label}: ${t}`);
    else
      console.log(
        `${label}: ${(packets / t.cpuS / 1e6).toFixed(2)}M packets/s per core (${t.cpuS.toFixed(2)} s CPU, RSS ${t.maxRssMb.toFixed(0)} MB); ` +
          `kalman decode + flows is ${(t.cpuS / best).toFixed(2)}x its speed`,
      );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
