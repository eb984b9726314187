// A private dnsmasq (no upstream: it answers kalman.test and *.invalid itself, refuses the rest)
// queried by dig over UDP and TCP, seen by the real socket tracer and the DNS parser.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, run } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { dns } from "../src/protocols/dns/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

let dir = "";
let port = 0;
let dnsmasq: ChildProcess | undefined;
let stderr = "";

const digPids: number[] = [];

async function dig(...args: string[]): Promise<string> {
  const { stdout, pid } = await run("dig", ["@127.0.0.1", "-p", String(port), "+tries=1", "+time=2", ...args]);
  digPids.push(pid);
  return stdout;
}

describePrivileged("dns parser, end to end (dnsmasq + dig)", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kalman-dnsmasq-"));
    port = await freePort();
    dnsmasq = spawn(
      "dnsmasq",
      [
        "--no-daemon",
        "--conf-file=/dev/null",
        `--port=${port}`,
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--address=/kalman.test/198.18.0.10",
        "--local=/invalid/",
        `--pid-file=${join(dir, "pid")}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    dnsmasq.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    dnsmasq.on("error", (e) => {
      stderr += String(e);
    });
    // ready when it answers (before tracing starts)
    for (let i = 0; ; i++) {
      if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
      const out = await dig("kalman.test", "A").catch(() => "");
      if (out.includes("status: NOERROR")) break;
      if (i >= 50) throw new Error(`dnsmasq does not answer on 127.0.0.1:${port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (dnsmasq && dnsmasq.exitCode === null && dnsmasq.signalCode === null) {
      const exited = once(dnsmasq, "exit");
      dnsmasq.kill("SIGTERM");
      await exited;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("UDP and TCP queries: name, type, rcode, status, answers and transport on both sides", async () => {
    const answers: string[] = [];
    digPids.length = 0;
    const { records, stats } = await observe({ ports: [port], parsers: [dns] }, async () => {
      answers.push(await dig("kalman.test", "A"));
      answers.push(await dig("nope.kalman.invalid", "A"));
      // both TCP queries on one connection (dnsmasq reads each length prefix one byte at a time). Two
      // TCP connections in a row can flake: the receiver keeps a stale socket id for dnsmasq's socket
      // (see the report), and the next socket at the same address inherits it.
      answers.push(await dig("+tcp", "+keepopen", "kalman.test", "A", "nope.kalman.invalid", "AAAA"));
    });
    // what dig itself saw: the server answered everything locally
    expect(answers.flatMap((a) => [...a.matchAll(/status: (\w+)/g)].map((m) => m[1]))).toEqual([
      "NOERROR",
      "NXDOMAIN",
      "NOERROR",
      "NXDOMAIN",
    ]);
    expect(answers[0]).toContain("198.18.0.10");

    const summary = (r: RequestRecord) => ({
      protocol: r.protocol,
      transport: r.transport,
      requestType: r.requestType,
      resource: r.resource,
      domain: r.domain,
      code: r.code,
      status: r.status,
      exception: r.exception,
      answers: r.attributes?.["dns.answers"],
      question: r.attributes?.["dns.question.name"],
      serverPort: r.serverPort,
      requestBytes: r.requestBytes,
      responseBytes: r.responseBytes,
    });
    const ok = { code: 0, status: "ok", exception: undefined, answers: 1 };
    const nx = { code: 3, status: "client_error", exception: "NXDOMAIN", answers: 0 };
    // sizes as dig 9.18 sends them (EDNS + cookie) and dnsmasq answers; TCP adds the 2-byte length
    const expected = [
      { transport: "udp", requestType: "A", name: "kalman.test", ...ok, requestBytes: 52, responseBytes: 56 },
      { transport: "udp", requestType: "A", name: "nope.kalman.invalid", ...nx, requestBytes: 60, responseBytes: 48 },
      { transport: "tcp", requestType: "A", name: "kalman.test", ...ok, requestBytes: 54, responseBytes: 58 },
      {
        transport: "tcp",
        requestType: "AAAA",
        name: "nope.kalman.invalid",
        ...nx,
        requestBytes: 62,
        responseBytes: 50,
      },
    ].map(({ name, ...e }) => ({
      protocol: "dns",
      ...e,
      resource: name,
      domain: name,
      question: name,
      serverPort: port,
    }));

    const byStart = (a: RequestRecord, b: RequestRecord) => a.startNs - b.startNs;
    const server = serverSide(records).sort(byStart);
    const client = clientSide(records).sort(byStart);
    expect(server.map(summary)).toEqual(expected);
    expect(client.map(summary)).toEqual(expected);
    expect(records).toHaveLength(8);
    // TCP seq links each side's request and response to the other side's
    const seqs = (rs: RequestRecord[]) =>
      rs.filter((r) => r.transport === "tcp").map((r) => [r.reqTcpSeq, r.respTcpSeq]);
    expect(seqs(server)).toEqual(seqs(client));
    expect(
      seqs(server)
        .flat()
        .every((n) => typeof n === "number"),
    ).toBe(true);
    for (const r of [...server, ...client]) {
      expect(r.durationNs).toBeGreaterThan(0);
      expect(r.clientAddr).toBe("127.0.0.1");
      expect(r.serverAddr).toBe("127.0.0.1");
    }
    // dig on the client side (comm is dig's I/O thread name), dnsmasq on the server side
    expect(client.map((r) => r.pid)).toEqual([digPids[0], digPids[1], digPids[2], digPids[2]]);
    expect(new Set(client.filter((r) => r.transport === "tcp").map((r) => r.connId)).size).toBe(1);
    expect(new Set(server.map((r) => r.pid))).toEqual(new Set([dnsmasq?.pid]));
    expect(stats).toMatchObject({ malformed: 0, orphanResponses: 0 });
  });
});
