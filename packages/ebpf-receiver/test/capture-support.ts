// Test support for packet capture: two namespaces joined by a veth pair (+ a VLAN on it), a
// Python echo server and client run inside them, tcpdump/tshark as the reference.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startUntil, stop, waitForStableFile } from "@kalman/examples";
import type { PacketCapture } from "../src/index.js";

const ECHO_SERVER = `
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(16)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
`;

const CLIENT = `
import socket, sys
host, port, size, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for i in range(count):
    c = socket.create_connection((host, port))
    c.sendall(b"k" * size)
    c.shutdown(socket.SHUT_WR)
    got = 0
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += len(d)
    assert got == size, (got, size)
    c.close()
print("done", flush=True)
`;

const INJECT = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
s.send(bytes.fromhex(sys.argv[2]))
`;

/**
 * Two namespaces `a` and `b` joined by veth `ifA` <-> `ifB` (198.18.77.1 <-> .2) and a second
 * pair `ifA2` <-> `ifB2` (198.18.78.1 <-> .2). (This kernel has no 8021q module: VLAN frames are
 * injected with a packet socket instead, see injectFrame.)
 */
export interface VethPair {
  nsA: string;
  nsB: string;
  /** /var/run/netns/<nsB> */
  pathA: string;
  pathB: string;
  ifA: string;
  ifB: string;
  ifA2: string;
  ifB2: string;
  ipA: string;
  ipB: string;
  ip2A: string;
  ip2B: string;
  dir: string;
  /** Starts a Python echo server in a namespace; killed by destroy(). */
  echoServer(ns: string, addr: string, port: number): Promise<void>;
  /** Runs `count` connections that each send `size` bytes and read them back, from a namespace. */
  exchange(ns: string, addr: string, port: number, size: number, count?: number): Promise<void>;
  /** Runs a Python script (source text) in a namespace to completion. */
  python(ns: string, source: string, args: string[]): Promise<void>;
  /** Sends one raw frame out of an interface through a packet socket. */
  injectFrame(ns: string, ifname: string, frame: Buffer): Promise<void>;
  /** Starts tcpdump in a namespace writing a pcap; stop() ends it and returns the file. */
  tcpdump(ns: string, ifname: string, filter: string): Promise<{ stop(): Promise<string> }>;
  destroy(): Promise<void>;
}

export function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Frames in a pcap file, counted by tshark. */
export function tsharkCount(file: string): number {
  const out = execFileSync("tshark", ["-r", file, "-T", "fields", "-e", "frame.number"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  return out.split("\n").filter((l) => l.trim() !== "").length;
}

export async function makeVethPair(tag: string): Promise<VethPair> {
  const id = `${process.pid}${tag}`;
  const nsA = `klcap-a-${id}`;
  const nsB = `klcap-b-${id}`;
  const ifA = `kca${id}`.slice(0, 11);
  const ifB = `kcb${id}`.slice(0, 11);
  const dir = mkdtempSync(join(tmpdir(), "kalman-capture-"));
  const children: ChildProcess[] = [];
  const pair: VethPair = {
    nsA,
    nsB,
    pathA: `/var/run/netns/${nsA}`,
    pathB: `/var/run/netns/${nsB}`,
    ifA,
    ifB,
    ifA2: `${ifA}x`,
    ifB2: `${ifB}x`,
    ipA: "198.18.77.1",
    ipB: "198.18.77.2",
    ip2A: "198.18.78.1",
    ip2B: "198.18.78.2",
    dir,
    async echoServer(ns, addr, port) {
      const script = join(dir, "echo_server.py");
      writeFileSync(script, ECHO_SERVER);
      const { child } = await startUntil(
        "ip",
        ["netns", "exec", ns, "python3", script, addr, String(port)],
        /listening/,
      );
      children.push(child);
    },
    async exchange(ns, addr, port, size, count = 1) {
      const script = join(dir, "client.py");
      writeFileSync(script, CLIENT);
      const child = spawn(
        "ip",
        ["netns", "exec", ns, "python3", script, addr, String(port), String(size), String(count)],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      const [code] = (await once(child, "exit")) as [number | null];
      if (code !== 0) throw new Error(`client in ${ns} exited with ${code}`);
    },
    async python(ns, source, args) {
      const script = join(dir, `script-${children.length}-${Date.now()}.py`);
      writeFileSync(script, source);
      const child = spawn("ip", ["netns", "exec", ns, "python3", script, ...args], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      const [code] = (await once(child, "exit")) as [number | null];
      if (code !== 0) throw new Error(`${script} in ${ns} exited with ${code}`);
    },
    async injectFrame(ns, ifname, frame) {
      const script = join(dir, "inject.py");
      writeFileSync(script, INJECT);
      const child = spawn("ip", ["netns", "exec", ns, "python3", script, ifname, frame.toString("hex")], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      const [code] = (await once(child, "exit")) as [number | null];
      if (code !== 0) throw new Error(`inject in ${ns} exited with ${code}`);
    },
    async tcpdump(ns, ifname, filter) {
      const file = join(dir, `${ifname}-${children.length}.pcap`);
      const child = spawn(
        "ip",
        [
          "netns",
          "exec",
          ns,
          "tcpdump",
          "-i",
          ifname,
          "-n",
          "--immediate-mode",
          "-U",
          "-B",
          "8192",
          "-w",
          file,
          filter,
        ],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      children.push(child);
      let err = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${err}`)), 10_000);
        child.stderr?.on("data", (d: Buffer) => {
          err += d.toString();
          if (/listening on/.test(err)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on("exit", (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
      });
      return {
        async stop() {
          await waitForStableFile(file);
          if (child.exitCode === null && child.signalCode === null) {
            const exited = once(child, "exit");
            child.kill("SIGINT");
            await exited;
          }
          const dropped = /^(\d+) packets dropped by kernel/m.exec(err);
          if (dropped && dropped[1] !== "0")
            throw new Error(`tcpdump lost packets, the comparison would be wrong: ${err}`);
          return file;
        },
      };
    },
    async destroy() {
      await Promise.all(children.splice(0).map((c) => stop(c).catch(() => {})));
      for (const ns of [nsA, nsB]) {
        try {
          ip("netns", "del", ns);
        } catch {
          // not created
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    ip("netns", "add", nsA);
    ip("netns", "add", nsB);
    ip("-n", nsA, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", nsB);
    ip("-n", nsA, "link", "add", pair.ifA2, "type", "veth", "peer", "name", pair.ifB2, "netns", nsB);
    for (const ns of [nsA, nsB]) {
      // no IPv6 router/neighbour chatter in the counts
      execFileSync("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"]);
      ip("-n", ns, "link", "set", "lo", "up");
    }
    for (const [ns, ifname, addr] of [
      [nsA, ifA, pair.ipA],
      [nsB, ifB, pair.ipB],
      [nsA, pair.ifA2, pair.ip2A],
      [nsB, pair.ifB2, pair.ip2B],
    ] as const) {
      ip("-n", ns, "addr", "add", `${addr}/24`, "dev", ifname);
      ip("-n", ns, "link", "set", ifname, "up");
    }
  } catch (e) {
    await pair.destroy();
    throw e;
  }
  return pair;
}

/** A captured packet, materialised (tests only). */
export interface Pkt {
  monoNs: number;
  realSec: number;
  wireLen: number;
  capLen: number;
  ifindex: number;
  ifname: string;
  linkType: number;
  pktType: number;
  flags: number;
  captureId: number;
  data: Buffer;
}

/** Drains everything ready now into plain objects. */
export function drainPackets(cap: PacketCapture, into: Pkt[] = []): Pkt[] {
  for (let batch = cap.drain(); batch; batch = cap.drain()) {
    const p = batch.cursor();
    while (p.next()) {
      into.push({
        monoNs: p.monoNs,
        realSec: p.realSec,
        wireLen: p.wireLen,
        capLen: p.capLen,
        ifindex: p.ifindex,
        ifname: cap.interfaceName(p.captureId, p.ifindex),
        linkType: p.linkType,
        pktType: p.pktType,
        flags: p.flags,
        captureId: p.captureId,
        data: Buffer.from(p.data()),
      });
    }
  }
  return into;
}

/** Waits for the ring's retire timer to hand over the last block, then drains. */
export async function settleAndDrain(cap: PacketCapture, into: Pkt[] = [], ms = 300): Promise<Pkt[]> {
  await new Promise((r) => setTimeout(r, ms));
  return drainPackets(cap, into);
}

export interface TcpView {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  flags: number;
  payloadLen: number;
  ipTotalLen: number;
  vlanId?: number;
}

/** Minimal Ethernet(/802.1Q)/IPv4/TCP reader for assertions. */
export function tcpOf(frame: Buffer): TcpView | undefined {
  let at = 12;
  let etherType = frame.readUInt16BE(at);
  let vlanId: number | undefined;
  if (etherType === 0x8100 || etherType === 0x88a8) {
    vlanId = frame.readUInt16BE(at + 2) & 0xfff;
    at += 4;
    etherType = frame.readUInt16BE(at);
  }
  if (etherType !== 0x0800) return undefined;
  const ipAt = at + 2;
  if (frame.length < ipAt + 20 || frame[ipAt + 9] !== 6) return undefined;
  const ihl = (frame[ipAt]! & 0xf) * 4;
  const ipTotalLen = frame.readUInt16BE(ipAt + 2);
  const tcpAt = ipAt + ihl;
  if (frame.length < tcpAt + 14) return undefined;
  const dataOff = (frame[tcpAt + 12]! >> 4) * 4;
  return {
    src: [...frame.subarray(ipAt + 12, ipAt + 16)].join("."),
    dst: [...frame.subarray(ipAt + 16, ipAt + 20)].join("."),
    sport: frame.readUInt16BE(tcpAt),
    dport: frame.readUInt16BE(tcpAt + 2),
    flags: frame[tcpAt + 13]!,
    payloadLen: ipTotalLen - ihl - dataOff,
    ipTotalLen,
    vlanId,
  };
}

export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;
