// AF_PACKET capture against real traffic in namespaces the test builds, checked against tcpdump/tshark.
import { execFileSync } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describePrivileged } from "@kalman/examples";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import {
  checkCapturePrivileges,
  LinkType,
  PacketCapture,
  PacketFlag,
  PacketType,
  ReceiverError,
} from "../src/index.js";
import {
  drainPackets,
  makeVethPair,
  type Pkt,
  settleAndDrain,
  TCP_ACK,
  TCP_SYN,
  tcpOf,
  tsharkCount,
  type VethPair,
} from "./capture-support.js";

let net: VethPair;
let cap: PacketCapture | undefined;
const PORT = 7701;
const OTHER_PORT = 7702;

beforeAll(async () => {
  net = await makeVethPair("e");
  await net.echoServer(net.nsB, "0.0.0.0", PORT);
  await net.echoServer(net.nsB, "0.0.0.0", OTHER_PORT);
}, 30_000);

afterAll(async () => {
  cap?.close();
  await net?.destroy();
});

afterEach(() => {
  cap?.close();
  cap = undefined;
});

const nowNs = () => Number(process.hrtime.bigint());
const tcp = (pkts: Pkt[]) => pkts.map((p) => ({ p, t: tcpOf(p.data) })).filter((x) => x.t !== undefined);

function socketInodes(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const link = readlinkSync(`/proc/self/fd/${fd}`);
      if (link.startsWith("socket:")) out.push(link);
    } catch {
      // closed meanwhile
    }
  }
  return out.sort();
}

function packetSocketInodes(ns: string): string[] {
  const text = execFileSync("ip", ["netns", "exec", ns, "cat", "/proc/net/packet"], { encoding: "utf8" });
  return text
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/).at(-1) ?? "");
}

describePrivileged(
  "packet capture (AF_PACKET TPACKET_V3), end to end",
  () => [checkCapturePrivileges()],
  () => {
    it("captures a TCP handshake and data in another netns, with ports, monotonic times and wire lengths", async () => {
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [net.ifB] }], filter: `tcp port ${PORT}` });
      const t0 = nowNs();
      await net.exchange(net.nsA, net.ipB, PORT, 300);
      const pkts = await settleAndDrain(cap);
      const t1 = nowNs();

      const seen = tcp(pkts);
      expect(seen.length).toBe(pkts.length); // the filter let only TCP on PORT through
      const syn = seen.find((x) => x.t!.flags === TCP_SYN);
      const synAck = seen.find((x) => x.t!.flags === (TCP_SYN | TCP_ACK));
      const request = seen.find((x) => x.t!.dport === PORT && x.t!.payloadLen === 300);
      const reply = seen.find((x) => x.t!.sport === PORT && x.t!.payloadLen === 300);
      expect(syn?.t).toMatchObject({ src: net.ipA, dst: net.ipB, dport: PORT });
      expect(synAck?.t).toMatchObject({ src: net.ipB, dst: net.ipA, sport: PORT, dport: syn!.t!.sport });
      expect(request?.t?.sport).toBe(syn!.t!.sport);
      expect(reply?.t?.dport).toBe(syn!.t!.sport);
      // arriving frames are for this host, the replies leave it
      expect(syn!.p.pktType).toBe(PacketType.host);
      expect(synAck!.p.pktType).toBe(PacketType.outgoing);
      for (const { p, t } of seen) {
        expect(p.linkType).toBe(LinkType.ethernet);
        expect(p.wireLen).toBe(14 + t!.ipTotalLen);
        expect(p.capLen).toBe(Math.min(256, p.wireLen)); // the default snap cuts only the data frames
        expect(p.ifname).toBe(net.ifB);
        expect(p.captureId).toBe(0);
        expect(p.monoNs).toBeGreaterThanOrEqual(t0);
        expect(p.monoNs).toBeLessThanOrEqual(t1);
        expect(Math.abs(p.realSec - Date.now() / 1000)).toBeLessThan(60);
      }
      expect(request!.p.wireLen).toBe(14 + 20 + 32 + 300); // Ethernet + IPv4 + TCP with timestamps + payload
      expect(request!.p.capLen).toBe(256);
      expect(request!.p.flags & PacketFlag.truncated).toBeTruthy();
      expect(syn!.p.monoNs).toBeLessThanOrEqual(synAck!.p.monoNs);
      expect(synAck!.p.monoNs).toBeLessThanOrEqual(request!.p.monoNs);
      expect(cap.netnsOf(0)?.path).toBe(net.pathB);
      expect(cap.netnsOf(0)?.inode).toBeGreaterThan(0);
      const s = cap.stats();
      expect(s.delivered).toBe(pkts.length);
      expect(s.kernelPackets).toBe(pkts.length);
      expect(s.kernelDrops).toBe(0);
    });

    it("sees exactly the frames tcpdump sees on the veth for the same exchange", async () => {
      const dump = await net.tcpdump(net.nsB, net.ifB, `tcp port ${PORT}`);
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [net.ifB] }], filter: `tcp port ${PORT}` });
      await net.exchange(net.nsA, net.ipB, PORT, 5000, 5);
      const pkts = await settleAndDrain(cap, [], 500);
      const file = await dump.stop();
      expect(pkts.length).toBeGreaterThan(5 * 6);
      expect(pkts.length).toBe(tsharkCount(file));
    });

    it("sees each loopback frame once (no PACKET_OUTGOING copy), like tcpdump -i lo", async () => {
      const dump = await net.tcpdump(net.nsB, "lo", `tcp port ${PORT}`);
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: ["lo"] }], filter: `tcp port ${PORT}` });
      await net.exchange(net.nsB, "127.0.0.1", PORT, 1000, 3);
      const pkts = await settleAndDrain(cap, [], 500);
      const file = await dump.stop();
      expect(pkts.length).toBe(tsharkCount(file));
      expect(pkts.every((p) => p.ifname === "lo" && p.pktType !== PacketType.outgoing)).toBe(true);
      // three handshakes, each SYN exactly once
      expect(tcp(pkts).filter((x) => x.t!.flags === TCP_SYN)).toHaveLength(3);
      const s = cap.stats();
      expect(s.loopbackSkipped).toBe(pkts.length); // the kernel showed every frame twice
      expect(s.kernelPackets).toBe(2 * pkts.length);
      expect(s.kernelDrops).toBe(0);
    });

    it("opens one handle per interface a glob matches, and only those", async () => {
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [`${net.ifB}*`] }] });
      expect(cap.handles.map((h) => h.interface).sort()).toEqual([net.ifB, net.ifB2].sort());
      expect(cap.handles.every((h) => h.netns === net.pathB)).toBe(true);
      await net.exchange(net.nsA, net.ipB, PORT, 100);
      await net.exchange(net.nsA, net.ip2B, PORT, 100);
      await net.exchange(net.nsB, "127.0.0.1", PORT, 100); // on lo: not selected
      const pkts = await settleAndDrain(cap);
      const names = new Set(pkts.map((p) => `${p.captureId}:${p.ifname}`));
      expect(names).toEqual(new Set(cap.handles.map((h) => `${h.captureId}:${h.interface}`)));
      expect(pkts.some((p) => tcpOf(p.data)?.src === "127.0.0.1")).toBe(false);
    });

    it("a filter keeps out other traffic", async () => {
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [net.ifB] }], filter: `tcp port ${PORT}` });
      const all = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [net.ifB] }] });
      try {
        await net.exchange(net.nsA, net.ipB, OTHER_PORT, 100);
        await net.exchange(net.nsA, net.ipB, PORT, 100);
        const filtered = tcp(await settleAndDrain(cap));
        const unfiltered = tcp(drainPackets(all));
        expect(unfiltered.some((x) => x.t!.dport === OTHER_PORT)).toBe(true);
        expect(filtered.length).toBeGreaterThan(0);
        expect(filtered.every((x) => x.t!.dport === PORT || x.t!.sport === PORT)).toBe(true);
        expect(filtered.length).toBe(unfiltered.filter((x) => x.t!.dport === PORT || x.t!.sport === PORT).length);
      } finally {
        all.close();
      }
    });

    it("snapLen cuts frames, flags them and keeps the wire length", async () => {
      cap = PacketCapture.open({
        targets: [{ netns: net.pathB, interfaces: [net.ifB] }],
        filter: `tcp port ${PORT}`,
        snapLen: 64,
      });
      await net.exchange(net.nsA, net.ipB, PORT, 1000);
      const pkts = await settleAndDrain(cap);
      const big = pkts.filter((p) => p.wireLen > 64);
      expect(big.length).toBeGreaterThanOrEqual(2);
      for (const p of pkts) {
        expect(p.capLen).toBe(Math.min(64, p.wireLen));
        expect(p.data.length).toBe(p.capLen);
        expect(Boolean(p.flags & PacketFlag.truncated)).toBe(p.wireLen > 64);
        // the IP header still tells the real size
        expect(p.wireLen).toBe(14 + p.data.readUInt16BE(16));
      }
      expect(cap.stats().truncated).toBe(big.length);
    });

    it("a VLAN tag the kernel moved into metadata is put back: the frame as on the wire", async () => {
      cap = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [net.ifB] }], filter: "udp port 7703" });
      const sent = [vlanFrame(0x8100, 0x602a), vlanFrame(0x88a8, 0x002a)]; // 802.1Q prio 3 vid 42; 802.1ad vid 42
      for (const f of sent) await net.injectFrame(net.nsA, net.ifA, f);
      const pkts = await settleAndDrain(cap);
      // the receiving veth strips the tag into skb metadata; the filter still matched the inner UDP port
      expect(pkts.map((p) => p.data.toString("hex"))).toEqual(sent.map((f) => f.toString("hex")));
      for (const p of pkts) {
        expect(p.flags & PacketFlag.vlan).toBeTruthy();
        expect(p.flags & PacketFlag.truncated).toBeFalsy();
        expect(p.wireLen).toBe(p.capLen);
        expect(p.pktType).toBe(PacketType.broadcast);
      }
    });

    it("an all-interfaces handle filters Ethernet and raw-IP (tun) devices each by its own link type", async () => {
      cap = PacketCapture.open({ targets: [{ netns: net.pathB }], filter: "udp port 7704" });
      expect(cap.handles).toMatchObject([{ interface: "", netns: net.pathB }]);
      const datagram = udpPacket([198, 18, 79, 2], [198, 18, 79, 1], 7704, "through a tun device");
      const tun = `kct${process.pid}`.slice(0, 15);
      await net.python(net.nsB, TUN_WRITER, [tun, datagram.toString("hex")]);
      await net.injectFrame(net.nsA, net.ifA, vlanFrame(0x8100, 42, 7704));
      await net.injectFrame(net.nsA, net.ifA, vlanFrame(0x8100, 42, 7705)); // other port: filtered out
      const pkts = await settleAndDrain(cap);
      const raw = pkts.filter((p) => p.linkType === LinkType.raw);
      const eth = pkts.filter((p) => p.linkType === LinkType.ethernet);
      expect(raw.map((p) => [p.ifname, p.data.toString("hex"), p.wireLen])).toEqual([
        [tun, datagram.toString("hex"), datagram.length],
      ]);
      expect(eth.map((p) => p.ifname)).toEqual([net.ifB]);
      expect(eth[0]!.data.readUInt16BE(18 + 20 + 2)).toBe(7704);
    });

    it("a drain that fills the buffer mid-block resumes there: every packet once, none lost", async () => {
      cap = PacketCapture.open({
        targets: [{ netns: net.pathB, interfaces: [net.ifB] }],
        filter: "udp port 7706",
        ringBytes: 16 << 20,
        batchBytes: 140 << 10, // the smallest allowed: ~470 records of this size
      });
      const flood = fileURLToPath(new URL("../../../native/build/kl_udpflood", import.meta.url));
      const out = execFileSync("ip", ["netns", "exec", net.nsA, flood, net.ipB, "7706", "0.5", "200", "20000"], {
        encoding: "utf8",
      });
      const sent = Number(/sent (\d+)/.exec(out)?.[1]);
      await new Promise((r) => setTimeout(r, 300));
      let packets = 0;
      let fullBatches = 0;
      for (let batch = cap.drain(); batch; batch = cap.drain()) {
        if (batch.byteLength > (140 << 10) - 2 * 400) fullBatches++;
        const p = batch.cursor();
        while (p.next()) {
          expect(p.wireLen).toBe(14 + 20 + 8 + 200);
          packets++;
        }
      }
      const s = cap.stats();
      expect(sent).toBeGreaterThan(2000);
      expect(s.kernelDrops).toBe(0);
      expect(fullBatches).toBeGreaterThan(2);
      expect(packets).toBe(sent);
      expect(s.delivered).toBe(sent);
    });

    it("drains several handles in several namespaces with one call", async () => {
      cap = PacketCapture.open({
        targets: [
          { netns: net.pathA, interfaces: [net.ifA] },
          { netns: net.pathB, interfaces: [net.ifB] },
        ],
        filter: `tcp port ${PORT}`,
      });
      await net.exchange(net.nsA, net.ipB, PORT, 100);
      await new Promise((r) => setTimeout(r, 300));
      const batch = cap.drain();
      expect(batch).toBeDefined();
      const ids = new Set<number>();
      const c = batch!.cursor();
      while (c.next()) ids.add(c.captureId);
      expect(ids).toEqual(new Set([0, 1]));
      expect(cap.netnsOf(0)!.inode).not.toBe(cap.netnsOf(1)!.inode);
      // ifindex numbers are per namespace: each handle resolves them in its own
      expect(cap.interfaceName(0, ifindexIn(net.nsA, net.ifA))).toBe(net.ifA);
      expect(cap.interfaceName(1, ifindexIn(net.nsB, net.ifB))).toBe(net.ifB);
    });

    it("names what is wrong: a bad filter, a missing interface, a missing netns", () => {
      const attempt = (fn: () => unknown) => {
        try {
          fn();
        } catch (e) {
          return e as ReceiverError;
        }
        throw new Error("expected a ReceiverError");
      };
      const badFilter = attempt(() => PacketCapture.open({ filter: "tcp port nope and (" }));
      expect(badFilter).toBeInstanceOf(ReceiverError);
      expect(badFilter.stage).toBe("filter");
      expect(badFilter.message).toMatch(/syntax error|nope/);
      expect(badFilter.fix).toMatch(/pcap-filter/);

      const noIf = attempt(() => PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: ["nosuch0"] }] }));
      expect(noIf.stage).toBe("open");
      expect(noIf.message).toContain("nosuch0");
      expect(noIf.fix).toContain(`ip -n ${net.nsB} link`);

      const warnings: string[] = [];
      const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
      const noGlob = attempt(() =>
        PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: ["zz*"] }], logger }),
      );
      expect(noGlob.stage).toBe("open");
      expect(noGlob.message).toContain('"zz*"');
      expect(warnings).toEqual(["interface pattern matches nothing"]);

      const missing = `/var/run/netns/klcap-missing-${process.pid}`;
      const noNs = attempt(() => PacketCapture.open({ targets: [{ netns: missing }] }));
      expect(noNs.stage).toBe("setns");
      expect(noNs.message).toContain(missing);

      const notNs = attempt(() => PacketCapture.open({ targets: [{ netns: "/etc/hostname" }] }));
      expect(notNs.stage).toBe("setns");
      expect(notNs.message).toContain("/etc/hostname");

      const badSnap = attempt(() => PacketCapture.open({ snapLen: 70_000 }));
      expect(badSnap.message).toContain("snapLen");
    });

    it("close() leaves no socket behind, and is idempotent", async () => {
      const before = socketInodes();
      const beforeB = packetSocketInodes(net.nsB);
      const c = PacketCapture.open({ targets: [{ netns: net.pathB, interfaces: [`${net.ifB}*`, "lo"] }] });
      expect(socketInodes().length).toBe(before.length + 3);
      expect(packetSocketInodes(net.nsB).length).toBe(beforeB.length + 3);
      c.close();
      c.close();
      expect(socketInodes()).toEqual(before);
      expect(packetSocketInodes(net.nsB)).toEqual(beforeB);
      expect(() => c.drain()).toThrow(ReceiverError);
    });
  },
);

/** An IPv4/UDP datagram (UDP checksum 0: none). */
function udpPacket(src: number[], dst: number[], port: number, text: string): Buffer {
  const payload = Buffer.from(text);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(port, 0);
  udp.writeUInt16BE(port, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ipHdr = Buffer.from([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, ...src, ...dst]);
  ipHdr.writeUInt16BE(20 + udp.length + payload.length, 2);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ipHdr.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ipHdr.writeUInt16BE(~sum & 0xffff, 10);
  return Buffer.concat([ipHdr, udp, payload]);
}

/** A broadcast Ethernet frame with one VLAN tag around a UDP datagram 198.18.78.1 -> .2. */
function vlanFrame(tpid: number, tci: number, port = 7703): Buffer {
  const eth = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x08, 0x00]);
  eth.writeUInt16BE(tpid, 12);
  eth.writeUInt16BE(tci, 14);
  return Buffer.concat([eth, udpPacket([198, 18, 78, 1], [198, 18, 78, 2], port, "kalman vlan test")]);
}

/** Creates a tun device (ARPHRD_NONE), brings it up and writes one IP packet into it: the kernel receives it there. */
const TUN_WRITER = `
import fcntl, os, struct, subprocess, sys
name, packet = sys.argv[1], bytes.fromhex(sys.argv[2])
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN | IFF_NO_PI
fcntl.ioctl(fd, 0x400454cb, 1)  # TUNSETPERSIST: outlives this script, removed with the namespace
subprocess.run(["ip", "addr", "add", "198.18.79.1/24", "dev", name], check=True)
subprocess.run(["ip", "link", "set", name, "up"], check=True)
os.write(fd, packet)
`;

function ifindexIn(ns: string, ifname: string): number {
  const out = execFileSync("ip", ["-n", ns, "-o", "link", "show", "dev", ifname], { encoding: "utf8" });
  return Number(out.split(":")[0]);
}
