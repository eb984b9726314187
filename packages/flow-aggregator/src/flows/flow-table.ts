import { type DecodedPacket, formatIp, TcpFlag } from "../packets/decode.js";
import type { FlowCloseType, FlowRecord, FlowTableStats, LatencySummary } from "./types.js";

export interface FlowTableOptions {
  /** Flows tracked at once; past it the least recently seen flow is evicted (default 262144). */
  maxFlows?: number;
  /** A flow log record per live flow every this often (default 60 s). */
  reportIntervalMs?: number;
  /** Idle timeout of an established TCP flow (default 300 s). */
  establishedTimeoutMs?: number;
  /** How long an unanswered SYN or an unacknowledged SYN-ACK waits (default 5 s). */
  openingTimeoutMs?: number;
  /** How long a flow stays after FIN from both sides or a RST, for stray retransmissions (default 2 s). */
  closingTimeoutMs?: number;
  /** A flow with FIN from one side only ends after this idle time (default 35 s). */
  halfCloseTimeoutMs?: number;
  /** Idle timeout of a UDP flow (default 30 s). */
  udpTimeoutMs?: number;
  /** Names an observation point key (interface, netns) once per flow. */
  describeObservation?: (observation: number) => { interface: string; netns: string };
}

enum TcpState {
  none = 0,
  synSent = 1,
  synAckSeen = 2,
  established = 3,
  reset = 4,
}

// Interval counters, per direction (index + d, d = 0 from side A, 1 from side B).
enum C {
  packets = 0,
  bytes = 2,
  payload = 4,
  retrans = 6,
  zeroWindow = 8,
  outOfOrder = 10,
  lost = 12,
  rst = 14,
  fin = 16,
  syn = 18,
  synAck = 20,
  srtSum = 22,
  srtCount = 23,
  srtMax = 24,
  artSum = 25,
  artCount = 26,
  artMax = 27,
  citSum = 28,
  citCount = 29,
  citMax = 30,
  size = 31,
}

// TCP sequence state, per direction, after the counters in the same array.
enum S {
  nextSeq = 31,
  highTs = 33,
  lastAck = 35,
  dupAcks = 37,
  pendingTs = 39,
  pendingEnd = 41,
  lastWindow = 43,
  end = 45,
}

const NS_PER_MS = 1e6;
export const DEFAULT_MAX_FLOWS = 262_144;
/** tshark's out-of-order window when the handshake RTT is unknown. */
const DEFAULT_OOO_NS = 3 * NS_PER_MS;

/** A TCP segment that arrived after a hole, held for in-order delivery to the L7 parsers. */
export interface HeldSegment {
  seq: number;
  /** Captured payload bytes (a copy). */
  data: Uint8Array;
  /** Payload length on the wire. */
  bytes: number;
  ns: number;
}

/** One bidirectional flow at one observation point. Side A sent the first packet seen. */
export class Flow {
  // table links
  nextInBucket: Flow | undefined = undefined;
  older: Flow | undefined = undefined;
  newer: Flow | undefined = undefined;
  // identity
  hash = 0;
  observation = 0;
  family = 0;
  protocol = 0;
  vlanId = -1;
  vni = -1;
  a0 = 0;
  a1 = 0;
  a2 = 0;
  a3 = 0;
  b0 = 0;
  b1 = 0;
  b2 = 0;
  b3 = 0;
  aPort = 0;
  bPort = 0;
  /** 0: side A is the client, 1: side B is. */
  clientSide = 0;
  fromHandshake = false;
  // lifetime
  startNs = 0;
  lastNs = 0;
  reportStartNs = 0;
  reported = false;
  state = TcpState.none;
  finMask = 0;
  /** Side that sent the first RST, -1 none. */
  rstSide = -1;
  establishFailure: FlowRecord["establishFailure"] = undefined;
  synTs = -1;
  synAckTs = -1;
  rttServerNs = -1;
  rttClientNs = -1;
  requestTs = -1;
  lastResponseTs = -1;
  totalPackets0 = 0;
  totalPackets1 = 0;
  totalBytes0 = 0;
  totalBytes1 = 0;
  /** Interval counters (C) then sequence state (S): one allocation per flow. */
  readonly c = new Float64Array(S.end);
  /** Next TCP seq handed to the L7 parsers, per direction (-1: none yet). */
  streamNext0 = -1;
  streamNext1 = -1;
  /** Out-of-order segments waiting for a hole to fill, per direction (packet L7 reassembly). */
  held0: HeldSegment[] | undefined = undefined;
  held1: HeldSegment[] | undefined = undefined;
  // names, resolved once
  interfaceName = "";
  netns = "";
  addrA = "";
  addrB = "";

  constructor(readonly id: number) {
    this.c.fill(-1, C.size);
    this.c[S.dupAcks] = 0;
    this.c[S.dupAcks + 1] = 0;
  }
}

/**
 * Bidirectional L4 flow table with DeepFlow's TCP performance metrics: per flow and per report
 * interval, volume, handshake RTTs, srt/art/cit, retransmissions, zero windows, out-of-order,
 * resets and establishment failures. Bounded: least recently seen flows are evicted (counted).
 * Feed decoded packets in time order with packet(); call tick() about once a second.
 */
export class FlowTable {
  private readonly buckets = new Map<number, Flow>();
  /** Recency list: oldest at head. */
  private head: Flow | undefined;
  private tail: Flow | undefined;
  private size = 0;
  private nextId = 1;
  private out: FlowRecord[] = [];
  private lastNs = 0;
  private readonly opts: Required<Omit<FlowTableOptions, "describeObservation">>;
  private readonly describe: FlowTableOptions["describeObservation"];
  private readonly counters = { flowsCreated: 0, flowsClosed: 0, flowsEvicted: 0, packets: 0, records: 0 };
  /** Listeners told when a flow ends (the L7 stage closes its connection). */
  onClose: ((flow: Flow) => void) | undefined;

  constructor(options: FlowTableOptions = {}) {
    this.opts = {
      maxFlows: options.maxFlows ?? DEFAULT_MAX_FLOWS,
      reportIntervalMs: options.reportIntervalMs ?? 60_000,
      establishedTimeoutMs: options.establishedTimeoutMs ?? 300_000,
      openingTimeoutMs: options.openingTimeoutMs ?? 5_000,
      closingTimeoutMs: options.closingTimeoutMs ?? 2_000,
      halfCloseTimeoutMs: options.halfCloseTimeoutMs ?? 35_000,
      udpTimeoutMs: options.udpTimeoutMs ?? 30_000,
    };
    this.describe = options.describeObservation;
  }

  /** Accounts one decoded TCP/UDP packet seen at `observation` at time `ns`; returns its flow and direction. */
  packet(p: DecodedPacket, observation: number, ns: number, wireLength: number): Flow {
    this.counters.packets++;
    if (ns > this.lastNs) this.lastNs = ns;
    const hash = flowHash(p, observation);
    let flow = this.buckets.get(hash);
    let d = -1;
    while (flow) {
      d = matchDirection(flow, p, observation);
      if (d >= 0) break;
      flow = flow.nextInBucket;
    }
    if (!flow) {
      flow = this.create(p, observation, ns, hash);
      d = 0;
    } else if (flow !== this.tail) {
      this.unlink(flow);
      this.append(flow);
    }
    this.lastDirection = d;
    flow.lastNs = ns;
    const c = flow.c;
    add(c, C.packets + d, 1);
    add(c, C.bytes + d, wireLength);
    add(c, C.payload + d, p.payloadBytes);
    if (d === 0) {
      flow.totalPackets0++;
      flow.totalBytes0 += wireLength;
    } else {
      flow.totalPackets1++;
      flow.totalBytes1 += wireLength;
    }
    if (p.protocol === 6) this.tcp(flow, p, d, ns);
    return flow;
  }

  /** Direction of the last packet() within its flow: 0 from side A, 1 from side B. */
  lastDirection = 0;

  /**
   * Closes flows past their timeouts and emits periodic reports. `nowNs` is on the packets' clock
   * (defaults to the newest packet time seen).
   */
  tick(nowNs: number = this.lastNs): void {
    const o = this.opts;
    const interval = o.reportIntervalMs * NS_PER_MS;
    for (let f = this.head; f; ) {
      const next = f.newer;
      const idle = nowNs - f.lastNs;
      const why = this.expiry(f, idle);
      if (why) this.close(f, why, nowNs);
      else if (nowNs - f.reportStartNs >= interval) this.report(f, nowNs, undefined);
      f = next;
    }
  }

  /** Ends every flow (shutdown, end of a replay): each gets a final record. */
  flush(nowNs: number = this.lastNs): void {
    for (let f = this.head; f; ) {
      const next = f.newer;
      const why = this.expiry(f, Number.POSITIVE_INFINITY);
      this.close(f, why === "timeout" ? "flushed" : (why ?? "flushed"), nowNs);
      f = next;
    }
  }

  /** Flow log records produced since the last call. */
  takeRecords(): FlowRecord[] {
    const r = this.out;
    this.out = [];
    return r;
  }

  stats(): FlowTableStats {
    return { flows: this.size, ...this.counters };
  }

  /** Live flows, oldest first (for views and tests). */
  *flows(): IterableIterator<Flow> {
    for (let f = this.head; f; f = f.newer) yield f;
  }

  private tcp(f: Flow, p: DecodedPacket, d: number, ns: number): void {
    const c = f.c;
    const s = c;
    const flags = p.tcpFlags;
    const syn = (flags & TcpFlag.syn) !== 0;
    const ack = (flags & TcpFlag.ack) !== 0;
    const fin = (flags & TcpFlag.fin) !== 0;
    const rst = (flags & TcpFlag.rst) !== 0;
    const len = p.payloadBytes;

    // handshake
    if (syn && !ack) {
      add(c, C.syn + d, 1);
      if (f.synTs < 0 && f.state === TcpState.none) {
        f.state = TcpState.synSent;
        f.clientSide = d;
        f.fromHandshake = true;
      }
      // a retried SYN: the handshake RTT counts from the SYN that got answered (as tshark's initial_rtt)
      if (f.state === TcpState.synSent && d === f.clientSide) f.synTs = ns;
    } else if (syn && ack) {
      add(c, C.synAck + d, 1);
      if (f.synAckTs < 0) {
        f.synAckTs = ns;
        if (f.state === TcpState.synSent && f.clientSide !== d) f.rttServerNs = ns - f.synTs;
        if (!f.fromHandshake) {
          f.clientSide = 1 - d;
          f.fromHandshake = true;
        }
        if (f.state < TcpState.synAckSeen) f.state = TcpState.synAckSeen;
      }
    } else if (ack && f.state === TcpState.synAckSeen && d === f.clientSide && !rst) {
      f.rttClientNs = ns - f.synAckTs;
      f.state = TcpState.established;
    } else if (f.state === TcpState.none && !rst) {
      f.state = TcpState.established; // joined mid-connection
    }

    if (rst) {
      add(c, C.rst + d, 1);
      if (f.rstSide < 0) f.rstSide = d;
      if (f.state === TcpState.synSent && d !== f.clientSide) f.establishFailure = "connection_refused";
      f.state = TcpState.reset;
    }
    if (fin) {
      add(c, C.fin + d, 1);
      f.finMask |= 1 << d;
    }
    if (p.window === 0 && !syn && !fin && !rst) add(c, C.zeroWindow + d, 1);

    // sequence analysis, after tshark's: retransmission, out-of-order, lost segments, keep-alives
    const segLen = len + (syn ? 1 : 0) + (fin ? 1 : 0);
    const seq = p.seq;
    const o = 1 - d;
    if (segLen > 0 && !rst) {
      const next = s[S.nextSeq + d] as number;
      const end = (seq + segLen) >>> 0;
      if (next < 0) {
        s[S.nextSeq + d] = end;
        s[S.highTs + d] = ns;
      } else {
        const diff = seqDiff(seq, next);
        if (diff >= 0) {
          if (diff > 0) add(c, C.lost + d, 1); // a segment the observation point never saw
          s[S.nextSeq + d] = end;
          s[S.highTs + d] = ns;
        } else if (len <= 1 && !syn && !fin && seqDiff(seq, next - 1) === 0) {
          // keep-alive: one byte (or none) just below the next expected seq
        } else {
          const fast = (s[S.dupAcks + o] as number) >= 2 && s[S.lastAck + o] === seq;
          const ooo = f.rttServerNs >= 0 && f.rttClientNs >= 0 ? f.rttServerNs + f.rttClientNs : DEFAULT_OOO_NS;
          if (!fast && ns - (s[S.highTs + d] as number) < ooo && end !== next) add(c, C.outOfOrder + d, 1);
          else add(c, C.retrans + d, 1);
          if (seqDiff(end, next) > 0) {
            s[S.nextSeq + d] = end;
            s[S.highTs + d] = ns;
          }
        }
      }
    }
    // duplicate ACKs (for fast retransmissions of the other side)
    if (ack && segLen === 0 && !rst) {
      if (s[S.lastAck + d] === p.ack && s[S.lastWindow + d] === p.window) add(c, S.dupAcks + d, 1);
      else s[S.dupAcks + d] = 0;
    } else if (segLen > 0) {
      s[S.dupAcks + d] = 0;
    }
    if (ack) {
      s[S.lastAck + d] = p.ack;
      s[S.lastWindow + d] = p.window;
    }

    // srt: data from one side, then a pure ACK from the other covering it
    if (len > 0) {
      if ((s[S.pendingTs + d] as number) < 0) s[S.pendingTs + d] = ns;
      s[S.pendingEnd + d] = (seq + len) >>> 0;
    }
    if (ack && (s[S.pendingTs + o] as number) >= 0 && seqDiff(p.ack, s[S.pendingEnd + o] as number) >= 0) {
      if (len === 0 && !syn && !fin && !rst) {
        const srt = ns - (s[S.pendingTs + o] as number);
        add(c, C.srtSum, srt);
        add(c, C.srtCount, 1);
        if (srt > (c[C.srtMax] as number)) c[C.srtMax] = srt;
      }
      s[S.pendingTs + o] = -1;
    }

    // art (request data -> first response data) and cit (response -> next request)
    if (len > 0) {
      if (d === f.clientSide) {
        if (f.requestTs < 0) {
          f.requestTs = ns;
          if (f.lastResponseTs >= 0) {
            const cit = ns - f.lastResponseTs;
            add(c, C.citSum, cit);
            add(c, C.citCount, 1);
            if (cit > (c[C.citMax] as number)) c[C.citMax] = cit;
          }
        }
      } else {
        if (f.requestTs >= 0) {
          const art = ns - f.requestTs;
          add(c, C.artSum, art);
          add(c, C.artCount, 1);
          if (art > (c[C.artMax] as number)) c[C.artMax] = art;
          f.requestTs = -1;
        }
        f.lastResponseTs = ns;
      }
    }
  }

  private expiry(f: Flow, idleNs: number): FlowCloseType | undefined {
    const o = this.opts;
    const idleMs = idleNs / NS_PER_MS;
    if (f.protocol !== 6) return idleMs >= o.udpTimeoutMs ? "timeout" : undefined;
    if (f.state === TcpState.reset) {
      if (idleMs < o.closingTimeoutMs) return undefined;
      if (f.establishFailure === "connection_refused") return "connection_refused";
      return f.rstSide === f.clientSide ? "client_rst" : "server_rst";
    }
    if (f.finMask === 3) return idleMs >= o.closingTimeoutMs ? "fin" : undefined;
    if (f.state === TcpState.synSent) {
      if (idleMs < o.openingTimeoutMs) return undefined;
      f.establishFailure = "server_syn_miss";
      return "server_syn_miss";
    }
    if (f.state === TcpState.synAckSeen) {
      if (idleMs < o.openingTimeoutMs) return undefined;
      f.establishFailure = "client_ack_miss";
      return "client_ack_miss";
    }
    if (f.finMask !== 0) return idleMs >= o.halfCloseTimeoutMs ? "half_close_timeout" : undefined;
    return idleMs >= o.establishedTimeoutMs ? "timeout" : undefined;
  }

  private create(p: DecodedPacket, observation: number, ns: number, hash: number): Flow {
    if (this.size >= this.opts.maxFlows && this.head) {
      this.counters.flowsEvicted++;
      this.close(this.head, "evicted", ns);
    }
    const f = new Flow(this.nextId++);
    f.hash = hash;
    f.observation = observation;
    f.family = p.family;
    f.protocol = p.protocol;
    f.vlanId = p.vlanId;
    f.vni = p.vni;
    f.a0 = p.src0;
    f.a1 = p.src1;
    f.a2 = p.src2;
    f.a3 = p.src3;
    f.b0 = p.dst0;
    f.b1 = p.dst1;
    f.b2 = p.dst2;
    f.b3 = p.dst3;
    f.aPort = p.srcPort;
    f.bPort = p.dstPort;
    // until a handshake says otherwise: the side on the service-looking port is the server
    f.clientSide = serverByPorts(p.srcPort, p.dstPort) === 0 ? 1 : 0;
    f.startNs = f.lastNs = f.reportStartNs = ns;
    if (this.describe) {
      const obs = this.describe(observation);
      f.interfaceName = obs.interface;
      f.netns = obs.netns;
    } else {
      f.interfaceName = `if${observation}`;
    }
    f.nextInBucket = this.buckets.get(hash);
    this.buckets.set(hash, f);
    this.append(f);
    this.size++;
    this.counters.flowsCreated++;
    return f;
  }

  private close(f: Flow, why: FlowCloseType, nowNs: number): void {
    this.report(f, Math.max(nowNs, f.lastNs), why);
    this.onClose?.(f);
    this.unlink(f);
    const first = this.buckets.get(f.hash);
    if (first === f) {
      if (f.nextInBucket) this.buckets.set(f.hash, f.nextInBucket);
      else this.buckets.delete(f.hash);
    } else {
      for (let g = first; g; g = g.nextInBucket) {
        if (g.nextInBucket === f) {
          g.nextInBucket = f.nextInBucket;
          break;
        }
      }
    }
    this.size--;
    this.counters.flowsClosed++;
  }

  private report(f: Flow, nowNs: number, closeType: FlowCloseType | undefined): void {
    addresses(f);
    const c = f.c;
    const t = f.clientSide; // index of the client's direction
    const r = 1 - t;
    const aIsClient = t === 0;
    const rttKnown = f.rttServerNs >= 0 && f.rttClientNs >= 0;
    const rec: FlowRecord = {
      flowId: f.id,
      transport: f.protocol === 6 ? "tcp" : "udp",
      clientAddr: aIsClient ? f.addrA : f.addrB,
      clientPort: aIsClient ? f.aPort : f.bPort,
      serverAddr: aIsClient ? f.addrB : f.addrA,
      serverPort: aIsClient ? f.bPort : f.aPort,
      directionFrom: f.fromHandshake ? "handshake" : "ports",
      interface: f.interfaceName,
      netns: f.netns,
      vlanId: f.vlanId >= 0 ? f.vlanId : undefined,
      vni: f.vni >= 0 ? f.vni : undefined,
      flowStartNs: f.startNs,
      reportStartNs: f.reportStartNs,
      reportEndNs: nowNs,
      durationNs: f.lastNs - f.startNs,
      packetsTx: c[C.packets + t] as number,
      packetsRx: c[C.packets + r] as number,
      bytesTx: c[C.bytes + t] as number,
      bytesRx: c[C.bytes + r] as number,
      payloadTx: c[C.payload + t] as number,
      payloadRx: c[C.payload + r] as number,
      totalPacketsTx: aIsClient ? f.totalPackets0 : f.totalPackets1,
      totalPacketsRx: aIsClient ? f.totalPackets1 : f.totalPackets0,
      totalBytesTx: aIsClient ? f.totalBytes0 : f.totalBytes1,
      totalBytesRx: aIsClient ? f.totalBytes1 : f.totalBytes0,
      newFlow: !f.reported,
      closed: closeType !== undefined,
      closeType,
      synCount: (c[C.syn] as number) + (c[C.syn + 1] as number),
      synAckCount: (c[C.synAck] as number) + (c[C.synAck + 1] as number),
      rttServerNs: f.rttServerNs >= 0 ? f.rttServerNs : undefined,
      rttClientNs: f.rttClientNs >= 0 ? f.rttClientNs : undefined,
      rttNs: rttKnown ? f.rttServerNs + f.rttClientNs : undefined,
      srt: summary(c, C.srtSum),
      art: summary(c, C.artSum),
      cit: summary(c, C.citSum),
      retransTx: c[C.retrans + t] as number,
      retransRx: c[C.retrans + r] as number,
      zeroWindowTx: c[C.zeroWindow + t] as number,
      zeroWindowRx: c[C.zeroWindow + r] as number,
      outOfOrderTx: c[C.outOfOrder + t] as number,
      outOfOrderRx: c[C.outOfOrder + r] as number,
      lostTx: c[C.lost + t] as number,
      lostRx: c[C.lost + r] as number,
      rstClient: c[C.rst + t] as number,
      rstServer: c[C.rst + r] as number,
      finClient: c[C.fin + t] as number,
      finServer: c[C.fin + r] as number,
      establishFailure: f.establishFailure,
    };
    c.fill(0, 0, C.size);
    f.reported = true;
    f.reportStartNs = nowNs;
    this.counters.records++;
    this.out.push(rec);
  }

  private append(f: Flow): void {
    f.older = this.tail;
    f.newer = undefined;
    if (this.tail) this.tail.newer = f;
    else this.head = f;
    this.tail = f;
  }

  private unlink(f: Flow): void {
    if (f.older) f.older.newer = f.newer;
    else this.head = f.newer;
    if (f.newer) f.newer.older = f.older;
    else this.tail = f.older;
    f.older = f.newer = undefined;
  }
}

/** Formats the flow's addresses once. */
export function addresses(f: Flow): void {
  if (f.addrA) return;
  f.addrA = formatIp(f.family, f.a0, f.a1, f.a2, f.a3);
  f.addrB = formatIp(f.family, f.b0, f.b1, f.b2, f.b3);
}

function add(c: Float64Array, at: number, v: number): void {
  c[at] = (c[at] as number) + v;
}

function summary(c: Float64Array, at: number): LatencySummary {
  return { sumNs: c[at] as number, count: c[at + 1] as number, maxNs: c[at + 2] as number };
}

/** Signed distance a - b in TCP sequence space. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Same hash for both directions: endpoint hashes are combined symmetrically. */
function flowHash(p: DecodedPacket, observation: number): number {
  const ha = endpointHash(p.src0, p.src1, p.src2, p.src3, p.srcPort);
  const hb = endpointHash(p.dst0, p.dst1, p.dst2, p.dst3, p.dstPort);
  let h = (ha + hb) ^ Math.imul(ha ^ hb, 0x9e3779b1);
  h = Math.imul(h ^ p.protocol ^ (p.vni << 8) ^ ((p.vlanId & 0xfff) << 20), 0x85ebca6b);
  h ^= Math.imul(observation | 0, 0xc2b2ae35) ^ Math.floor(observation / 4294967296);
  return h ^ (h >>> 15);
}

function endpointHash(w0: number, w1: number, w2: number, w3: number, port: number): number {
  let h = Math.imul(w0 ^ 0x27d4eb2f, 0x165667b1);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0x27d4eb2f);
  return Math.imul(h ^ port, 0x9e3779b1) ^ (h >>> 16);
}

/** 0 when the packet goes A→B of this flow, 1 when B→A, -1 when it is another flow. */
function matchDirection(f: Flow, p: DecodedPacket, observation: number): number {
  if (f.observation !== observation || f.protocol !== p.protocol || f.vni !== p.vni || f.vlanId !== p.vlanId) return -1;
  if (
    f.aPort === p.srcPort &&
    f.bPort === p.dstPort &&
    f.a0 === p.src0 &&
    f.b0 === p.dst0 &&
    f.a1 === p.src1 &&
    f.a2 === p.src2 &&
    f.a3 === p.src3 &&
    f.b1 === p.dst1 &&
    f.b2 === p.dst2 &&
    f.b3 === p.dst3
  ) {
    return 0;
  }
  if (
    f.aPort === p.dstPort &&
    f.bPort === p.srcPort &&
    f.a0 === p.dst0 &&
    f.b0 === p.src0 &&
    f.a1 === p.dst1 &&
    f.a2 === p.dst2 &&
    f.a3 === p.dst3 &&
    f.b1 === p.src1 &&
    f.b2 === p.src2 &&
    f.b3 === p.src3
  ) {
    return 1;
  }
  return -1;
}

/** Ephemeral ports (Linux default range starts at 32768): the other side is the server. */
const EPHEMERAL_FROM = 32768;

/** Which port looks like the service: 0 the first, 1 the second. */
export function serverByPorts(first: number, second: number): 0 | 1 {
  const firstEphemeral = first >= EPHEMERAL_FROM;
  const secondEphemeral = second >= EPHEMERAL_FROM;
  if (firstEphemeral !== secondEphemeral) return firstEphemeral ? 1 : 0;
  return first <= second ? 0 : 1;
}
