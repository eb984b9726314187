import {
  Direction,
  ReceiverError,
  RecordFlag,
  RecordType,
  SocketRole,
  SocketTracer,
  Syscall,
} from "@kalman/ebpf-receiver";
import { run, startUntil, stop, workloads } from "@kalman/examples";

interface SeenEvent {
  kind: string;
  tMs: number;
  pid: number;
  comm: string;
  role: string;
  dir: string;
  local: string;
  remote: string;
  bytes: number;
  seq: string;
  preview: string;
}

const ROLE: Record<number, string> = { [SocketRole.Client]: "client", [SocketRole.Server]: "server" };
const SOCK_KIND: Record<number, string> = {
  [Syscall.Connect]: "connect",
  [Syscall.Accept]: "accept",
  [Syscall.Accept4]: "accept",
  [Syscall.Close]: "close",
};

function preview(b: Buffer, max = 40): string {
  const s = b.subarray(0, max).toString("latin1");
  return JSON.stringify(s).slice(1, -1) + (b.length > max ? "…" : "");
}

/**
 * The built-in demo: a Node HTTP server and a keep-alive client on loopback, observed by the
 * eBPF socket tracer. Prints every event it saw and how the client's and server's TCP sequence
 * numbers line up (the link that later joins spans into traces).
 */
export async function runDemo(opts: { requests?: number; out?: NodeJS.WritableStream } = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const requests = opts.requests ?? 4;
  const { child: server, match } = await startUntil(process.execPath, [workloads.httpServer, "0"], /listening (\d+)/);
  const port = Number(match[1]);
  let tracer: SocketTracer | undefined;
  try {
    try {
      tracer = SocketTracer.open({ ports: [port] });
    } catch (e) {
      if (e instanceof ReceiverError) {
        out.write(`kalman demo: cannot start the eBPF tracer\n${e.message}\n`);
        return 2;
      }
      throw e;
    }
    out.write(`kalman demo: tracing TCP port ${port} (${tracer.programIds().length} eBPF programs attached)\n`);
    out.write(
      `workload: node client.mjs → node server.mjs, ${requests} keep-alive requests, one with a 3000-byte body\n\n`,
    );
    const started = process.hrtime.bigint();
    await run(process.execPath, [workloads.httpClient, String(port), String(requests - 1)]);
    await run(process.execPath, [workloads.httpClient, String(port), "1", "3000"]);
    await new Promise((r) => setTimeout(r, 100));

    const seen: SeenEvent[] = [];
    const egressSeqs = new Map<number, number>();
    const ingressSeqs = new Map<number, number>();
    let base = 0;
    for (let batch = tracer.drainOnce(); batch; batch = tracer.drainOnce()) {
      const c = batch.cursor();
      while (c.next()) {
        const ts = c.type === RecordType.data ? c.enterNs : c.tsNs;
        if (!base) base = ts;
        const ev: SeenEvent = {
          kind: "",
          tMs: (ts - base) / 1e6,
          pid: c.tgid,
          comm: c.comm(),
          role: ROLE[c.role] ?? "?",
          dir: "",
          local: `${c.saddr()}:${c.sport}`,
          remote: `${c.daddr()}:${c.dport}`,
          bytes: 0,
          seq: "",
          preview: "",
        };
        if (c.type === RecordType.data) {
          ev.kind = c.direction === Direction.Egress ? "send" : "recv";
          ev.dir = c.direction === Direction.Egress ? "→" : "←";
          ev.bytes = c.bytes;
          ev.seq = c.flags & RecordFlag.seqValid ? String(c.tcpSeq) : "";
          ev.preview = preview(c.payload()) + (c.flags & RecordFlag.truncated ? " [truncated]" : "");
          const seqs = c.direction === Direction.Egress ? egressSeqs : ingressSeqs;
          if (c.flags & RecordFlag.seqValid) seqs.set(c.tcpSeq, c.tgid);
        } else if (c.type === RecordType.sock) {
          ev.kind = SOCK_KIND[c.syscall] ?? "sock";
        } else {
          continue; // TCP state changes: counted below, not listed
        }
        seen.push(ev);
      }
    }
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;

    out.write(
      `${"t(ms)".padStart(8)}  ${"process".padEnd(14)} ${"role".padEnd(6)} ${"event".padEnd(7)} ${"local → remote".padEnd(34)} ${"bytes".padStart(6)}  ${"tcp seq".padEnd(10)}  payload\n`,
    );
    for (const e of seen) {
      out.write(
        `${e.tMs.toFixed(2).padStart(8)}  ${`${e.comm}/${e.pid}`.padEnd(14)} ${e.role.padEnd(6)} ${e.kind.padEnd(7)} ${`${e.local} → ${e.remote}`.padEnd(34)} ${String(e.bytes || "").padStart(6)}  ${e.seq.padEnd(10)}  ${e.preview}\n`,
      );
    }
    let linked = 0;
    for (const [seq, pid] of egressSeqs) if (ingressSeqs.has(seq) && ingressSeqs.get(seq) !== pid) linked++;
    const s = tracer.stats();
    out.write(
      `\n${seen.length} events in ${elapsedMs.toFixed(0)} ms from ${new Set(seen.map((e) => e.pid)).size} processes\n`,
    );
    out.write(`${linked} writes matched to the peer's read by TCP sequence number (no headers injected)\n`);
    out.write(
      `kernel: ${s.kernelEvents} records, ${s.lostRingFull} lost (ring full), ${s.truncated} truncated to the capture size\n`,
    );
    out.write("\nnext: L7 request logs, traces and OTLP export land with the issues that follow (see README).\n");
    return 0;
  } finally {
    tracer?.close();
    await stop(server);
  }
}
