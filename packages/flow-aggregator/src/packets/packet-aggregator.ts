import { L7Aggregator, type L7AggregatorOptions } from "../aggregator.js";
import {
  addresses,
  DEFAULT_MAX_FLOWS,
  type Flow,
  FlowTable,
  type FlowTableOptions,
  type HeldSegment,
} from "../flows/flow-table.js";
import type { FlowRecord, FlowTableStats } from "../flows/types.js";
import type { PayloadView } from "../payload.js";
import type { FrameCursor } from "../pcap/frame.js";
import type { RequestRecord } from "../types.js";
import { type DecodeCounters, DecodedPacket, DecodeStatus, PacketDecoder, TcpFlag } from "./decode.js";

export interface PacketAggregatorOptions {
  flows?: FlowTableOptions;
  /** Parse L7 from TCP/UDP payloads (default true); options of the L7 stage. */
  l7?: false | L7AggregatorOptions;
  /** UDP ports carrying VXLAN (default 4789, 8472). */
  vxlanPorts?: number[];
  /** Told about every decoded packet with its flow (packet retention, header timelines). */
  onPacket?: (flow: Flow, packet: DecodedPacket, frames: FrameCursor) => void;
}

export interface PacketAggregatorStats {
  decode: DecodeCounters;
  flows: FlowTableStats;
  /** TCP payload bytes seen again (retransmissions) and not fed twice to the parsers. */
  l7DuplicateBytes: number;
  /** Segments that arrived after a hole and were held for reassembly. */
  l7HeldSegments: number;
  /** Held segments fed in order once the hole filled. */
  l7Reordered: number;
  /** Held segments fed after giving up on a hole (too many held, or the flow ended): the parsers saw missing bytes. */
  l7HolesGivenUp: number;
}

/**
 * The packet path: frames -> decode (Ethernet, VLAN, IPv4/6, TCP/UDP, VXLAN) -> L4 flow table with
 * TCP performance metrics and flow logs -> per-direction TCP stream -> the same L7 parsers as the
 * socket path, giving request records observed at the interface.
 */
export class PacketAggregator {
  readonly flows: FlowTable;
  readonly l7: L7Aggregator | undefined;
  private readonly decoder: PacketDecoder;
  private readonly packet = new DecodedPacket();
  private readonly view = new PacketPayloadView();
  private readonly onPacket: PacketAggregatorOptions["onPacket"];
  private duplicateBytes = 0;
  private heldSegments = 0;
  private reordered = 0;
  private holesGivenUp = 0;

  constructor(options: PacketAggregatorOptions = {}) {
    this.decoder = new PacketDecoder({ vxlanPorts: options.vxlanPorts });
    this.flows = new FlowTable(options.flows);
    // one L7 connection per flow: as many as the flow table holds (it closes them with the flow)
    this.l7 =
      options.l7 === false
        ? undefined
        : new L7Aggregator({ maxConnections: options.flows?.maxFlows ?? DEFAULT_MAX_FLOWS, ...options.l7 });
    this.onPacket = options.onPacket;
    this.flows.onClose = (flow) => {
      if (this.l7) {
        this.drainHeld(flow, 0, true);
        this.drainHeld(flow, 1, true);
        this.l7.closeConnection(flow.id);
      }
    };
  }

  /** Consumes every frame of a source (a batch or a whole file). */
  ingest(frames: FrameCursor): void {
    const p = this.packet;
    const decoder = this.decoder;
    const table = this.flows;
    while (frames.next()) {
      const buf = frames.buffer;
      const status = decoder.decode(buf, frames.dataOffset, frames.capLen, frames.linkType, p);
      if (status !== DecodeStatus.ok) continue;
      const ns = frames.timeNs;
      const flow = table.packet(p, frames.interfaceId, ns, frames.wireLen);
      this.onPacket?.(flow, p, frames);
      if (this.l7 && p.payloadBytes > 0) this.feedL7(flow, table.lastDirection, buf, ns);
    }
    this.l7?.endBatch();
  }

  /** Timeouts and periodic flow reports; call about once a second (packet clock). */
  tick(nowNs?: number): void {
    this.flows.tick(nowNs);
    this.l7?.tick(nowNs);
  }

  /** Ends every flow and pending request (end of a replay, shutdown). */
  flush(nowNs?: number): void {
    this.flows.flush(nowNs);
    this.l7?.tick(Number.MAX_SAFE_INTEGER);
  }

  takeFlowRecords(): FlowRecord[] {
    return this.flows.takeRecords();
  }

  takeRequestRecords(): RequestRecord[] {
    return this.l7?.takeRecords() ?? [];
  }

  stats(): PacketAggregatorStats {
    return {
      decode: { ...this.decoder.counters },
      flows: this.flows.stats(),
      l7DuplicateBytes: this.duplicateBytes,
      l7HeldSegments: this.heldSegments,
      l7Reordered: this.reordered,
      l7HolesGivenUp: this.holesGivenUp,
    };
  }

  private feedL7(flow: Flow, d: number, buf: Uint8Array, ns: number): void {
    const p = this.packet;
    if (p.protocol !== 6) {
      this.deliver(flow, d, false, buf, p.payloadOffset, p.payloadCaptured, p.payloadBytes, 0, ns);
      return;
    }
    if ((p.tcpFlags & TcpFlag.rst) !== 0) return;
    const expected = d === 0 ? flow.streamNext0 : flow.streamNext1;
    const ahead = expected < 0 ? 0 : (p.seq - expected) | 0;
    if (ahead > 0) {
      // a hole before this segment: hold it (copied, bounded) until the hole fills
      this.hold(flow, d, p.seq, buf.slice(p.payloadOffset, p.payloadOffset + p.payloadCaptured), p.payloadBytes, ns);
      return;
    }
    this.deliverTcp(flow, d, buf, p.payloadOffset, p.payloadCaptured, p.payloadBytes, p.seq, ns);
    this.drainHeld(flow, d, false);
  }

  /** Feeds a TCP segment in order, without the bytes the parsers already had (retransmissions). */
  private deliverTcp(
    flow: Flow,
    d: number,
    buf: Uint8Array,
    offset: number,
    captured: number,
    bytes: number,
    seq: number,
    ns: number,
  ): void {
    const expected = d === 0 ? flow.streamNext0 : flow.streamNext1;
    if (expected >= 0) {
      const behind = (expected - seq) | 0;
      if (behind >= bytes) {
        this.duplicateBytes += bytes;
        return;
      }
      if (behind > 0) {
        this.duplicateBytes += behind;
        seq = expected;
        bytes -= behind;
        const skip = Math.min(behind, captured);
        offset += skip;
        captured -= skip;
      }
    }
    if (d === 0) flow.streamNext0 = (seq + bytes) >>> 0;
    else flow.streamNext1 = (seq + bytes) >>> 0;
    this.deliver(flow, d, true, buf, offset, captured, bytes, seq, ns);
  }

  private deliver(
    flow: Flow,
    d: number,
    tcp: boolean,
    buf: Uint8Array,
    offset: number,
    captured: number,
    bytes: number,
    seq: number,
    ns: number,
  ): void {
    const v = this.view;
    v.point(flow, d, tcp, buf, offset, captured, bytes, seq, ns);
    this.l7?.ingest(v);
  }

  private hold(flow: Flow, d: number, seq: number, data: Uint8Array, bytes: number, ns: number): void {
    let held = d === 0 ? flow.held0 : flow.held1;
    if (!held) {
      held = [];
      if (d === 0) flow.held0 = held;
      else flow.held1 = held;
    }
    let i = held.length;
    while (i > 0 && (((held[i - 1] as HeldSegment).seq - seq) | 0) > 0) i--;
    held.splice(i, 0, { seq, data, bytes, ns });
    this.heldSegments++;
    let heldBytes = 0;
    for (const h of held) heldBytes += h.data.length;
    // the hole is not filling: give it up, the parsers see it as missing bytes
    if (held.length > MAX_HELD_SEGMENTS || heldBytes > MAX_HELD_BYTES) this.drainHeld(flow, d, true);
  }

  /** Feeds held segments that are now in order; with `force`, all of them (holes become gaps). */
  private drainHeld(flow: Flow, d: number, force: boolean): void {
    const held = d === 0 ? flow.held0 : flow.held1;
    if (!held || held.length === 0) return;
    while (held.length) {
      const h = held[0] as HeldSegment;
      const expected = d === 0 ? flow.streamNext0 : flow.streamNext1;
      if (!force && ((h.seq - expected) | 0) > 0) break;
      if (((h.seq - expected) | 0) > 0) this.holesGivenUp++;
      else this.reordered++;
      held.shift();
      if (((h.seq - expected) | 0) > 0) {
        // jump the hole: the L7 stage sees the seq gap and counts it as missing bytes
        if (d === 0) flow.streamNext0 = h.seq;
        else flow.streamNext1 = h.seq;
      }
      this.deliverTcp(flow, d, h.data, 0, h.data.length, h.bytes, h.seq, h.ns);
    }
  }
}

/** Out-of-order segments held per flow direction while waiting for a hole to fill. */
const MAX_HELD_SEGMENTS = 32;
const MAX_HELD_BYTES = 256 * 1024;

/** A TCP segment's (or UDP datagram's) payload as the L7 stage reads it; side A of the flow is "local". */
class PacketPayloadView implements PayloadView {
  connId = 0;
  egress = false;
  role = 0;
  transport: "tcp" | "udp" = "tcp";
  startNs = 0;
  endNs = 0;
  bytes = 0;
  tcpSeq = 0;
  seqValid = false;
  readonly pid = 0;
  readonly tid = 0;
  localPort = 0;
  remotePort = 0;
  netns = 0;
  readonly cgroupId = 0;
  interfaceName: string | undefined = undefined;
  private flow: Flow | undefined;
  private buf: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;

  point(
    flow: Flow,
    d: number,
    tcp: boolean,
    buf: Uint8Array,
    offset: number,
    captured: number,
    bytes: number,
    seq: number,
    ns: number,
  ): void {
    this.flow = flow;
    this.connId = flow.id;
    this.egress = d === 0;
    this.role = flow.fromHandshake ? (flow.clientSide === 0 ? 1 : 2) : 0;
    this.transport = tcp ? "tcp" : "udp";
    this.startNs = this.endNs = ns;
    this.bytes = bytes;
    this.tcpSeq = seq;
    this.seqValid = tcp;
    this.localPort = flow.aPort;
    this.remotePort = flow.bPort;
    const ns2 = Number(flow.netns);
    this.netns = Number.isFinite(ns2) ? ns2 : 0;
    this.interfaceName = flow.interfaceName;
    this.buf = buf;
    this.start = offset;
    this.end = offset + captured;
  }

  payload(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }
  localAddr(): string {
    addresses(this.flow as Flow);
    return (this.flow as Flow).addrA;
  }
  remoteAddr(): string {
    addresses(this.flow as Flow);
    return (this.flow as Flow).addrB;
  }
  comm(): string {
    return "";
  }
}
