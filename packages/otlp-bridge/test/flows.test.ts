// Flow logs and L4 metrics from real traffic: loopback TCP captured by tcpdump, run through the packet
// path, exported with the official exporters to OTLP receivers that decode the protobuf.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describePrivileged, waitForStableFile } from "@kalman/examples";
import { type FlowRecord, PacketAggregator, readCaptureFile } from "@kalman/flow-aggregator";
import { MonotonicClock } from "@kalman/span-correlator";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createLogSink, createMetricsPipeline, FlowMetricsRecorder, type Logger } from "../src/index.js";
import { OtlpLogsGrpcReceiver } from "./support/otlp-logs-receiver.js";
import { OtlpMetricsGrpcReceiver } from "./support/otlp-metrics-receiver.js";

const quiet: Logger = { warn() {}, info() {} };

let dir: string;
let flows: FlowRecord[] = [];
let port = 0;
let closedPort = 0;

async function listen(server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as { port: number }).port;
}

/** Loopback traffic to a real server (3 connections, 100 KB each way) and one refused connect, captured by tcpdump. */
describePrivileged(
  "flow logs and L4 metrics",
  () => [
    { ok: process.getuid?.() === 0, detail: "tcpdump captures the test's traffic and needs root", fix: "run as root" },
  ],
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "kalman-flowlogs-"));
      const server = createServer((sock) => {
        sock.on("data", () => {});
        sock.on("end", () => sock.end(Buffer.alloc(100_000, 1)));
      });
      port = await listen(server);
      const spare = createServer();
      closedPort = await listen(spare);
      spare.close();
      const file = join(dir, "lo.pcap");
      const tcpdump: ChildProcess = spawn(
        "tcpdump",
        [
          "-i",
          "lo",
          "-n",
          "-U",
          "--immediate-mode",
          "-s",
          "256",
          "-B",
          "8192",
          "-w",
          file,
          `tcp and (port ${port} or port ${closedPort})`,
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      let stderr = "";
      tcpdump.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      try {
        for (let i = 0; i < 50 && !/listening on/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
        const { connect } = await import("node:net");
        for (let i = 0; i < 3; i++) {
          const c = connect(port, "127.0.0.1");
          c.end(Buffer.alloc(100_000, 2));
          c.resume();
          await once(c, "close");
        }
        const refused = connect(closedPort, "127.0.0.1");
        await once(refused, "error");
        await waitForStableFile(file);
      } finally {
        tcpdump.kill("SIGINT");
        await once(tcpdump, "exit");
        server.close();
      }
      expect(stderr).toMatch(/^0 packets dropped by kernel$/m);
      const agg = new PacketAggregator({
        l7: false,
        flows: { describeObservation: () => ({ interface: "lo", netns: "" }) },
      });
      const read = readCaptureFile(file, (frames) => agg.ingest(frames));
      expect(read.ok).toBe(true);
      agg.flush();
      flows = agg.takeFlowRecords();
    }, 30_000);

    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("the capture holds the expected flows", () => {
      expect(flows.filter((f) => f.serverPort === port)).toHaveLength(3);
      expect(flows.filter((f) => f.serverPort === closedPort)).toHaveLength(1);
    });

    it("flow records arrive as OTLP log records with the flow's fields as attributes", async () => {
      const rx = await OtlpLogsGrpcReceiver.create();
      const clock = new MonotonicClock();
      const sink = createLogSink({
        endpoint: rx.endpoint,
        protocol: "grpc",
        logger: quiet,
        env: {},
        flushIntervalMs: 60_000,
        toHrTime: (ns) => clock.toHrTime(ns),
      });
      try {
        sink.addFlows(flows);
        await sink.flush();
        const logs = await rx.waitForLogs(flows.length);
        expect(sink.stats()).toMatchObject({ exported: flows.length, dropped: 0 });
        const served = logs.filter((l) => l.attributes["server.port"] === port);
        expect(served).toHaveLength(3);
        for (const l of served) {
          const f = flows.find((x) => x.clientPort === l.attributes["client.port"]) as FlowRecord;
          expect(l.body).toMatch(
            new RegExp(`^tcp 127\\.0\\.0\\.1:${f.clientPort} → 127\\.0\\.0\\.1:${port} \\[lo\\] fin `),
          );
          expect(l.attributes).toMatchObject({
            "log.event.name": "kalman.flow",
            "network.transport": "tcp",
            "network.interface.name": "lo",
            "kalman.flow.close_type": "fin",
            "kalman.flow.packets_tx": f.packetsTx,
            "kalman.flow.bytes_rx": f.bytesRx,
            "kalman.tcp.rtt_ns": f.rttNs,
          });
          expect(f.payloadTx).toBe(100_000);
          expect(f.payloadRx).toBe(100_000);
          expect(l.severityText).toBe("INFO");
        }
        const refused = logs.find((l) => l.attributes["server.port"] === closedPort);
        expect(refused?.severityText).toBe("WARN");
        expect(refused?.attributes["kalman.tcp.establish_failure"]).toBe("connection_refused");
        expect(rx.requests[0]?.resources[0]?.attributes["service.name"]).toBe("kalman-network");
      } finally {
        await sink.shutdown();
        await rx.stop();
      }
    });

    it("flow records become kalman.flow.* and kalman.tcp.* metrics", async () => {
      const rx = await OtlpMetricsGrpcReceiver.create();
      const pipeline = createMetricsPipeline({
        endpoint: rx.endpoint,
        protocol: "grpc",
        logger: quiet,
        env: {},
        exportIntervalMillis: 60_000,
      });
      try {
        const recorder = new FlowMetricsRecorder(pipeline.meterProvider);
        recorder.record(flows);
        await pipeline.forceFlush();
        await rx.waitFor((l) => l.some((p) => p.name === "kalman.flow.bytes"), 20_000, "flow metrics");
        const served = { "server.port": port, "network.interface.name": "lo" };
        const sum = (name: string, attrs: Record<string, string | number>) =>
          rx.find(name, attrs).reduce((s, p) => s + (p.value ?? 0), 0);
        const mine = flows.filter((f) => f.serverPort === port);
        expect(sum("kalman.flow.bytes", { ...served, "kalman.flow.direction": "client_to_server" })).toBe(
          mine.reduce((s, f) => s + f.bytesTx, 0),
        );
        expect(sum("kalman.flow.packets", { ...served, "kalman.flow.direction": "server_to_client" })).toBe(
          mine.reduce((s, f) => s + f.packetsRx, 0),
        );
        expect(sum("kalman.flow.closed", { ...served, "kalman.flow.close_type": "fin" })).toBe(3);
        expect(
          sum("kalman.tcp.connection_failures", {
            "server.port": closedPort,
            "kalman.tcp.establish_failure": "connection_refused",
          }),
        ).toBe(1);
        expect(sum("kalman.tcp.resets", { "server.port": closedPort, "kalman.tcp.reset_side": "server" })).toBe(1);
        const rtt = rx.find("kalman.tcp.rtt", served);
        expect(rtt.reduce((s, p) => s + (p.count ?? 0), 0)).toBe(3);
        expect(rtt[0]?.unit).toBe("s");
        expect(recorder.stats()).toEqual({ records: flows.length, overflow: 0 });
      } finally {
        await pipeline.shutdown();
        await rx.stop();
      }
    });
  },
);
