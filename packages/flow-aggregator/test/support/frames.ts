// Frames built by hand for unit tests of the packet path's pure logic (decoder, flow table).
import type { FrameCursor } from "../../src/pcap/frame.js";

export interface SegmentSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** "S", "SA", "A", "PA", "FA", "R", "RA" ... */
  flags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  payload?: string | Uint8Array;
  udp?: boolean;
  vlan?: number;
  /** TCP options bytes (e.g. MSS + window scale on a SYN). */
  options?: number[];
}

const FLAG_BITS: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, A: 16, U: 32 };

function ipv4Bytes(a: string): number[] {
  return a.split(".").map(Number);
}

function ipv6Bytes(a: string): number[] {
  const [head, tail] = a.includes("::") ? a.split("::") : [a, undefined];
  const h = head ? head.split(":").filter(Boolean) : [];
  const t = tail ? tail.split(":").filter(Boolean) : [];
  const words = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t].map((w) => Number.parseInt(w, 16));
  return words.flatMap((w) => [w >> 8, w & 255]);
}

function bytesOf(p: string | Uint8Array | undefined): number[] {
  if (p === undefined) return [];
  return typeof p === "string" ? Array.from(p, (c) => c.charCodeAt(0)) : Array.from(p);
}

/** An IPv4/IPv6 packet with a TCP or UDP header (checksums zero). */
export function ipPacket(s: SegmentSpec): number[] {
  const payload = bytesOf(s.payload);
  let l4: number[];
  if (s.udp) {
    const len = 8 + payload.length;
    l4 = [s.sport >> 8, s.sport & 255, s.dport >> 8, s.dport & 255, len >> 8, len & 255, 0, 0, ...payload];
  } else {
    const opts = s.options ?? [];
    while (opts.length % 4) opts.push(1);
    const hl = 20 + opts.length;
    const seq = (s.seq ?? 0) >>> 0;
    const ack = (s.ack ?? 0) >>> 0;
    const flags = [...(s.flags ?? "A")].reduce((f, ch) => f | (FLAG_BITS[ch] ?? 0), 0);
    const win = s.window ?? 65535;
    l4 = [
      s.sport >> 8,
      s.sport & 255,
      s.dport >> 8,
      s.dport & 255,
      seq >>> 24,
      (seq >>> 16) & 255,
      (seq >>> 8) & 255,
      seq & 255,
      ack >>> 24,
      (ack >>> 16) & 255,
      (ack >>> 8) & 255,
      ack & 255,
      (hl / 4) << 4,
      flags,
      win >> 8,
      win & 255,
      0,
      0,
      0,
      0,
      ...opts,
      ...payload,
    ];
  }
  const proto = s.udp ? 17 : 6;
  if (s.src.includes(":")) {
    const len = l4.length;
    return [0x60, 0, 0, 0, len >> 8, len & 255, proto, 64, ...ipv6Bytes(s.src), ...ipv6Bytes(s.dst), ...l4];
  }
  const total = 20 + l4.length;
  return [
    0x45,
    0,
    total >> 8,
    total & 255,
    0,
    0,
    0x40,
    0,
    64,
    proto,
    0,
    0,
    ...ipv4Bytes(s.src),
    ...ipv4Bytes(s.dst),
    ...l4,
  ];
}

/** An Ethernet frame around an IP packet (optionally 802.1Q tagged). */
export function ethernet(ip: number[], opts: { vlan?: number; v6?: boolean } = {}): Uint8Array {
  const type = opts.v6 ? [0x86, 0xdd] : [0x08, 0x00];
  const macs = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
  const tag = opts.vlan === undefined ? [] : [0x81, 0x00, (opts.vlan >> 8) & 0x0f, opts.vlan & 255];
  return Uint8Array.from([...macs, ...tag, ...type, ...ip]);
}

/** A TCP/UDP segment as an Ethernet frame. */
export function frame(s: SegmentSpec): Uint8Array {
  return ethernet(ipPacket(s), { vlan: s.vlan, v6: s.src.includes(":") });
}

/** The inner frame inside VXLAN (UDP 4789) between two outer hosts. */
export function vxlan(inner: Uint8Array, vni: number, outerSrc: string, outerDst: string): Uint8Array {
  const header = [0x08, 0, 0, 0, (vni >> 16) & 255, (vni >> 8) & 255, vni & 255, 0];
  return frame({
    src: outerSrc,
    dst: outerDst,
    sport: 51000,
    dport: 4789,
    udp: true,
    payload: Uint8Array.from([...header, ...inner]),
  });
}

export interface TimedFrame {
  ns: number;
  bytes: Uint8Array;
  linkType?: number;
  interfaceId?: number;
  /** Wire length when the frame was truncated. */
  wireLen?: number;
}

/** An in-memory FrameCursor over frames (one batch). */
export function frames(list: TimedFrame[]): FrameCursor {
  let i = -1;
  let cur: TimedFrame | undefined;
  return {
    next() {
      i++;
      cur = list[i];
      return cur !== undefined;
    },
    get buffer() {
      return (cur as TimedFrame).bytes;
    },
    get dataOffset() {
      return 0;
    },
    get capLen() {
      return (cur as TimedFrame).bytes.length;
    },
    get wireLen() {
      return (cur as TimedFrame).wireLen ?? (cur as TimedFrame).bytes.length;
    },
    get linkType() {
      return (cur as TimedFrame).linkType ?? 1;
    },
    get interfaceId() {
      return (cur as TimedFrame).interfaceId ?? 0;
    },
    get timeNs() {
      return (cur as TimedFrame).ns;
    },
    get realSec() {
      return 1_700_000_000 + Math.floor((cur as TimedFrame).ns / 1e9);
    },
    get realNsec() {
      return (cur as TimedFrame).ns % 1e9;
    },
  };
}

const MS = 1e6;

/**
 * A TCP conversation builder: keeps seq/ack per side so tests read as the exchange they describe.
 * Client is 198.18.0.1:40000, server 198.18.0.2:80 unless given.
 */
export class Conversation {
  readonly out: TimedFrame[] = [];
  private cseq: number;
  private sseq: number;
  t = 0;

  constructor(
    readonly client = { addr: "198.18.0.1", port: 40000 },
    readonly server = { addr: "198.18.0.2", port: 80 },
    isn: { client: number; server: number } = { client: 1000, server: 5000 },
  ) {
    this.cseq = isn.client;
    this.sseq = isn.server;
  }

  /** Advances time by ms and sends a segment from "c" or "s". */
  send(from: "c" | "s", afterMs: number, flags: string, payload = "", extra: Partial<SegmentSpec> = {}): this {
    this.t += afterMs * MS;
    const c = from === "c";
    const seq = c ? this.cseq : this.sseq;
    const ack = c ? this.sseq : this.cseq;
    this.out.push({
      ns: this.t,
      bytes: frame({
        src: c ? this.client.addr : this.server.addr,
        dst: c ? this.server.addr : this.client.addr,
        sport: c ? this.client.port : this.server.port,
        dport: c ? this.server.port : this.client.port,
        flags,
        seq,
        ack: flags.includes("A") ? ack : 0,
        payload,
        ...extra,
      }),
    });
    const consumed = payload.length + (flags.includes("S") ? 1 : 0) + (flags.includes("F") ? 1 : 0);
    if (extra.seq === undefined) {
      if (c) this.cseq = (this.cseq + consumed) >>> 0;
      else this.sseq = (this.sseq + consumed) >>> 0;
    }
    return this;
  }

  handshake(synToSynAckMs = 1, synAckToAckMs = 2): this {
    return this.send("c", 0, "S").send("s", synToSynAckMs, "SA").send("c", synAckToAckMs, "A");
  }

  /** Current next seq of a side. */
  seq(from: "c" | "s"): number {
    return from === "c" ? this.cseq : this.sseq;
  }
}
