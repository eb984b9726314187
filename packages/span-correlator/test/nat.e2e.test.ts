// TCP seq links a client span and its server span through L4 NAT, observed for real: the client
// (curl, namespace A) connects to a virtual address that an iptables DNAT rule in its own namespace
// rewrites to the server (namespace B). Each side's socket names a different server address, so
// nothing but the request bytes' TCP seq (which DNAT leaves alone) can join them.
//
//   kl-nat-a: curl → 198.18.9.9:80 ──DNAT (nat OUTPUT)──▶ 198.18.1.2:8080  veth  kl-nat-b: node server
//             198.18.1.1/24                                                       198.18.1.2/24
//
// Addresses are from 198.18.0.0/15 (RFC 2544), in namespaces this test creates and removes (with the
// rule) even when it fails. The root namespace's iptables is never touched.

import { type ChildProcess, execFileSync } from "node:child_process";
import { join } from "node:path";
import { receiverPreflight, SocketTracer } from "@kalman/ebpf-receiver";
import { describePrivileged, examplesDir, startUntil, stop } from "@kalman/examples";
import { L7Aggregator, type RequestRecord } from "@kalman/flow-aggregator";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SpanCorrelator } from "../src/correlator.js";

const NS_A = "kl-nat-a";
const NS_B = "kl-nat-b";
const CLIENT_IP = "198.18.1.1";
const SERVER_IP = "198.18.1.2";
const SERVER_PORT = 8080;
const VIRTUAL_IP = "198.18.9.9";
const VIRTUAL_PORT = 80;
const backendScript = join(examplesDir, "tracing", "backend.mjs");

let server: ChildProcess | undefined;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Deletes this test's namespaces (their veth ends and iptables rules go with them); safe when absent. */
function removeNamespaces(): void {
  const existing = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0]);
  for (const ns of [NS_A, NS_B]) {
    if (!existing.includes(ns)) continue;
    try {
      ip("netns", "del", ns);
    } catch {
      // already gone
    }
  }
}

function buildTopology(): void {
  removeNamespaces(); // leftovers of an interrupted run
  ip("netns", "add", NS_A);
  ip("netns", "add", NS_B);
  for (const ns of [NS_A, NS_B]) ip("-n", ns, "link", "set", "lo", "up");
  ip("-n", NS_A, "link", "add", "kl-nat-va", "type", "veth", "peer", "name", "kl-nat-vb", "netns", NS_B);
  ip("-n", NS_A, "addr", "add", `${CLIENT_IP}/24`, "dev", "kl-nat-va");
  ip("-n", NS_B, "addr", "add", `${SERVER_IP}/24`, "dev", "kl-nat-vb");
  ip("-n", NS_A, "link", "set", "kl-nat-va", "up");
  ip("-n", NS_B, "link", "set", "kl-nat-vb", "up");
  // the virtual address must be routable before DNAT rewrites it
  ip("-n", NS_A, "route", "add", `${VIRTUAL_IP}/32`, "via", SERVER_IP);
  execFileSync(
    "ip",
    [
      "netns",
      "exec",
      NS_A,
      "iptables",
      "-t",
      "nat",
      "-A",
      "OUTPUT",
      "-d",
      VIRTUAL_IP,
      "-p",
      "tcp",
      "--dport",
      String(VIRTUAL_PORT),
      "-j",
      "DNAT",
      "--to-destination",
      `${SERVER_IP}:${SERVER_PORT}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
}

describePrivileged("TCP seq linking through L4 NAT", receiverPreflight, () => {
  beforeAll(async () => {
    try {
      buildTopology();
      const started = await startUntil(
        "ip",
        ["netns", "exec", NS_B, process.execPath, backendScript, SERVER_IP, String(SERVER_PORT), "0"],
        /listening (\d+)/,
      );
      server = started.child;
    } catch (e) {
      if (server) await stop(server);
      removeNamespaces();
      throw e;
    }
  });
  afterAll(async () => {
    try {
      if (server) await stop(server);
    } finally {
      removeNamespaces();
    }
  });

  it("curl → DNAT 198.18.9.9:80 → 198.18.1.2:8080: each server span's parent is its client span, by tcp_seq", async () => {
    const paths = ["/nat/1", "/nat/2", "/nat/3"];
    const correlator = new SpanCorrelator();
    const agg = new L7Aggregator({ listener: correlator });
    // the client's socket has remote port 80, the server's local port 8080
    const tracer = SocketTracer.open({ ports: [VIRTUAL_PORT, SERVER_PORT], closeOnSignals: false });
    const records: RequestRecord[] = [];
    let body = "";
    try {
      // three requests on one keep-alive connection, so later requests' seqs are checked too
      body = execFileSync(
        "ip",
        [
          "netns",
          "exec",
          NS_A,
          "curl",
          "-sf",
          "--noproxy",
          "*",
          "--max-time",
          "10",
          ...paths.map((p) => `http://${VIRTUAL_IP}${p}`),
        ],
        { encoding: "utf8" },
      );
      await new Promise((r) => setTimeout(r, 300));
      for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) agg.ingestBatch(b);
      records.push(...agg.takeRecords());
    } finally {
      tracer.close();
    }
    // the server (behind the NAT) answered every request
    for (const p of paths) expect(body).toContain(`"path":"${p}"`);

    const ours = records.filter((r) => r.protocol === "http1" && paths.includes(r.resource ?? ""));
    const clients = ours.filter((r) => r.comm === "curl" && r.observationPoint === "client");
    const servers = ours.filter((r) => r.observationPoint === "server");
    expect(clients.map((r) => r.resource)).toEqual(paths);
    expect(servers.map((r) => r.resource)).toEqual(paths);
    for (const p of paths) {
      const client = clients.find((r) => r.resource === p) as RequestRecord;
      const srv = servers.find((r) => r.resource === p) as RequestRecord;
      // the client's socket names the virtual address, the server's its own: the NAT is in between
      expect(client).toMatchObject({
        serverAddr: VIRTUAL_IP,
        serverPort: VIRTUAL_PORT,
        clientAddr: CLIENT_IP,
        code: 200,
      });
      expect(srv).toMatchObject({ serverAddr: SERVER_IP, serverPort: SERVER_PORT, clientAddr: CLIENT_IP, code: 200 });
      expect(srv.clientPort).toBe(client.clientPort);
      expect(srv.netns).not.toBe(client.netns);
      // DNAT rewrites addresses, not sequence numbers
      expect(client.reqTcpSeq).toBeDefined();
      expect(srv.reqTcpSeq).toBe(client.reqTcpSeq);
      expect(client.span?.parentSpanId).toBeUndefined();
      expect(srv.span, p).toMatchObject({
        traceId: client.span?.traceId,
        parentSpanId: client.span?.spanId,
        linkedBy: "tcp_seq",
      });
    }
    expect(new Set(clients.map((r) => r.span?.traceId)).size).toBe(paths.length);
    expect(correlator.stats()).toMatchObject({ linkedTcpSeq: paths.length, serverRoots: 0 });
  }, 60_000);
});
