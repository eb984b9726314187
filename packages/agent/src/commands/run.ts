import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ReceiverError, type SocketTracerOptions } from "@kalman/ebpf-receiver";
import type { L7ProtocolName, RequestRecord } from "@kalman/flow-aggregator";
import {
  createLogSink,
  createMetricsPipeline,
  createSpanSink,
  type LogSink,
  type MetricsPipeline,
  type SpanSink,
} from "@kalman/otlp-bridge";
import { startPodWatcher } from "../k8s/index.js";
import { Pipeline } from "../pipeline.js";

export interface RunOptions {
  ports?: number[];
  pids?: number[];
  protocols?: L7ProtocolName[];
  /** JSON-lines file for request records. */
  output: string;
  /** Directory of the embedded trace sink when no OTLP endpoint is configured (default kalman-data). */
  dataDir?: string;
  /** Stop after this many seconds (default: until SIGINT/SIGTERM). */
  durationS?: number;
  captureBytes?: number;
  /** Keep secrets (Authorization values, query strings, SQL literals). */
  raw?: boolean;
  /** Serve Prometheus metrics on 127.0.0.1:<port> (off by default). */
  prometheusPort?: number;
  /** Print one line per request (default true). */
  print?: boolean;
  /** TLS plaintext capture (default on); `false` turns it off. */
  tls?: SocketTracerOptions["tls"];
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

function ms(ns: number): string {
  const v = ns / 1e6;
  return v >= 100 ? `${v.toFixed(0)}ms` : `${v.toFixed(2)}ms`;
}

/** One human line per request record. */
export function formatRecord(r: RequestRecord): string {
  const what = [r.requestType, r.resource].filter(Boolean).join(" ") || "-";
  const result = r.code !== undefined ? `${r.code} ${r.status}` : r.status;
  const peer =
    r.observationPoint === "client" ? `→ ${r.serverAddr}:${r.serverPort}` : `← ${r.clientAddr}:${r.clientPort}`;
  return `${r.protocol.padEnd(10)} ${what.slice(0, 60).padEnd(60)} ${result.padEnd(18)} ${ms(r.durationNs).padStart(9)}  ${r.comm}/${r.pid} ${peer} [${r.observationPoint}]`;
}

/** `kalman run`: trace this host, print request records live and write them as JSON lines. */
export async function runAgent(opts: RunOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const file = resolve(opts.output);
  mkdirSync(dirname(file), { recursive: true });
  const sink = createWriteStream(file, { flags: "a" });
  let recordsSince = 0;
  const onRecords = (records: RequestRecord[]) => {
    recordsSince += records.length;
    let lines = "";
    for (const r of records) {
      lines += `${JSON.stringify(r)}\n`;
      if (opts.print !== false) out.write(`${formatRecord(r)}\n`);
    }
    sink.write(lines);
  };
  let pipeline: Pipeline;
  let spans: SpanSink | undefined;
  let metrics: MetricsPipeline | undefined;
  let logs: LogSink | undefined;
  let pods: Awaited<ReturnType<typeof startPodWatcher>>;
  try {
    // K8s tags (pod, namespace, workload, labels) when in a cluster or KUBECONFIG is set
    pods = await startPodWatcher(process.env, {
      warn: (m, f) => err.write(`kalman run: ${m} ${JSON.stringify(f ?? {})}\n`),
      info: () => undefined,
    });
    const podWatcher = pods;
    let services: Pipeline["services"] | undefined;
    spans = createSpanSink({ dir: opts.dataDir ?? "kalman-data" });
    // request records also go out as OTLP logs (trace-linked), or to kalman-data/logs.jsonl, with the spans' tags
    logs = createLogSink({
      dir: opts.dataDir ?? "kalman-data",
      serviceOf: (r) => (services as Pipeline["services"]).resolve(r.pid, r.comm),
    });
    const logSink = logs;
    const spanSink = spans;
    metrics = createMetricsPipeline({
      prometheus: opts.prometheusPort === undefined ? false : { port: opts.prometheusPort },
      serviceResourceAttributes: (service) => services?.attributesOfService(service),
    });
    const metricsPipeline = metrics;
    pipeline = new Pipeline({
      tracer: {
        ports: opts.ports,
        pids: opts.pids,
        captureBytes: opts.captureBytes,
        closeOnSignals: false,
        tls: opts.tls,
      },
      aggregator: { protocols: opts.protocols, redact: !opts.raw },
      onRecords: (rs) => {
        onRecords(rs);
        logSink.add(rs);
      },
      onSpans: (ss) => spanSink.add(ss),
      onRecordsWithServices: (rs, serviceOf) => metricsPipeline.record(rs, serviceOf),
      enrichers: podWatcher ? [podWatcher.enricher()] : undefined,
    });
    services = pipeline.services;
  } catch (e) {
    sink.end();
    pods?.stop();
    await spans?.shutdown();
    await metrics?.shutdown();
    await logs?.shutdown();
    if (e instanceof ReceiverError) {
      err.write(`kalman run: cannot start the eBPF tracer\n${e.message}\n`);
      return 2;
    }
    err.write(`kalman run: ${(e as Error).message}\n`);
    return 2;
  }
  const tracer = pipeline.tracer;
  await metrics.ready;
  const filters = [
    opts.ports?.length ? `ports ${opts.ports.join(",")}` : "",
    opts.pids?.length ? `pids ${opts.pids.join(",")}` : "",
  ].filter(Boolean);
  const tlsNote =
    opts.tls === false ? "TLS plaintext off" : `TLS plaintext from ${tracer.tlsTargets().length} binaries`;
  err.write(
    `kalman run: ${tracer.programIds().length} eBPF programs attached (${filters.join("; ") || "all processes"}; ${tlsNote}); ` +
      `request records → ${file}${opts.raw ? " (raw: secrets NOT redacted)" : ""}; traces → ${spans.kind} ${spans.target}; logs → ${logs.kind} ${logs.target}; ` +
      `metrics → ${metrics.kind} ${metrics.target}${metrics.prometheusUrl ? `, Prometheus ${metrics.prometheusUrl}` : ""}` +
      `${pods ? `; K8s pods → ${pods.stats().pods} on this node` : ""}\n`,
  );

  let stopping = false;
  // first signal: flush exporters and detach; a second one: leave at once (the kernel drops the probes with us)
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      err.write(`kalman run: second ${signal}, exiting without flushing\n`);
      process.exit(130);
    }
    stopping = true;
    err.write(`kalman run: ${signal}, flushing and detaching (send it again to exit at once)\n`);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const deadline = opts.durationS ? Date.now() + opts.durationS * 1000 : Number.POSITIVE_INFINITY;
  let lastStatus = Date.now();
  let lastEvents = 0;
  try {
    while (!stopping && Date.now() < deadline) {
      pipeline.pump();
      const now = Date.now();
      if (now - lastStatus >= 10_000) {
        const s = tracer.stats();
        const secs = (now - lastStatus) / 1000;
        err.write(
          `status: ${((pipeline.events - lastEvents) / secs).toFixed(0)} events/s, ${(recordsSince / secs).toFixed(1)} requests/s, ` +
            `lost ${s.lostRingFull + s.lostStashFull}, connections ${pipeline.aggregator.stats().connections}, ` +
            `spans exported ${spans.stats().exported} (dropped ${spans.stats().dropped})\n`,
        );
        lastEvents = pipeline.events;
        recordsSince = 0;
        lastStatus = now;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    const s = tracer.stats();
    pipeline.close();
    const a = pipeline.aggregator.stats();
    pods?.stop();
    await spans.shutdown();
    await metrics.shutdown();
    await logs.shutdown();
    const sp = spans.stats();
    await new Promise((r) => sink.end(r));
    err.write(
      `kalman run: stopped. ${a.records} requests recorded; kernel lost ${s.lostRingFull + s.lostStashFull}; ` +
        `${a.connectionsUnknown} connections of unknown protocol, ${a.malformed} malformed messages; ` +
        `spans exported ${sp.exported}, dropped ${sp.dropped}${sp.lastError ? ` (last error: ${sp.lastError})` : ""}\n`,
    );
  }
  return 0;
}
