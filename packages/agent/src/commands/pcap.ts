import { PacketCapture, type PacketCaptureTarget } from "@kalman/ebpf-receiver";
import {
  captureObservations,
  DecodedPacket,
  DecodeStatus,
  type FlowRecord,
  formatTimeline,
  PacketAggregator,
  PacketDecoder,
  PacketRetention,
  PcapWriter,
  readCaptureFile,
  TcpTimeline,
} from "@kalman/flow-aggregator";
import { formatFlow } from "./replay.js";

export interface PcapOptions {
  /** Read packets from this pcap/pcapng file instead of capturing live. */
  from?: string;
  /** Live capture: namespaces and interfaces (default: this namespace, every interface). */
  targets?: PacketCaptureTarget[];
  /** tcpdump filter applied in the kernel (live) . */
  filter?: string;
  /** Live capture length in seconds (default: until Ctrl-C). */
  durationS?: number;
  /** Flow selection: a flow id (as printed), a port (client or server side), an address. */
  flowId?: number;
  port?: number;
  host?: string;
  /** Write the selected flows' retained packets here. */
  write?: string;
  /** Print each selected TCP connection's header timeline. */
  timeline?: boolean;
  /** Packets kept per flow (default 256). */
  packetsPerFlow?: number;
  /** Bytes kept per packet (default 256). */
  snapLen?: number;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** Resolves to stop a live capture early (tests); SIGINT/SIGTERM also stop it. */
  stop?: Promise<void>;
}

/**
 * `kalman pcap`: watches packets (live or from a file), keeps the most recent packets of every flow
 * in a bounded ring, then writes the selected flows' packets as a pcap and/or prints their TCP
 * header timeline.
 */
export async function pcapCommand(opts: PcapOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  if (!opts.write && !opts.timeline) {
    err.write("kalman pcap: nothing to do: give --write FILE.pcap and/or --timeline\n");
    return 2;
  }
  const snapLen = opts.snapLen ?? 256;
  const retention = new PacketRetention({ maxPacketsPerFlow: opts.packetsPerFlow ?? 256, maxBytesPerPacket: snapLen });
  const flows: FlowRecord[] = [];
  let interfaceOf: (id: number) => { interface: string; netns: string } = (id) => ({ interface: `if${id}`, netns: "" });
  const agg = new PacketAggregator({
    l7: false,
    flows: { describeObservation: (id) => interfaceOf(id) },
    onPacket: (flow, _packet, frame) => retention.addFrame(flow.id, frame),
  });
  const collect = () => {
    for (const f of agg.takeFlowRecords()) flows.push(f);
  };

  if (opts.from) {
    let names: (id: number) => string | undefined = () => undefined;
    interfaceOf = (id) => ({ interface: names(id) ?? `if${id}`, netns: "" });
    let result: ReturnType<typeof readCaptureFile>;
    try {
      result = readCaptureFile(opts.from, (frames) => {
        names = (id) => frames.interfaceName(id);
        agg.ingest(frames);
        collect();
      });
    } catch (e) {
      err.write(`kalman pcap: cannot read ${opts.from}: ${(e as Error).message}\n`);
      return 1;
    }
    if (!result.ok) {
      err.write(`kalman pcap: ${opts.from}: ${result.error}\n`);
      return 1;
    }
  } else {
    const capture = PacketCapture.open({ targets: opts.targets, filter: opts.filter, snapLen });
    interfaceOf = captureObservations(capture);
    err.write(
      `kalman pcap: capturing on ${capture.handles.map((h) => `${h.interface || "all"}@${h.netns || "host"}`).join(", ")}` +
        `${opts.durationS ? ` for ${opts.durationS} s` : " until Ctrl-C"}\n`,
    );
    try {
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          for (let b = capture.drain(); b; b = capture.drain()) agg.ingest(b.cursor());
          agg.tick();
          collect();
        }, 10);
        const done = () => {
          clearInterval(timer);
          clearTimeout(limit);
          process.off("SIGINT", done);
          process.off("SIGTERM", done);
          for (let b = capture.drain(); b; b = capture.drain()) agg.ingest(b.cursor());
          resolve();
        };
        const limit = opts.durationS ? setTimeout(done, opts.durationS * 1000) : undefined;
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
        opts.stop?.then(done);
      });
    } finally {
      const s = capture.stats();
      if (s.kernelDrops) err.write(`kalman pcap: the kernel dropped ${s.kernelDrops} packets (ring full)\n`);
      capture.close();
    }
  }
  agg.flush();
  collect();

  const selected = selectFlows(flows, opts);
  if (selected.length === 0) {
    err.write(`kalman pcap: no flow matched the selection among ${new Set(flows.map((f) => f.flowId)).size} flows\n`);
    for (const f of lastRecords(flows).slice(0, 20)) err.write(`  ${formatFlow(f)}\n`);
    return 1;
  }
  const ids = [...new Set(selected.map((f) => f.flowId))];
  for (const f of lastRecords(selected)) out.write(`${formatFlow(f)}\n`);

  if (opts.write) {
    const types = retention.linkTypes(ids);
    const writer = PcapWriter.toFile(opts.write, { linkType: types[0] ?? 1, snapLen });
    const { written, skippedLinkType } = retention.writePcap(ids, writer);
    writer.close();
    out.write(
      `wrote ${written} packets of ${ids.length} flow(s) to ${opts.write}` +
        `${skippedLinkType ? ` (${skippedLinkType} of another link type left out)` : ""}; open it with wireshark or tshark -r\n`,
    );
  }
  if (opts.timeline) {
    for (const line of timelines(ids, selected, retention)) out.write(`${line}\n`);
  }
  const r = retention.stats();
  if (r.evictedFlows || r.overwritten) {
    err.write(
      `kalman pcap: retention kept the last ${retention.maxPacketsPerFlow} packets per flow: ${r.overwritten} older packets overwritten, ${r.evictedFlows} flows evicted\n`,
    );
  }
  return 0;
}

function selectFlows(flows: FlowRecord[], o: PcapOptions): FlowRecord[] {
  return flows.filter(
    (f) =>
      (o.flowId === undefined || f.flowId === o.flowId) &&
      (o.port === undefined || f.clientPort === o.port || f.serverPort === o.port) &&
      (o.host === undefined || f.clientAddr === o.host || f.serverAddr === o.host),
  );
}

/** The last record of each flow (its totals so far and close type). */
function lastRecords(records: FlowRecord[]): FlowRecord[] {
  const last = new Map<number, FlowRecord>();
  for (const r of records) last.set(r.flowId, r);
  return [...last.values()];
}

/** One header timeline per TCP connection (its flows at every interface merged by time). */
function timelines(ids: number[], selected: FlowRecord[], retention: PacketRetention): string[] {
  const decoder = new PacketDecoder();
  const p = new DecodedPacket();
  const byConnection = new Map<string, Array<{ flowId: number; interface: string }>>();
  for (const f of lastRecords(selected)) {
    if (f.transport !== "tcp" || !ids.includes(f.flowId)) continue;
    const key = `${f.clientAddr}:${f.clientPort} → ${f.serverAddr}:${f.serverPort}`;
    const list = byConnection.get(key) ?? [];
    list.push({ flowId: f.flowId, interface: f.interface });
    byConnection.set(key, list);
  }
  const lines: string[] = [];
  for (const [key, parts] of byConnection) {
    const packets = parts
      .flatMap((part) => retention.packets(part.flowId).map((pkt) => ({ pkt, interface: part.interface })))
      .sort((a, b) => a.pkt.realSec - b.pkt.realSec || a.pkt.realNsec - b.pkt.realNsec);
    const base = packets[0]?.pkt.realSec ?? 0;
    const timeline = new TcpTimeline();
    for (const { pkt, interface: name } of packets) {
      if (decoder.decode(pkt.data, 0, pkt.data.length, pkt.linkType, p) !== DecodeStatus.ok) continue;
      timeline.add(p, pkt.data, (pkt.realSec - base) * 1e9 + pkt.realNsec, name);
    }
    lines.push(`TCP ${key}`, formatTimeline(timeline.rows()), "");
  }
  return lines;
}
