// Real captures: loopback TCP traffic this test generates (127.0.0.1, a free port) captured by
// tcpdump (µs and ns, lo and any), converted by editcap to pcapng, read by CaptureFileReader and
// compared frame by frame with tshark; frames written by PcapWriter are checked with tshark and capinfos.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describePrivileged, type HostCheck } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PacketAggregator } from "../src/packets/packet-aggregator.js";
import { type CaptureFileReader, readCaptureFile } from "../src/pcap/reader.js";
import { PacketRetention } from "../src/pcap/retention.js";
import { PcapWriter } from "../src/pcap/writer.js";

const execFileP = promisify(execFile);

function toolChecks(): HostCheck[] {
  const tool = (name: string, args: string[]): HostCheck => ({
    ok: spawnSync(name, args, { stdio: "ignore" }).status === 0,
    detail: `${name} is not installed`,
    fix: "run ./scripts/setup (Debian packages tcpdump, tshark, wireshark-common)",
  });
  return [
    {
      ok: process.getuid?.() === 0,
      detail: "tcpdump needs root to capture on lo",
      fix: "run the tests as root (kalman doctor lists what else is missing)",
    },
    tool("tcpdump", ["--version"]),
    tool("tshark", ["--version"]),
    tool("editcap", ["-h"]),
    tool("capinfos", ["-h"]),
  ];
}

/** A tool's stdout (arguments as an array, no shell). */
async function output(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP(cmd, args, { maxBuffer: 64 << 20 });
  return stdout;
}

interface Row {
  time: string;
  len: number;
  capLen: number;
}

/** What tshark sees: one row per frame. */
async function tsharkRows(file: string): Promise<Row[]> {
  const out = await output("tshark", [
    "-r",
    file,
    "-T",
    "fields",
    "-e",
    "frame.time_epoch",
    "-e",
    "frame.len",
    "-e",
    "frame.cap_len",
  ]);
  return out
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => {
      const [time = "", len = "", capLen = ""] = l.split("\t");
      return { time, len: Number(len), capLen: Number(capLen) };
    });
}

/** What our reader sees, in the same shape (time printed to the ns as tshark does). */
function readerRows(file: string, chunkBytes?: number): { rows: Row[]; linkTypes: Set<number>; malformed: number } {
  const rows: Row[] = [];
  const linkTypes = new Set<number>();
  const result = readCaptureFile(
    file,
    (r: CaptureFileReader) => {
      while (r.next()) {
        rows.push({ time: `${r.realSec}.${String(r.realNsec).padStart(9, "0")}`, len: r.wireLen, capLen: r.capLen });
        linkTypes.add(r.linkType);
      }
    },
    { chunkBytes },
  );
  if (!result.ok) throw new Error(result.error);
  return { rows, linkTypes, malformed: result.stats.malformed + result.stats.truncatedBytes };
}

interface Capture {
  name: string;
  iface: string;
  nano: boolean;
  linkType: number;
  child?: ChildProcess;
  stderr: string;
  file: string;
}

describePrivileged("pcap/pcapng files from tcpdump and editcap (tshark and capinfos as reference)", toolChecks, () => {
  let dir = "";
  let server: Server | undefined;
  const captures: Capture[] = [
    { name: "lo-us", iface: "lo", nano: false, linkType: 1, stderr: "", file: "" },
    { name: "lo-ns", iface: "lo", nano: true, linkType: 1, stderr: "", file: "" },
    { name: "any-ns", iface: "any", nano: true, linkType: 276, stderr: "", file: "" },
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `kalman-pcap-e2e-${process.pid}-`));
    // an echo server on a port of its own: the capture filter sees only this test's traffic
    server = createServer((sock) => {
      sock.on("data", (d) => sock.write(d));
      sock.on("end", () => sock.end());
      sock.on("error", () => {});
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;

    for (const c of captures) {
      c.file = join(dir, `${c.name}.pcap`);
      const args = ["-i", c.iface, "-U", "-n", "-w", c.file];
      if (c.nano) args.push("--time-stamp-precision", "nano");
      args.push("tcp", "port", String(port));
      const child = spawn("tcpdump", args, { stdio: ["ignore", "ignore", "pipe"] });
      c.child = child;
      child.stderr?.on("data", (d: Buffer) => {
        c.stderr += d.toString();
      });
      for (let i = 0; !c.stderr.includes("listening on"); i++) {
        if (child.exitCode !== null || i > 100) throw new Error(`tcpdump ${args.join(" ")} did not start: ${c.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    // traffic: connections sending sizes from 1 byte to beyond the loopback MTU, echoed back
    const sizes = [1, 99, 1400, 20_000, 70_000];
    for (let conn = 0; conn < 12; conn++) {
      const sock = createConnection(port, "127.0.0.1");
      await once(sock, "connect");
      for (const n of sizes) {
        const want = n;
        let got = 0;
        const done = new Promise<void>((resolve) => {
          const onData = (d: Buffer) => {
            got += d.length;
            if (got >= want) {
              sock.off("data", onData);
              resolve();
            }
          };
          sock.on("data", onData);
        });
        sock.write(Buffer.alloc(n, conn));
        await done;
      }
      sock.end();
      await once(sock, "close");
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const c of captures) {
      const exited = once(c.child as ChildProcess, "exit");
      c.child?.kill("SIGTERM");
      await exited;
    }
    for (const c of captures) {
      await output("editcap", ["-F", "pcapng", c.file, c.file.replace(/\.pcap$/, ".pcapng")]);
    }
  });

  afterAll(async () => {
    for (const c of captures) {
      if (c.child && c.child.exitCode === null && c.child.signalCode === null) {
        const exited = once(c.child, "exit");
        c.child.kill("SIGTERM");
        await exited;
      }
    }
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const name of ["lo-us", "lo-ns", "any-ns"]) {
    for (const ext of ["pcap", "pcapng"]) {
      it(`${name}.${ext}: same frames as tshark (count, lengths, times to the file's resolution)`, async () => {
        const c = captures.find((x) => x.name === name) as Capture;
        const file = join(dir, `${name}.${ext}`);
        const expected = await tsharkRows(file);
        // tcpdump's own count of what it wrote
        const captured = Number(/(\d+) packets? captured/.exec(c.stderr)?.[1]);
        expect(expected.length).toBe(captured);
        expect(expected.length).toBeGreaterThan(12 * 10);
        expect(expected.some((r) => r.capLen > 30_000)).toBe(true); // big loopback segments
        if (!c.nano) expect(expected.every((r) => r.time.endsWith("000"))).toBe(true);
        const whole = readerRows(file);
        expect(whole.rows).toEqual(expected);
        expect(whole.linkTypes).toEqual(new Set([c.linkType]));
        expect(whole.malformed).toBe(0);
        // small chunks: big frames are stitched across many of them
        expect(readerRows(file, 1000).rows).toEqual(expected);
      });
    }
  }

  it("PcapWriter: tshark and capinfos read back the frames, times, lengths and snaplen", async () => {
    const source = join(dir, "lo-ns.pcap");
    const out = join(dir, "written.pcap");
    const writer = PcapWriter.toFile(out, { linkType: 1, snapLen: 128 });
    const expected: Row[] = [];
    readCaptureFile(source, (r) => {
      while (r.next()) {
        writer.write(r.realSec, r.realNsec, r.buffer.subarray(r.dataOffset, r.dataOffset + r.capLen), r.wireLen);
        expected.push({
          time: `${r.realSec}.${String(r.realNsec).padStart(9, "0")}`,
          len: r.wireLen,
          capLen: Math.min(r.capLen, 128),
        });
      }
    });
    writer.close();
    expect(writer.stats().truncated).toBeGreaterThan(0);
    expect(await tsharkRows(out)).toEqual(expected);
    const info = await output("capinfos", ["-M", "-S", "-c", "-E", "-l", "-a", "-e", out]);
    expect(info).toMatch(/File encapsulation:\s+ether\n/);
    expect(info).toMatch(/Packet size limit:\s+file hdr: 128 bytes\n/);
    expect(info).toContain(`Number of packets:   ${expected.length}\n`);
    expect(info).toContain(`First packet time:   ${expected[0]?.time}\n`);
    expect(info).toContain(`Last packet time:    ${expected.at(-1)?.time}\n`);
    // tshark dissects the cut frames as TCP on the test's port range
    const tcp = await output("tshark", ["-r", out, "-Y", "tcp", "-T", "fields", "-e", "frame.number"]);
    expect(tcp.trim().split("\n").length).toBe(expected.length);
  });

  it("replay through PacketAggregator with per-flow retention: one flow's packets come back as a pcap tshark agrees with", async () => {
    const source = join(dir, "lo-ns.pcapng");
    const retention = new PacketRetention({ maxPacketsPerFlow: 1000, maxBytesPerPacket: 128 });
    const agg = new PacketAggregator({ l7: false, onPacket: (flow, _p, frame) => retention.addFrame(flow.id, frame) });
    const result = readCaptureFile(source, (r) => agg.ingest(r));
    agg.flush();
    const records = agg.takeFlowRecords();
    const flowIds = [...new Set(records.map((r) => r.flowId))];
    expect(flowIds.length).toBe(12);
    expect(retention.stats()).toMatchObject({ flows: 12, packets: result.stats.packets, evictedFlows: 0 });

    const flowId = flowIds[5] as number;
    const clientPort = records.find((r) => r.flowId === flowId)?.clientPort;
    const inSource = await output("tshark", [
      "-r",
      source,
      "-Y",
      `tcp.port == ${clientPort}`,
      "-T",
      "fields",
      "-e",
      "frame.time_epoch",
    ]);
    const out = join(dir, `flow-${flowId}.pcap`);
    const writer = PcapWriter.toFile(out, { linkType: 1, snapLen: 128 });
    expect(retention.writePcap([flowId], writer)).toEqual({
      written: retention.packetCount(flowId),
      skippedLinkType: 0,
    });
    writer.close();
    const written = await output("tshark", [
      "-r",
      out,
      "-Y",
      `tcp.port == ${clientPort}`,
      "-T",
      "fields",
      "-e",
      "frame.time_epoch",
    ]);
    expect(written.trim().split("\n").length).toBeGreaterThan(10);
    expect(written).toBe(inSource);
  });
});
