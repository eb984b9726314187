import type { ChildProcess } from "node:child_process";
import { execFileSync, spawn } from "node:child_process";
import { request } from "node:http";
import { fileURLToPath } from "node:url";
import { run, startUntil, stop, workloads } from "@kalman/examples";
import { afterEach, expect, it } from "vitest";
import {
  AF_INET,
  AF_INET6,
  Direction,
  IPPROTO_TCP,
  IPPROTO_UDP,
  RecordFlag,
  RecordType,
  SocketRole,
  SocketTracer,
  Syscall,
} from "../src/index.js";
import { describePrivileged, type Rec, settleAndDrain } from "./support.js";

const children: ChildProcess[] = [];
let tracer: SocketTracer | undefined;

afterEach(async () => {
  tracer?.close();
  tracer = undefined;
  await Promise.all(children.splice(0).map(stop));
});

async function server(cmd: string, args: string[]): Promise<{ pid: number; port: number }> {
  const { child, match } = await startUntil(cmd, args, /listening (\d+)/);
  children.push(child);
  return { pid: child.pid ?? 0, port: Number(match[1]) };
}

const loadgen = fileURLToPath(new URL("../../../native/build/kl_loadgen", import.meta.url));
const data = (recs: Rec[]) => recs.filter((r) => r.type === RecordType.data);
const text = (r: Rec) => r.payload?.toString("latin1") ?? "";

describePrivileged("socket tracer, end to end", () => {
  it("sees a Node keep-alive HTTP exchange with pids, ports, directions, bytes, payloads, roles and TCP seq links", async () => {
    const srv = await server(process.execPath, [workloads.httpServer, "0"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    const client = await run(process.execPath, [workloads.httpClient, String(srv.port), "3"]);
    const recs = await settleAndDrain(tracer);

    const clientSends = data(recs).filter((r) => r.tgid === client.pid && r.direction === Direction.Egress);
    const serverReads = data(recs).filter((r) => r.tgid === srv.pid && r.direction === Direction.Ingress);
    const serverSends = data(recs).filter((r) => r.tgid === srv.pid && r.direction === Direction.Egress);
    const clientReads = data(recs).filter((r) => r.tgid === client.pid && r.direction === Direction.Ingress);

    expect(clientSends.map((r) => text(r).split("\r\n")[0])).toEqual([
      "GET /item/0 HTTP/1.1",
      "GET /item/1 HTTP/1.1",
      "GET /item/2 HTTP/1.1",
    ]);
    expect(serverReads).toHaveLength(3);
    expect(serverSends).toHaveLength(3);
    expect(clientReads).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const [cs, sr, ss, cr] = [clientSends[i]!, serverReads[i]!, serverSends[i]!, clientReads[i]!];
      // the same request bytes on both sides
      expect(sr.payload?.equals(cs.payload!)).toBe(true);
      expect(cs.bytes).toBe(cs.payload?.length);
      expect(cs.bytes).toBe(sr.bytes);
      expect(text(ss).startsWith("HTTP/1.1 200 OK")).toBe(true);
      expect(cr.bytes).toBe(ss.bytes);
      // TCP seq of the first byte: client write_seq == server copied_seq, and back
      expect(cs.flags & RecordFlag.seqValid).toBeTruthy();
      expect(sr.tcpSeq).toBe(cs.tcpSeq);
      expect(cr.tcpSeq).toBe(ss.tcpSeq);
      // tuples and roles
      expect(cs).toMatchObject({ family: AF_INET, l4proto: IPPROTO_TCP, dport: srv.port, daddr: "127.0.0.1" });
      expect(sr).toMatchObject({ sport: srv.port, dport: cs.sport, role: SocketRole.Server, comm: "node" });
      expect(cs.role).toBe(SocketRole.Client);
      expect(cs.exitNs).toBeGreaterThanOrEqual(cs.enterNs!);
    }
    // consecutive requests on one connection: seqs advance by the bytes sent
    expect(clientSends[1]!.tcpSeq).toBe((clientSends[0]!.tcpSeq! + clientSends[0]!.bytes!) >>> 0);
    expect(new Set(clientSends.map((r) => r.sockId)).size).toBe(1);

    const sock = recs.filter((r) => r.type === RecordType.sock);
    const connect = sock.find((r) => r.syscall === Syscall.Connect && r.tgid === client.pid);
    const accept = sock.find(
      (r) => (r.syscall === Syscall.Accept4 || r.syscall === Syscall.Accept) && r.tgid === srv.pid,
    );
    expect(connect).toMatchObject({ role: SocketRole.Client, dport: srv.port, sockId: clientSends[0]!.sockId });
    expect(accept).toMatchObject({ role: SocketRole.Server, sport: srv.port, sockId: serverReads[0]!.sockId });
    expect(sock.some((r) => r.syscall === Syscall.Close && r.sockId === clientSends[0]!.sockId)).toBe(true);
    // handshake state changes of the client socket are tracked too
    expect(recs.some((r) => r.type === RecordType.tcpState && r.sockId === clientSends[0]!.sockId)).toBe(true);
    expect(tracer.stats().lostRingFull).toBe(0);
  });

  it("sees a Python TCP pair through send/recv, sendmsg/recvmsg and writev/readv", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    const a = await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "10"]);
    const b = await run("python3", [workloads.tcpPair, "client", String(srv.port), "sendmsg"]);
    const c = await run("python3", [workloads.tcpPair, "client", String(srv.port), "writev"]);
    const recs = data(await settleAndDrain(tracer));

    const egress = (pid: number) => recs.find((r) => r.tgid === pid && r.direction === Direction.Egress);
    const ingress = (pid: number) => recs.find((r) => r.tgid === pid && r.direction === Direction.Ingress);
    expect(egress(a.pid)).toMatchObject({ syscall: Syscall.Sendto, bytes: 10, comm: "python3", dport: srv.port });
    expect(text(egress(a.pid)!)).toBe("pingxxxxxx");
    expect(egress(b.pid)).toMatchObject({ syscall: Syscall.Sendmsg, bytes: 6 });
    expect(text(egress(b.pid)!)).toBe("abcdef");
    expect(ingress(b.pid)).toMatchObject({ syscall: Syscall.Recvmsg, bytes: 11 });
    expect(text(ingress(b.pid)!)).toBe("pong:abcdef");
    expect(egress(c.pid)).toMatchObject({ syscall: Syscall.Writev, bytes: 6 });
    expect(text(egress(c.pid)!)).toBe("wv1wv2");
    expect(ingress(c.pid)).toMatchObject({ syscall: Syscall.Readv, bytes: 11 });
    expect(text(ingress(c.pid)!)).toBe("pong:wv1wv2");
    // the server read each client's bytes at the sequence the client wrote them
    for (const pid of [a.pid, b.pid, c.pid]) {
      const sent = egress(pid)!;
      const got = recs.find((r) => r.tgid === srv.pid && r.direction === Direction.Ingress && r.dport === sent.sport);
      expect(got?.tcpSeq).toBe(sent.tcpSeq);
      expect(got?.bytes).toBe(sent.bytes);
    }
  });

  it("sees a DNS-style UDP exchange on unconnected sockets with correct tuples", async () => {
    const srv = await server("python3", [workloads.udpPair, "server", "0"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    const client = await run("python3", [workloads.udpPair, "client", String(srv.port), "2"]);
    const clientPort = Number(/done (\d+)/.exec(client.stdout)?.[1]);
    const recs = data(await settleAndDrain(tracer));

    const cSend = recs.filter((r) => r.tgid === client.pid && r.direction === Direction.Egress);
    const sRecv = recs.filter((r) => r.tgid === srv.pid && r.direction === Direction.Ingress);
    const sSend = recs.filter((r) => r.tgid === srv.pid && r.direction === Direction.Egress);
    const cRecv = recs.filter((r) => r.tgid === client.pid && r.direction === Direction.Ingress);
    expect(cSend.map(text)).toEqual(["query-0", "query-1"]);
    expect(sRecv.map(text)).toEqual(["query-0", "query-1"]);
    expect(sSend.map(text)).toEqual(["answer:query-0", "answer:query-1"]);
    expect(cRecv.map(text)).toEqual(["answer:query-0", "answer:query-1"]);
    for (const r of [...cSend, ...cRecv]) {
      expect(r).toMatchObject({ l4proto: IPPROTO_UDP, sport: clientPort, dport: srv.port, daddr: "127.0.0.1" });
    }
    for (const r of [...sSend, ...sRecv]) {
      expect(r).toMatchObject({ l4proto: IPPROTO_UDP, sport: srv.port, dport: clientPort, daddr: "127.0.0.1" });
      expect(r.flags & RecordFlag.addrFromArg).toBeTruthy();
      expect(r.flags & RecordFlag.seqValid).toBe(0);
    }
    expect(cSend[0]).toMatchObject({ syscall: Syscall.Sendto });
    expect(sRecv[0]).toMatchObject({ syscall: Syscall.Recvfrom });
  });

  it("sees TCP over IPv6 with v6 addresses", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0", "::1"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    const client = await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "6", "::1"]);
    const recs = data(await settleAndDrain(tracer));
    const sent = recs.find((r) => r.tgid === client.pid && r.direction === Direction.Egress);
    expect(sent).toMatchObject({ family: AF_INET6, saddr: "::1", daddr: "::1", dport: srv.port, bytes: 6 });
    const got = recs.find((r) => r.tgid === srv.pid && r.direction === Direction.Ingress);
    expect(got).toMatchObject({ family: AF_INET6, sport: srv.port, dport: sent!.sport, tcpSeq: sent!.tcpSeq });
  });

  it("emits one record per message for sendmmsg/recvmmsg", async () => {
    const child = spawn(loadgen, ["mmsg"], { stdio: ["pipe", "pipe", "inherit"] });
    children.push(child);
    let out = "";
    const port = await new Promise<number>((resolve) =>
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      }),
    );
    tracer = SocketTracer.open({ ports: [port] });
    child.stdin.end("go\n");
    await new Promise((r) => child.on("exit", r));
    expect(out).toContain("sent 3 received 3");
    const recs = data(await settleAndDrain(tracer));
    const sent = recs.filter((r) => r.syscall === Syscall.Sendmmsg);
    const received = recs.filter((r) => r.syscall === Syscall.Recvmmsg);
    expect(sent.map(text)).toEqual(["mmsg-0", "mmsg-1", "mmsg-2"]);
    expect(sent.map((r) => r.bytes)).toEqual([6, 6, 6]);
    expect(received.map(text)).toEqual(["mmsg-0", "mmsg-1", "mmsg-2"]);
    expect(sent.every((r) => r.dport === port && r.l4proto === IPPROTO_UDP)).toBe(true);
  });

  it("records a read that was already blocked when the tracer attached, with its TCP seq", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0"]);
    const { child } = await startUntil("python3", [workloads.tcpPair, "client", String(srv.port), "wait"], /connected/);
    children.push(child);
    await new Promise((r) => setTimeout(r, 100)); // the server is now blocked in recv()
    tracer = SocketTracer.open({ ports: [srv.port] });
    child.stdin?.end("go\n");
    await new Promise((r) => child.on("exit", r));
    const recs = data(await settleAndDrain(tracer));
    const sent = recs.find((r) => r.tgid === child.pid && r.direction === Direction.Egress);
    const got = recs.find((r) => r.tgid === srv.pid && r.direction === Direction.Ingress);
    expect(text(sent!)).toBe("late");
    expect(text(got!)).toBe("late");
    expect(got!.flags & RecordFlag.seqValid).toBeTruthy();
    expect(got!.tcpSeq).toBe(sent!.tcpSeq);
  });

  it("reports a server socket's close under a port filter, and never reuses its id for the next connection", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "8"]);
    await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "8"]);
    const recs = await settleAndDrain(tracer, [], 300);
    const serverSockets = [
      ...new Set(
        data(recs)
          .filter((r) => r.tgid === srv.pid)
          .map((r) => r.sockId),
      ),
    ];
    expect(serverSockets).toHaveLength(2);
    for (const id of serverSockets) {
      // the kernel zeroes a closing socket's ports; the cached tuple keeps the filter working
      expect(recs.some((r) => r.type === RecordType.sock && r.syscall === Syscall.Close && r.sockId === id)).toBe(true);
      expect(recs.some((r) => r.type === RecordType.tcpState && r.sockId === id && r.newState === 7)).toBe(true);
    }
  });

  it("truncates payloads to the capture size and keeps the true byte count", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0"]);
    tracer = SocketTracer.open({ ports: [srv.port], captureBytes: 1024 });
    const client = await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "5000"]);
    const recs = data(await settleAndDrain(tracer));
    const sent = recs.find((r) => r.tgid === client.pid && r.direction === Direction.Egress);
    expect(sent).toMatchObject({ bytes: 5000, capLen: 1024 });
    expect(sent!.flags & RecordFlag.truncated).toBeTruthy();
    expect(text(sent!)).toBe(`ping${"x".repeat(1020)}`);
    const reply = recs.find((r) => r.tgid === client.pid && r.direction === Direction.Ingress);
    expect(reply!.flags & RecordFlag.truncated).toBe(0);
    expect(tracer.stats().truncated).toBeGreaterThanOrEqual(1);
  });

  it("filters by pid in the kernel", async () => {
    const srv = await server("python3", [workloads.tcpPair, "server", "0"]);
    tracer = SocketTracer.open({ pids: [srv.pid] });
    const client = await run("python3", [workloads.tcpPair, "client", String(srv.port), "send", "8"]);
    const recs = await settleAndDrain(tracer);
    expect(data(recs).some((r) => r.tgid === srv.pid && r.dport !== 0)).toBe(true);
    // TCP state changes run in softirq context: their task fields may be whoever was running
    const fromTasks = recs.filter((r) => r.type !== RecordType.tcpState);
    expect(fromTasks.every((r) => r.tgid === srv.pid)).toBe(true);
    expect(fromTasks.some((r) => r.tgid === client.pid)).toBe(false);
  });

  it("filters by port in the kernel", async () => {
    const wanted = await server("python3", [workloads.tcpPair, "server", "0"]);
    const other = await server("python3", [workloads.tcpPair, "server", "0"]);
    tracer = SocketTracer.open({ ports: [wanted.port] });
    await run("python3", [workloads.tcpPair, "client", String(other.port), "send", "8"]);
    await run("python3", [workloads.tcpPair, "client", String(wanted.port), "send", "8"]);
    const recs = await settleAndDrain(tracer);
    expect(data(recs).length).toBeGreaterThanOrEqual(4);
    expect(recs.every((r) => r.sport === wanted.port || r.dport === wanted.port)).toBe(true);
    expect(recs.some((r) => r.tgid === other.pid)).toBe(false);
  });

  it("never sees the agent's own traffic", async () => {
    const srv = await server(process.execPath, [workloads.httpServer, "0"]);
    tracer = SocketTracer.open({ ports: [srv.port] });
    // this process (the agent) talks to the server itself...
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: srv.port, path: "/from-agent" }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end();
    });
    // ...and so does a child, which must be seen
    const child = await run(process.execPath, [workloads.httpClient, String(srv.port), "1"]);
    const recs = await settleAndDrain(tracer);
    expect(data(recs).some((r) => r.tgid === child.pid)).toBe(true);
    expect(recs.some((r) => r.tgid === process.pid && r.type !== RecordType.tcpState)).toBe(false);
    expect(data(recs).some((r) => text(r).includes("/from-agent") && r.tgid !== srv.pid)).toBe(false);
  });

  it("detaches every program and link on close", () => {
    const t = SocketTracer.open({ ports: [1] });
    const ids = t.programIds();
    expect(ids.length).toBeGreaterThanOrEqual(20);
    const loaded = (id: number) => {
      try {
        execFileSync("bpftool", ["prog", "show", "id", String(id)], { stdio: "pipe" });
        return true;
      } catch {
        return false;
      }
    };
    expect(ids.every(loaded)).toBe(true);
    t.close();
    expect(ids.filter(loaded)).toEqual([]);
    expect(t.isClosed).toBe(true);
    t.close(); // idempotent
  });
});
