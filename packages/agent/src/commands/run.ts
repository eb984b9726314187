import { lookup } from "node:dns/promises";
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { ReceiverError } from "@kalman/ebpf-receiver";
import type { L7ProtocolName, RequestRecord } from "@kalman/flow-aggregator";
import {
  createLogSink,
  createMetricsPipeline,
  createSpanSink,
  FlowMetricsRecorder,
  type LogSink,
  type MetricsPipeline,
  type SpanSink,
} from "@kalman/otlp-bridge";
import { exportEndpoints } from "../config/probe.js";
import { expandPorts, type KalmanConfig, parsePortSpec } from "../config/schema.js";
import { setHeapGrowth } from "../heap.js";
import { startPodWatcher } from "../k8s/index.js";
import { PacketPipeline } from "../packet-pipeline.js";
import { Pipeline, type ServerEndpoint } from "../pipeline.js";
import { K8S_SELECTION_NEEDS_CLUSTER, ProcessSelector } from "../selection/selector.js";
import { warmUp } from "../warm-up.js";

/** Pump interval while events flow, and the longest one while idle (ms; packet rings are smaller: 10). */
const PUMP_MS = 5;
/** Synthetic requests run through the stages before attaching (about 0.2 s here; 0 drops at a 20k req/s start, 7.5k without). */
const WARM_UP_REQUESTS = 1000;
const IDLE_PUMP_MS = 40;
const IDLE_PUMP_MS_WITH_PACKETS = 10;

export interface RunIo {
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** Where keys came from (for the summary); from loadConfig. */
  sources?: Map<string, string>;
  file?: string;
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

/**
 * The environment the exporters see: the process's, with the OTel keys replaced by the effective
 * configuration (file < env < flags), so one resolution rule holds for every signal.
 */
export function exporterEnv(config: KalmanConfig, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env = { ...base };
  const set = (name: string, value: string | undefined) => {
    if (value === undefined) delete env[name];
    else env[name] = value;
  };
  const o = config.otlp;
  set("OTEL_EXPORTER_OTLP_ENDPOINT", o.endpoint);
  set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", o.tracesEndpoint);
  set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", o.metricsEndpoint);
  set("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", o.logsEndpoint);
  set("OTEL_EXPORTER_OTLP_PROTOCOL", o.protocol);
  // "none" turns a signal off; "otlp" keeps the variable as given (OTEL_TRACES_EXPORTER=otlp without an
  // endpoint means the SDK's localhost default, the key's default means the embedded files)
  const signal = (name: string, exporter: "otlp" | "none") =>
    set(name, exporter === "none" ? "none" : base[name]?.trim() === "none" ? undefined : base[name]);
  signal("OTEL_TRACES_EXPORTER", o.tracesExporter);
  signal("OTEL_LOGS_EXPORTER", o.logsExporter);
  signal("OTEL_METRICS_EXPORTER", o.metricsExporter);
  set("OTEL_SERVICE_NAME", config.service.name);
  const attrs = Object.entries(config.service.resourceAttributes);
  set(
    "OTEL_RESOURCE_ATTRIBUTES",
    attrs.length ? attrs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join(",") : undefined,
  );
  return env;
}

/** "otlp-grpc http://…", "file kalman-data/traces.jsonl", or "off" for a signal turned off. */
function destination(sink: { kind: string; target: string }): string {
  if (sink.kind !== "none") return `${sink.kind} ${sink.target}`;
  return sink.target && sink.target !== "none" ? `off ${sink.target}` : "off";
}

/** Addresses and ports of the OTLP backends: requests to them are the agent's own exports. */
async function ownExportServers(config: KalmanConfig): Promise<ServerEndpoint[]> {
  const out: ServerEndpoint[] = [];
  for (const t of exportEndpoints(config)) {
    const u = new URL(t.url);
    const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    const host = u.hostname.replace(/^\[|\]$/g, "");
    let addrs: string[] = [];
    try {
      addrs = (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      // unresolvable: the startup check already said so, if it ran
    }
    if (addrs.some((a) => a.startsWith("127.") || a === "::1")) addrs.push("127.0.0.1", "::1", "::ffff:127.0.0.1");
    out.push({ addrs: [...new Set(addrs)], port });
  }
  return out;
}

/** `kalman run`: trace this host, print request records live, write them as JSON lines, export over OTLP. */
export async function runAgent(config: KalmanConfig, io: RunIo = {}): Promise<number> {
  if (config.memory.heapGrowthPercent > 0) setHeapGrowth(config.memory.heapGrowthPercent);
  const out = io.out ?? process.stdout;
  const err = io.err ?? process.stderr;
  const file = config.output.requests ? resolve(config.output.requests) : undefined;
  const dataDir = config.output.dataDir;
  const print = config.output.print;
  let selector: ProcessSelector;
  const portRanges = config.ebpf.ports === undefined ? undefined : parsePortSpec(config.ebpf.ports);
  const kernelPorts = Array.isArray(portRanges) ? expandPorts(portRanges) : undefined;
  const env = exporterEnv(config);
  const headers = config.otlp.headers;
  const excludeServers = await ownExportServers(config);

  if (file) mkdirSync(dirname(file), { recursive: true });
  const sink = file ? createWriteStream(file, { flags: "a" }) : undefined;
  let recordsSince = 0;
  const onRecords = (records: RequestRecord[]) => {
    recordsSince += records.length;
    if (print) for (const r of records) out.write(`${formatRecord(r)}\n`);
    if (!sink) return;
    let lines = "";
    for (const r of records) lines += `${JSON.stringify(r)}\n`;
    sink.write(lines);
  };
  let pipeline: Pipeline | undefined;
  let spans: SpanSink | undefined;
  let metrics: MetricsPipeline | undefined;
  let logs: LogSink | undefined;
  let pods: Awaited<ReturnType<typeof startPodWatcher>>;
  let packets: PacketPipeline | undefined;
  try {
    // K8s tags (pod, namespace, workload, labels) when in a cluster or KUBECONFIG is set
    pods = await startPodWatcher(process.env, {
      warn: (m, f) => err.write(`kalman run: ${m} ${JSON.stringify(f ?? {})}\n`),
      info: () => undefined,
    });
    const podWatcher = pods;
    // selection rules on K8s namespace / pod labels look pods up through the watcher (an error without one)
    selector = new ProcessSelector({ ...config.selection, pods: podWatcher });
    let services: Pipeline["services"] | undefined;
    spans = createSpanSink({ dir: dataDir, env, headers });
    // request records also go out as OTLP logs (trace-linked), or to <dataDir>/logs.jsonl, with the spans' tags
    logs = createLogSink({
      dir: dataDir,
      env,
      headers,
      serviceOf: (r) => (services as Pipeline["services"]).resolve(r.pid, r.comm),
    });
    const logSink = logs;
    const spanSink = spans;
    metrics = createMetricsPipeline({
      env,
      headers,
      exporter: config.otlp.metricsExporter === "none" ? "none" : "auto",
      prometheus: config.prometheus.port === undefined ? false : { port: config.prometheus.port },
      serviceResourceAttributes: (service) => services?.attributesOfService(service),
    });
    const metricsPipeline = metrics;
    // compiled before the kernel side attaches: a busy host's first second is not dropped while V8 compiles
    try {
      warmUp(WARM_UP_REQUESTS);
    } catch (e) {
      err.write(`kalman run: warm-up failed, starting cold: ${(e as Error).message}\n`);
    }
    pipeline = new Pipeline({
      tracer: {
        ports: kernelPorts,
        captureBytes: config.ebpf.captureBytes,
        closeOnSignals: false,
        tls: config.tls.enabled ? { pids: config.tls.pids.length ? config.tls.pids : undefined } : false,
      },
      aggregator: {
        protocols: config.protocols.length ? (config.protocols as L7ProtocolName[]) : undefined,
        redact: config.redact,
      },
      selection: selector,
      excludeServers,
      onRecords: (rs) => {
        onRecords(rs);
        logSink.add(rs);
      },
      // a signal turned off costs nothing: no spans are built, no metrics recorded
      onSpans: spanSink.kind === "none" ? undefined : (ss) => spanSink.add(ss),
      onRecordsWithServices:
        metricsPipeline.kind === "none" && config.prometheus.port === undefined
          ? undefined
          : (rs, serviceOf) => metricsPipeline.record(rs, serviceOf),
      enrichers: podWatcher ? [podWatcher.enricher()] : undefined,
      // socket spans wait briefly for the packet path's hops of the same request
      networkSpansHoldMs: config.packets.enabled && config.packets.l7 ? 300 : undefined,
    });
    services = pipeline.services;
    if (config.packets.enabled) {
      // the network's view: L4 flows with TCP metrics, exported as flow logs and kalman.flow/tcp metrics
      const flowMetrics = new FlowMetricsRecorder(metricsPipeline.meterProvider);
      const namespaces = config.packets.netns.length ? config.packets.netns : [""];
      packets = new PacketPipeline({
        targets: namespaces.map((netns) => ({
          netns,
          interfaces: config.packets.interfaces.length ? config.packets.interfaces : undefined,
        })),
        filter: config.packets.filter || undefined,
        snapLen: config.packets.snapLen,
        flowLogIntervalS: config.packets.flowLogIntervalSeconds,
        onFlows: (fs) => {
          logSink.addFlows(fs);
          flowMetrics.record(fs);
        },
        onRequests: config.packets.l7
          ? (rs) => {
              (pipeline as Pipeline).addNetworkRecords(rs);
              logSink.add(rs);
            }
          : undefined,
        l7: {
          protocols: config.protocols.length ? (config.protocols as L7ProtocolName[]) : undefined,
          redact: config.redact,
        },
      });
    }
  } catch (e) {
    sink?.end();
    pipeline?.close();
    pods?.stop();
    await spans?.shutdown();
    await metrics?.shutdown();
    await logs?.shutdown();
    if (e instanceof ReceiverError) {
      err.write(`kalman run: cannot start the eBPF tracer\n${e.message}\n`);
      return 2;
    }
    if ((e as Error).message === K8S_SELECTION_NEEDS_CLUSTER) {
      err.write(`kalman run: selection: ${K8S_SELECTION_NEEDS_CLUSTER}\n`);
      return 2;
    }
    err.write(`kalman run: ${(e as Error).message}\n`);
    return 1;
  }
  const tracer = pipeline.tracer;
  await metrics.ready;
  const readyMs = performance.now();
  const kernelPids = selector.kernelPids();
  const filters = [
    selector.describe(),
    kernelPorts?.length ? `sockets on ports ${String(config.ebpf.ports)}` : "",
    kernelPids ? "pid allowlist in the kernel" : "",
    config.tls.enabled ? `TLS plaintext from ${tracer.tlsTargets().length} binaries` : "TLS plaintext off",
    packets
      ? `packets on ${packets.capture.handles.map((h) => `${h.interface || "all interfaces"}@${h.netns || "host"}`).join(", ")} → flow logs${config.packets.l7 ? ", network spans" : ""}`
      : "",
  ].filter(Boolean);
  err.write(
    `kalman run: ${tracer.programIds().length} eBPF programs attached (${filters.join("; ")}); ` +
      `${file ? `request records → ${file}; ` : ""}${config.redact ? "" : "raw: secrets NOT redacted; "}traces → ${destination(spans)}; logs → ${destination(logs)}; ` +
      `metrics → ${destination(metrics)}${metrics.prometheusUrl ? `, Prometheus ${metrics.prometheusUrl}` : ""}` +
      `${pods ? `; K8s pods → ${pods.stats().pods} on this node` : ""}\n` +
      `kalman run: attached and exporting ${readyMs.toFixed(0)} ms after start${io.file ? `; config ${io.file}` : ""}\n`,
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
  const deadline = config.durationSeconds ? Date.now() + config.durationSeconds * 1000 : Number.POSITIVE_INFINITY;
  const statusEveryMs = config.status.intervalSeconds * 1000;
  let lastStatus = Date.now();
  let lastEvents = 0;
  let lastFiltered = 0;
  let sleepMs = PUMP_MS;
  try {
    while (!stopping && Date.now() < deadline) {
      const seen = pipeline.events + (packets?.packets ?? 0);
      pipeline.pump();
      packets?.pump();
      // idle: wake less often (the kernel rings hold what comes meanwhile); busy: every PUMP_MS
      const busy = pipeline.events + (packets?.packets ?? 0) !== seen;
      sleepMs = busy ? PUMP_MS : Math.min(sleepMs * 2, packets ? IDLE_PUMP_MS_WITH_PACKETS : IDLE_PUMP_MS);
      const now = Date.now();
      if (statusEveryMs > 0 && now - lastStatus >= statusEveryMs) {
        const s = tracer.stats();
        const sel = selector.stats();
        const sp = spans.stats();
        const lg = logs.stats();
        const secs = (now - lastStatus) / 1000;
        err.write(
          `status: ${((pipeline.events - lastEvents) / secs).toFixed(0)} events/s, ${(recordsSince / secs).toFixed(1)} requests/s; ` +
            `spans exported ${sp.exported}, logs exported ${lg.exported}; ` +
            `drops: kernel ${s.lostRingFull + s.lostStashFull}, spans ${sp.dropped}, logs ${lg.dropped}; ` +
            `filtered ${sel.eventsFiltered - lastFiltered} events (${sel.processesFiltered} processes left out, ${sel.processesSelected} traced); ` +
            `connections ${pipeline.aggregator.stats().connections}` +
            `${packets ? `; packets ${packets.packets} (kernel drops ${packets.capture.stats().kernelDrops}), flows ${packets.aggregator.flows.stats().flows}` : ""}\n`,
        );
        lastEvents = pipeline.events;
        lastFiltered = sel.eventsFiltered;
        recordsSince = 0;
        lastStatus = now;
      }
      await new Promise((r) => setTimeout(r, sleepMs));
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    const s = tracer.stats();
    packets?.close(); // its last hops reach the pipeline before it releases the held spans
    pipeline.close();
    const a = pipeline.aggregator.stats();
    pods?.stop();
    await spans.shutdown();
    await metrics.shutdown();
    await logs.shutdown();
    const sp = spans.stats();
    const lg = logs.kind === "none" ? undefined : logs.stats();
    const sel = selector.stats();
    const links = pipeline.correlator.stats().linksEvicted;
    if (sink) await new Promise((r) => sink.end(r));
    err.write(
      `kalman run: stopped. ${a.records} requests recorded; kernel lost ${s.lostRingFull + s.lostStashFull}; ` +
        `${a.connectionsUnknown} connections of unknown protocol, ${a.malformed} malformed messages; ` +
        `selection filtered ${sel.eventsFiltered} events of ${sel.processesFiltered} processes, ` +
        `${pipeline.ownExportRecords} requests to our own OTLP backend; ` +
        `${links ? `${links} client spans dropped early from the full TCP-seq index; ` : ""}` +
        `${lg ? `logs exported ${lg.exported}, dropped ${lg.dropped}; ` : ""}` +
        // last on the line: tests and scripts read the span accounting from its end
        `spans exported ${sp.exported}, dropped ${sp.dropped}${sp.lastError ? ` (last error: ${sp.lastError})` : ""}\n`,
    );
  }
  return 0;
}
