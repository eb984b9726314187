import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ReceiverError } from "@kalman/ebpf-receiver";
import { startDemoTopology } from "@kalman/examples";
import type { RequestRecord } from "@kalman/flow-aggregator";
import { createSpanSink } from "@kalman/otlp-bridge";
import type { Span } from "@kalman/span-correlator";
import { PacketPipeline } from "../packet-pipeline.js";
import { Pipeline } from "../pipeline.js";
import { largestTrace, renderWaterfall } from "../waterfall.js";

export interface DemoOptions {
  requests?: number;
  /** Directory for the records and spans files (default kalman-data). */
  dataDir?: string;
  out?: NodeJS.WritableStream;
}

/**
 * The demo: a five-host topology in network namespaces (nginx → Node → Python → Redis and
 * PostgreSQL, plus a DNS lookup), traced with eBPF while a driver sends requests; prints one
 * request's trace as a waterfall and where the data went.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const requests = opts.requests ?? 5;
  const dataDir = resolve(opts.dataDir ?? "kalman-data");
  out.write(
    "kalman demo: starting the topology (client → nginx → node frontend → python api → redis, postgres; dns)\n",
  );
  const topology = await startDemoTopology();
  let pipeline: Pipeline | undefined;
  let packets: PacketPipeline | undefined;
  const records: RequestRecord[] = [];
  const spans: Span[] = [];
  const recordsFile = `${dataDir}/requests.jsonl`;
  mkdirSync(dirname(recordsFile), { recursive: true });
  const sink = createWriteStream(recordsFile, { flags: "a" });
  const spanSink = createSpanSink({ dir: dataDir });
  try {
    try {
      pipeline = new Pipeline({
        tracer: { ports: topology.ports, closeOnSignals: false },
        onRecords: (rs) => {
          records.push(...rs);
          sink.write(rs.map((r) => `${JSON.stringify(r)}\n`).join(""));
        },
        onSpans: (ss) => {
          spans.push(...ss);
          spanSink.add(ss);
        },
        networkSpansHoldMs: 300,
      });
      const p = pipeline;
      // the network's view: every bridge port a request crosses becomes a span between its client and server
      packets = new PacketPipeline({
        targets: [{ netns: `/var/run/netns/${topology.switchNs}` }],
        filter: topology.ports.map((port) => `port ${port}`).join(" or "),
        snapLen: 4096,
        onFlows: () => {},
        onRequests: (rs) => p.addNetworkRecords(rs),
      });
    } catch (e) {
      if (e instanceof ReceiverError) {
        out.write(`kalman demo: cannot start the eBPF tracer\n${e.message}\n`);
        return 2;
      }
      throw e;
    }
    const p = pipeline;
    out.write(
      `tracing ports ${topology.ports.join(", ")} with ${p.tracer.programIds().length} eBPF programs; sending ${requests} requests\n\n`,
    );
    const net = packets as PacketPipeline;
    const timer = setInterval(() => {
      net.pump();
      p.pump();
    }, 5);
    const statuses = await topology.drive(requests);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(timer);
    net.pump();
    p.pump();
    p.releaseHeldSpans();

    const trace = largestTrace(spans);
    out.write(renderWaterfall(trace));
    const byService = new Map<string, number>();
    for (const s of spans)
      byService.set(
        `${s.service.serviceName} ${s.kind}`,
        (byService.get(`${s.service.serviceName} ${s.kind}`) ?? 0) + 1,
      );
    const c = p.correlator.stats();
    const t = p.tracer.stats();
    out.write(`\nrequests sent: ${statuses.length} (status ${[...new Set(statuses)].join(", ")})\n`);
    out.write(
      `request records: ${records.length}; spans: ${spans.length} in ${new Set(spans.map((s) => s.traceId)).size} traces\n`,
    );
    out.write(`spans by service: ${[...byService].map(([k, v]) => `${k} ${v}`).join(", ")}\n`);
    out.write(
      `links: ${c.linkedTcpSeq} by TCP seq, ${c.linkedThread} by thread, ${c.linkedTraceparent} by traceparent, ` +
        `${c.linkedRequestId} by X-Request-ID; ${c.ambiguous} left unlinked as ambiguous\n`,
    );
    out.write(`kernel: ${t.kernelEvents} events, ${t.lostRingFull + t.lostStashFull} lost\n`);
    const n = p.network?.stats();
    const cs = net.capture.stats();
    out.write(
      `network: ${net.packets} packets on the bridge ports (kernel drops ${cs.kernelDrops}), ${n?.joined ?? 0} hops placed in traces\n`,
    );
    await spanSink.flush();
    const ss = spanSink.stats();
    out.write(`\nrecords written to ${recordsFile}\n`);
    out.write(
      `traces: ${ss.exported} spans → ${spanSink.kind} ${spanSink.target}${ss.dropped ? ` (${ss.dropped} dropped)` : ""}\n`,
    );
    out.write(
      "to send traces to a Collector, Jaeger or Tempo instead: OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317 ./kalman demo\n",
    );
    return statuses.every((s) => s === 200) ? 0 : 1;
  } finally {
    packets?.close();
    pipeline?.close();
    await spanSink.shutdown();
    await new Promise((r) => sink.end(r));
    await topology.stop();
  }
}
