import { basename } from "node:path";
import {
  type FlowRecord,
  type L7ProtocolName,
  PacketAggregator,
  type RequestRecord,
  readCaptureFile,
} from "@kalman/flow-aggregator";
import { formatRecord } from "./run.js";

export interface ReplayOptions {
  file: string;
  /** One JSON object per line ({"type":"flow",...} / {"type":"request",...}) instead of tables. */
  json?: boolean;
  protocols?: L7ProtocolName[];
  /** Keep secrets (Authorization values, SQL literals). */
  raw?: boolean;
  /** Flow log interval while a flow lives, in packet time (default 60 s). */
  flowLogIntervalS?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

const NS_PER_S = 1e9;

function ms(ns: number | undefined): string {
  return ns === undefined ? "-" : `${(ns / 1e6).toFixed(3)}ms`;
}

/** One human line per flow log record. */
export function formatFlow(f: FlowRecord): string {
  const tuple = `${f.transport} ${f.clientAddr}:${f.clientPort} → ${f.serverAddr}:${f.serverPort}`;
  const volume = `pkts ${f.packetsTx}/${f.packetsRx} bytes ${f.bytesTx}/${f.bytesRx}`;
  const tcp =
    f.transport === "tcp"
      ? ` rtt ${ms(f.rttNs)} srt ${ms(f.srt.count ? f.srt.sumNs / f.srt.count : undefined)} art ${ms(
          f.art.count ? f.art.sumNs / f.art.count : undefined,
        )} retrans ${f.retransTx}/${f.retransRx} zwin ${f.zeroWindowTx}/${f.zeroWindowRx} rst ${f.rstClient}/${f.rstServer}`
      : "";
  const end = f.closed ? ` ${f.closeType}` : " open";
  const failure = f.establishFailure ? ` (${f.establishFailure})` : "";
  return `#${f.flowId} ${tuple} [${f.interface}] ${volume}${tcp}${end}${failure}`;
}

/**
 * `kalman replay <file>`: runs a pcap/pcapng capture through the packet path (decode, L4 flow table,
 * TCP reassembly, L7 parsers) offline and prints the flow logs and request records.
 */
export async function replayCapture(opts: ReplayOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const label = basename(opts.file);
  let interfaceName: (id: number) => string | undefined = () => undefined;
  const agg = new PacketAggregator({
    flows: {
      reportIntervalMs: (opts.flowLogIntervalS ?? 60) * 1000,
      describeObservation: (id) => ({ interface: interfaceName(id) ?? `${label}#${id}`, netns: "" }),
    },
    l7: { protocols: opts.protocols, redact: opts.raw !== true },
    onPacket: (_flow, _packet, frame) => {
      // timeNs counts from the first frame's whole second
      if (baseSec < 0) baseSec = frame.realSec - Math.floor(frame.timeNs / NS_PER_S);
    },
  });
  let baseSec = -1;
  let lastTick = 0;
  let lastNs = 0;
  const flows: FlowRecord[] = [];
  const requests: RequestRecord[] = [];
  const collect = () => {
    for (const f of agg.takeFlowRecords()) flows.push(f);
    for (const r of agg.takeRequestRecords()) requests.push(r);
    if (opts.json) emit();
  };
  const emit = () => {
    let lines = "";
    for (const f of flows.splice(0)) lines += `${JSON.stringify({ type: "flow", ...withTime(f, baseSec) })}\n`;
    for (const r of requests.splice(0)) lines += `${JSON.stringify({ type: "request", ...r })}\n`;
    if (lines) out.write(lines);
  };
  let result: ReturnType<typeof readCaptureFile>;
  try {
    result = readCaptureFile(opts.file, (frames) => {
      interfaceName = (id) => frames.interfaceName(id);
      agg.ingest(frames);
      lastNs = frames.timeNs;
      if (lastNs - lastTick >= NS_PER_S) {
        agg.tick(lastNs);
        lastTick = lastNs;
        collect();
      }
    });
  } catch (e) {
    err.write(`kalman replay: cannot read ${opts.file}: ${(e as Error).message}\n`);
    return 1;
  }
  if (!result.ok) {
    err.write(`kalman replay: ${opts.file}: ${result.error}\n`);
    return 1;
  }
  agg.flush(lastNs);
  collect();
  const stats = agg.stats();
  if (!opts.json) {
    out.write(`flows (${flows.length} records; tx = client → server, rx = server → client):\n`);
    for (const f of flows) out.write(`  ${formatFlow(f)}\n`);
    out.write(`requests (${requests.length}):\n`);
    for (const r of requests) out.write(`  ${formatRecord(r)}\n`);
  }
  const d = stats.decode;
  const summary =
    `replayed ${result.stats.packets} frames from ${opts.file}: ${d.decoded} TCP/UDP, ${d.notTcpUdp} other, ` +
    `${d.malformed} malformed, ${d.truncated} truncated, ${d.fragments} fragments, ${d.unknownLink} unknown link; ` +
    `${stats.flows.flowsCreated} flows, ${agg.l7?.stats().records ?? 0} requests; file: ${result.stats.malformed} malformed records, ${result.stats.truncatedBytes} truncated bytes\n`;
  (opts.json ? err : out).write(summary);
  return 0;
}

/** Flow times as wall-clock ISO strings (the file's own clock). */
function withTime(f: FlowRecord, baseSec: number): FlowRecord & { startTime: string; endTime: string } {
  const at = (ns: number) => new Date((baseSec + ns / NS_PER_S) * 1000).toISOString();
  return { ...f, startTime: at(f.flowStartNs), endTime: at(f.reportEndNs) };
}
