// The packet path end to end: live AF_PACKET capture in namespaces the test builds (veth, bridge,
// VXLAN), real TCP traffic (with iptables-induced loss, refused connections, a stalled reader),
// checked against tshark's analysis of a tcpdump capture of the same traffic on the same interface.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkCapturePrivileges } from "@kalman/ebpf-receiver";
import { createNetLab, describePrivileged, examplesDir, type NetLab } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type FlowRecord, PacketAggregator, readCaptureFile } from "../src/index.js";
import { observePackets } from "./support/live-packets.js";

const PEER = join(examplesDir, "l4", "tcp_peer.py");
const SINK_PORT = 7101;
const STALL_PORT = 7102;
const HTTP_PORT = 7103;
const CLOSED_PORT = 7109;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "kalman-l4-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** tshark fields of every TCP packet of a capture, one array per packet. */
function tshark(file: string, fields: string[], filter = "tcp"): string[][] {
  const out = execFileSync("tshark", ["-r", file, "-Y", filter, "-T", "fields", ...fields.flatMap((f) => ["-e", f])], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
  });
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("\t"));
}

/** Per client port: packets and frame bytes each way, as tshark counts them. */
function tsharkConversations(
  file: string,
  clientIp: string,
): Map<number, { pt: number; pr: number; bt: number; br: number }> {
  const conv = new Map<number, { pt: number; pr: number; bt: number; br: number }>();
  for (const [src, sport, dport, len] of tshark(file, ["ip.src", "tcp.srcport", "tcp.dstport", "frame.len"])) {
    const fromClient = src === clientIp;
    const port = Number(fromClient ? sport : dport);
    const c = conv.get(port) ?? { pt: 0, pr: 0, bt: 0, br: 0 };
    if (fromClient) {
      c.pt++;
      c.bt += Number(len);
    } else {
      c.pr++;
      c.br += Number(len);
    }
    conv.set(port, c);
  }
  return conv;
}

/** Sums a flow's interval records (a flow may report more than once). */
function totals(flows: FlowRecord[], clientPort: number) {
  const mine = flows.filter((f) => f.clientPort === clientPort);
  const sum = (k: keyof FlowRecord) => mine.reduce((s, f) => s + (f[k] as number), 0);
  return {
    records: mine,
    packetsTx: sum("packetsTx"),
    packetsRx: sum("packetsRx"),
    bytesTx: sum("bytesTx"),
    bytesRx: sum("bytesRx"),
    retrans: sum("retransTx") + sum("retransRx"),
    outOfOrder: sum("outOfOrderTx") + sum("outOfOrderRx"),
    zeroWindowRx: sum("zeroWindowRx"),
    rttNs: mine.find((f) => f.rttNs !== undefined)?.rttNs,
  };
}

async function withLab<T>(options: Parameters<typeof createNetLab>[0], body: (lab: NetLab) => Promise<T>): Promise<T> {
  const lab = await createNetLab(options);
  try {
    return await body(lab);
  } finally {
    await lab.destroy();
  }
}

describePrivileged(
  "L4 flows from live packets, checked against tshark",
  () => [checkCapturePrivileges()],
  () => {
    it("per-flow packets, bytes, handshake RTT and iptables-induced retransmissions agree with tshark; replay reproduces live", async () => {
      await withLab({}, async (lab) => {
        const pcap = join(dir, "loss.pcap");
        // no segmentation offloads: the capture sees MSS-sized segments, as on a physical link
        for (const ns of [lab.ns.a, lab.ns.b])
          lab.exec(ns, ["ethtool", "-K", "eth0", "tso", "off", "gso", "off", "gro", "off"]);
        await lab.start(lab.ns.b, ["python3", PEER, "server", String(SINK_PORT), "sink"], /ready/);
        const tcpdump = await lab.tcpdump(lab.ns.b, "eth0", pcap, ["tcp", "port", String(SINK_PORT)]);
        // drop 3% of the client's segments after capture (INPUT runs after AF_PACKET taps)
        lab.exec(lab.ns.b, [
          "iptables",
          "-A",
          "INPUT",
          "-p",
          "tcp",
          "--dport",
          String(SINK_PORT),
          "-m",
          "statistic",
          "--mode",
          "random",
          "--probability",
          "0.03",
          "-j",
          "DROP",
        ]);
        const seen = await observePackets(
          {
            targets: [{ netns: `/var/run/netns/${lab.ns.b}`, interfaces: ["eth0"] }],
            snapLen: 256,
            filter: `tcp port ${SINK_PORT}`,
          },
          async () => {
            for (let i = 0; i < 4; i++) {
              await lab.run(lab.ns.a, ["python3", PEER, "client", lab.ip.b, String(SINK_PORT), String(512 * 1024)]);
            }
          },
          { l7: false },
        );
        await tcpdump.stop();
        expect(seen.captureStats.kernelDrops).toBe(0);

        const conv = tsharkConversations(pcap, lab.ip.a);
        expect(conv.size).toBe(4);
        const rttByPort = new Map<number, number>();
        for (const [port, rtt] of tshark(
          pcap,
          ["tcp.srcport", "tcp.analysis.initial_rtt"],
          "tcp.analysis.initial_rtt",
        )) {
          rttByPort.set(Number(port), Number(rtt) * 1e9);
        }
        let ourRetrans = 0;
        let ourOutOfOrder = 0;
        for (const [port, c] of conv) {
          const t = totals(seen.flows, port);
          expect(t.records[0]).toMatchObject({ serverPort: SINK_PORT, directionFrom: "handshake", interface: "eth0" });
          expect({ pt: t.packetsTx, pr: t.packetsRx, bt: t.bytesTx, br: t.bytesRx }).toEqual(c);
          const theirRtt = rttByPort.get(port) as number;
          expect(t.rttNs).toBeDefined();
          // live, our ring and tcpdump's socket stamp frames apart (94 µs seen under load); tight on replay below
          expect(Math.abs((t.rttNs as number) - theirRtt)).toBeLessThanOrEqual(Math.max(250_000, theirRtt * 0.5));
          ourRetrans += t.retrans;
          ourOutOfOrder += t.outOfOrder;
        }
        // every resent segment counts: tshark calls the ones already acknowledged "spurious" instead
        const theirRetrans = tshark(
          pcap,
          ["frame.number"],
          "tcp.analysis.retransmission || tcp.analysis.spurious_retransmission",
        ).length;
        expect(theirRetrans).toBeGreaterThan(0);
        // segments below the next expected seq: both split them into retransmissions and out-of-order
        // arrivals by time. Live, tcpdump's socket stamps and orders frames a little apart from our ring
        // (8 of 114 apart seen under load), so the live totals are loose; replay of its file is tight below
        const theirOutOfOrder = tshark(pcap, ["frame.number"], "tcp.analysis.out_of_order").length;
        const theirBelow = theirRetrans + theirOutOfOrder;
        expect(Math.abs(ourRetrans + ourOutOfOrder - theirBelow)).toBeLessThanOrEqual(Math.max(4, theirBelow * 0.15));

        // the same file through `replay`'s path gives the same flows
        const replay = new PacketAggregator({ l7: false });
        const read = readCaptureFile(pcap, (frames) => replay.ingest(frames));
        expect(read.ok).toBe(true);
        replay.flush();
        const replayed = replay.takeFlowRecords();
        let replayRetrans = 0;
        let replayBelow = 0;
        for (const port of conv.keys()) {
          const live = totals(seen.flows, port);
          const off = totals(replayed, port);
          expect([off.packetsTx, off.packetsRx, off.bytesTx, off.bytesRx]).toEqual([
            live.packetsTx,
            live.packetsRx,
            live.bytesTx,
            live.bytesRx,
          ]);
          // on the very timestamps tshark read, the handshake RTT agrees closely
          const theirRtt = rttByPort.get(port) as number;
          expect(Math.abs((off.rttNs as number) - theirRtt)).toBeLessThanOrEqual(Math.max(10_000, theirRtt * 0.05));
          replayRetrans += off.retrans;
          replayBelow += off.retrans + off.outOfOrder;
        }
        // the same segments below the expected seq as tshark finds in the file
        expect(Math.abs(replayBelow - theirBelow)).toBeLessThanOrEqual(Math.max(2, theirBelow * 0.05));
        // the split is by time since the sequence advanced: on the very timestamps tshark read (the file),
        // ours agrees with its retransmissions; live, tcpdump's socket stamps frames a little apart from
        // ours, and on a loaded machine more segments sit near the boundary, so that split is looser.
        // From the file: 0–3 apart in the runs so far (rules on rare edge segments differ slightly)
        expect(Math.abs(replayRetrans - theirRetrans)).toBeLessThanOrEqual(Math.max(4, theirRetrans * 0.1));
        expect(Math.abs(ourRetrans - theirRetrans)).toBeLessThanOrEqual(Math.max(4, theirRetrans * 0.4));
      });
    }, 60_000);

    it("a closed port is an establishment failure with a server RST; a stalled reader shows zero windows", async () => {
      await withLab({}, async (lab) => {
        const stall = join(dir, "stall.pcap");
        await lab.start(lab.ns.b, ["python3", PEER, "server", String(STALL_PORT), "stall"], /ready/);
        const tcpdump = await lab.tcpdump(lab.ns.b, "eth0", stall, ["tcp", "port", String(STALL_PORT)], 128);
        const seen = await observePackets(
          { targets: [{ netns: `/var/run/netns/${lab.ns.b}`, interfaces: ["eth0"] }], filter: "tcp" },
          async () => {
            await lab.run(lab.ns.a, ["python3", PEER, "client", lab.ip.b, String(STALL_PORT), String(8 << 20), "2"]);
            await lab.run(lab.ns.a, [
              "python3",
              "-c",
              `import socket\ntry: socket.create_connection(("${lab.ip.b}", ${CLOSED_PORT}), timeout=2)\nexcept ConnectionRefusedError: print("refused")`,
            ]);
          },
          { l7: false },
        );
        await tcpdump.stop();

        const refused = seen.flows.filter((f) => f.serverPort === CLOSED_PORT);
        expect(refused).toHaveLength(1);
        expect(refused[0]).toMatchObject({
          closeType: "connection_refused",
          establishFailure: "connection_refused",
          rstServer: 1,
          synCount: 1,
          synAckCount: 0,
        });

        const stalled = seen.flows.filter((f) => f.serverPort === STALL_PORT);
        const zeroWindows = stalled.reduce((s, f) => s + f.zeroWindowRx, 0);
        const theirs = tshark(stall, ["frame.number"], "tcp.analysis.zero_window").length;
        expect(theirs).toBeGreaterThan(0);
        expect(zeroWindows).toBe(theirs);
        expect(stalled.reduce((s, f) => s + f.zeroWindowTx, 0)).toBe(0);
        expect(stalled.at(-1)).toMatchObject({ closed: true, closeType: "client_rst", rstClient: 1 });
      });
    }, 60_000);

    it("VXLAN traffic yields the inner flow (with its VNI), the same flow the VXLAN device itself shows", async () => {
      await withLab({ vxlan: true }, async (lab) => {
        const overlay = lab.overlay as { a: string; b: string };
        await lab.start(
          lab.ns.b,
          ["python3", "-m", "http.server", "--bind", overlay.b, String(HTTP_PORT)],
          /Serving HTTP/,
        );
        const seen = await observePackets(
          { targets: [{ netns: `/var/run/netns/${lab.ns.b}`, interfaces: ["eth0", "vx0"] }], snapLen: 2048 },
          async () => {
            for (let i = 0; i < 3; i++) {
              await lab.run(lab.ns.a, ["curl", "-sS", "-o", "/dev/null", `http://${overlay.b}:${HTTP_PORT}/`]);
            }
          },
        );
        const underlay = seen.flows.filter((f) => f.interface === "eth0" && f.serverPort === HTTP_PORT);
        const device = seen.flows.filter((f) => f.interface === "vx0" && f.serverPort === HTTP_PORT);
        expect(underlay).toHaveLength(3);
        expect(device).toHaveLength(3);
        for (const f of underlay) {
          expect(f).toMatchObject({
            vni: 42,
            clientAddr: overlay.a,
            serverAddr: overlay.b,
            directionFrom: "handshake",
          });
          const twin = device.find((d) => d.clientPort === f.clientPort);
          expect(twin?.vni).toBeUndefined();
          expect([twin?.packetsTx, twin?.packetsRx]).toEqual([f.packetsTx, f.packetsRx]);
        }
        // L7 from packets: each GET seen at both observation points
        const gets = seen.requests.filter((r) => r.protocol === "http1" && r.serverPort === HTTP_PORT);
        expect(gets).toHaveLength(6);
        for (const r of gets) {
          expect(r).toMatchObject({
            observationPoint: "network",
            requestType: "GET",
            resource: "/",
            code: 200,
            pid: 0,
          });
        }
        expect(new Set(gets.map((r) => r.interface))).toEqual(new Set(["eth0", "vx0"]));
      });
    }, 60_000);

    it("through a bridge: one connection is one flow per port of the bridge, with the same counts", async () => {
      await withLab({ bridge: true }, async (lab) => {
        await lab.start(lab.ns.b, ["python3", PEER, "server", String(SINK_PORT), "sink"], /ready/);
        const seen = await observePackets(
          { targets: [{ netns: `/var/run/netns/${lab.ns.bridge}` }], filter: `tcp port ${SINK_PORT}` },
          async () => {
            await lab.run(lab.ns.a, ["python3", PEER, "client", lab.ip.b, String(SINK_PORT), "100000"]);
          },
          { l7: false },
        );
        const hops = seen.flows.filter((f) => f.serverPort === SINK_PORT);
        expect(new Set(hops.map((f) => f.interface))).toEqual(new Set(["p-a", "p-b"]));
        const [a, b] = ["p-a", "p-b"].map((i) =>
          totals(
            hops.filter((f) => f.interface === i),
            hops[0]?.clientPort as number,
          ),
        );
        expect(a?.packetsTx).toBeGreaterThan(3);
        expect([b?.packetsTx, b?.packetsRx, b?.bytesTx, b?.bytesRx]).toEqual([
          a?.packetsTx,
          a?.packetsRx,
          a?.bytesTx,
          a?.bytesRx,
        ]);
        expect(hops.every((f) => f.closeType === "fin")).toBe(true);
      });
    }, 60_000);
  },
);
