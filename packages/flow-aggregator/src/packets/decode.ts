import { formatAddress } from "@kalman/ebpf-receiver";

// Frame bytes -> the L3/L4 fields the flow table needs, into one reused object. Never throws.

/** pcap LINKTYPE values the decoder understands. */
export const LinkType = {
  null: 0,
  ethernet: 1,
  raw: 101,
  linuxSll: 113,
  ipv4: 228,
  ipv6: 229,
  linuxSll2: 276,
} as const;

export const TcpFlag = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
} as const;

/** Why a frame was not decoded to an L4 packet. */
export enum DecodeStatus {
  ok = 0,
  /** Not IP (ARP, LLDP, ...) or not TCP/UDP (ICMP, ...): skipped, not an error. */
  notTcpUdp = 1,
  /** A non-first IP fragment: no L4 header. */
  fragment = 2,
  /** Headers cut by the capture length. */
  truncated = 3,
  /** A header field out of range (IHL < 5, data offset < 5, lengths beyond the frame, ...). */
  malformed = 4,
  /** A link type the decoder does not know. */
  unknownLink = 5,
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_VLAN = 0x8100;
const ETH_QINQ = 0x88a8;
const ETH_VLAN_9100 = 0x9100;
const VXLAN_HEADER = 8;
const MAX_ENCAP_DEPTH = 3;

/**
 * One decoded packet: the innermost IP/L4 headers (after VLAN and VXLAN). Addresses are kept
 * as 32-bit words (one for IPv4, four for IPv6) so the flow table hashes them without strings.
 */
export class DecodedPacket {
  /** 4 or 6. */
  family = 0;
  /** 6 TCP, 17 UDP. */
  protocol = 0;
  src0 = 0;
  src1 = 0;
  src2 = 0;
  src3 = 0;
  dst0 = 0;
  dst1 = 0;
  dst2 = 0;
  dst3 = 0;
  srcPort = 0;
  dstPort = 0;
  /** Innermost VLAN id, -1 when untagged. */
  vlanId = -1;
  /** VXLAN network id when the packet was decapsulated, else -1. */
  vni = -1;
  /** Bytes of the IP packet on the wire (IP total length), which the capture may have cut. */
  ipBytes = 0;
  ttl = 0;
  tcpFlags = 0;
  seq = 0;
  ack = 0;
  window = 0;
  /** TCP options seen in this segment (-1 when absent). */
  windowScale = -1;
  mss = -1;
  sackPermitted = false;
  /** Payload offset in the frame buffer, captured payload length and its length on the wire. */
  payloadOffset = 0;
  payloadCaptured = 0;
  payloadBytes = 0;
  /** Offset of the L4 header in the frame buffer, and its length (for the header timeline). */
  l4Offset = 0;
  l4HeaderLength = 0;
}

export interface DecodeCounters {
  frames: number;
  decoded: number;
  notTcpUdp: number;
  fragments: number;
  truncated: number;
  malformed: number;
  unknownLink: number;
}

/** Stateless apart from counters; reuse one per pipeline. */
export class PacketDecoder {
  readonly counters: DecodeCounters = {
    frames: 0,
    decoded: 0,
    notTcpUdp: 0,
    fragments: 0,
    truncated: 0,
    malformed: 0,
    unknownLink: 0,
  };
  private readonly vxlanPorts: Set<number>;

  constructor(options: { vxlanPorts?: number[] } = {}) {
    this.vxlanPorts = new Set(options.vxlanPorts ?? [4789, 8472]);
  }

  /** Decodes frame bytes b[off, off+len) of the given link type into out. */
  decode(b: Uint8Array, off: number, len: number, linkType: number, out: DecodedPacket): DecodeStatus {
    this.counters.frames++;
    out.vlanId = -1;
    out.vni = -1;
    const status = this.decodeLink(b, off, off + len, linkType, out, 0);
    const c = this.counters;
    switch (status) {
      case DecodeStatus.ok:
        c.decoded++;
        break;
      case DecodeStatus.notTcpUdp:
        c.notTcpUdp++;
        break;
      case DecodeStatus.fragment:
        c.fragments++;
        break;
      case DecodeStatus.truncated:
        c.truncated++;
        break;
      case DecodeStatus.malformed:
        c.malformed++;
        break;
      default:
        c.unknownLink++;
    }
    return status;
  }

  private decodeLink(
    b: Uint8Array,
    p: number,
    end: number,
    link: number,
    out: DecodedPacket,
    depth: number,
  ): DecodeStatus {
    switch (link) {
      case LinkType.ethernet:
        return this.decodeEthernet(b, p, end, out, depth);
      case LinkType.raw:
        if (p >= end) return DecodeStatus.truncated;
        return this.decodeIp(b, p, end, (b[p] as number) >> 4, out, depth);
      case LinkType.ipv4:
        return this.decodeIp(b, p, end, 4, out, depth);
      case LinkType.ipv6:
        return this.decodeIp(b, p, end, 6, out, depth);
      case LinkType.linuxSll:
        if (end - p < 16) return DecodeStatus.truncated;
        return this.decodeEtherType(b, p + 16, end, u16(b, p + 14), out, depth);
      case LinkType.linuxSll2:
        if (end - p < 20) return DecodeStatus.truncated;
        return this.decodeEtherType(b, p + 20, end, u16(b, p), out, depth);
      case LinkType.null: {
        if (end - p < 4) return DecodeStatus.truncated;
        // host byte order AF_ value: 2 = INET; 24, 28, 30 = INET6 on the BSDs
        const af = b[p] === 0 ? (b[p + 3] as number) : (b[p] as number);
        if (af === 2) return this.decodeIp(b, p + 4, end, 4, out, depth);
        if (af === 24 || af === 28 || af === 30) return this.decodeIp(b, p + 4, end, 6, out, depth);
        return DecodeStatus.notTcpUdp;
      }
      default:
        return DecodeStatus.unknownLink;
    }
  }

  private decodeEthernet(b: Uint8Array, p: number, end: number, out: DecodedPacket, depth: number): DecodeStatus {
    if (end - p < 14) return DecodeStatus.truncated;
    return this.decodeEtherType(b, p + 14, end, u16(b, p + 12), out, depth);
  }

  private decodeEtherType(
    b: Uint8Array,
    p: number,
    end: number,
    etherType: number,
    out: DecodedPacket,
    depth: number,
  ): DecodeStatus {
    let type = etherType;
    for (let tags = 0; type === ETH_VLAN || type === ETH_QINQ || type === ETH_VLAN_9100; tags++) {
      if (tags === 4) return DecodeStatus.malformed;
      if (end - p < 4) return DecodeStatus.truncated;
      out.vlanId = u16(b, p) & 0x0fff;
      type = u16(b, p + 2);
      p += 4;
    }
    if (type === ETH_IPV4) return this.decodeIp(b, p, end, 4, out, depth);
    if (type === ETH_IPV6) return this.decodeIp(b, p, end, 6, out, depth);
    return DecodeStatus.notTcpUdp;
  }

  private decodeIp(
    b: Uint8Array,
    p: number,
    end: number,
    version: number,
    out: DecodedPacket,
    depth: number,
  ): DecodeStatus {
    let l4: number;
    let l4End: number;
    let proto: number;
    if (version === 4) {
      if (end - p < 20) return DecodeStatus.truncated;
      const v = b[p] as number;
      if (v >> 4 !== 4) return DecodeStatus.malformed;
      const ihl = (v & 0x0f) * 4;
      const total = u16(b, p + 2);
      if (ihl < 20 || total < ihl) return DecodeStatus.malformed;
      if (end - p < ihl) return DecodeStatus.truncated;
      if ((u16(b, p + 6) & 0x1fff) !== 0) return DecodeStatus.fragment;
      proto = b[p + 9] as number;
      if (proto !== 6 && proto !== 17) return DecodeStatus.notTcpUdp;
      out.family = 4;
      out.ttl = b[p + 8] as number;
      out.src0 = u32(b, p + 12);
      out.dst0 = u32(b, p + 16);
      out.src1 = out.src2 = out.src3 = out.dst1 = out.dst2 = out.dst3 = 0;
      out.ipBytes = total;
      l4 = p + ihl;
      l4End = p + total; // may lie beyond the captured end
    } else if (version === 6) {
      if (end - p < 40) return DecodeStatus.truncated;
      if ((b[p] as number) >> 4 !== 6) return DecodeStatus.malformed;
      const payloadLength = u16(b, p + 4);
      let next = b[p + 6] as number;
      out.ttl = b[p + 7] as number;
      l4 = p + 40;
      l4End = l4 + payloadLength;
      // walk extension headers: hop-by-hop, routing, destination options, fragment
      for (let hops = 0; ; hops++) {
        if (next === 6 || next === 17) break;
        if (hops === 8) return DecodeStatus.malformed;
        if (next === 0 || next === 43 || next === 60) {
          if (end - l4 < 8) return DecodeStatus.truncated;
          const n = next;
          next = b[l4] as number;
          l4 += ((b[l4 + 1] as number) + 1) * 8;
          if (n === 0 && hops !== 0) return DecodeStatus.malformed;
        } else if (next === 44) {
          if (end - l4 < 8) return DecodeStatus.truncated;
          if ((u16(b, l4 + 2) & 0xfff8) !== 0) return DecodeStatus.fragment;
          next = b[l4] as number;
          l4 += 8;
        } else {
          return DecodeStatus.notTcpUdp;
        }
        if (l4 > l4End) return DecodeStatus.malformed;
      }
      proto = next;
      out.family = 6;
      out.src0 = u32(b, p + 8);
      out.src1 = u32(b, p + 12);
      out.src2 = u32(b, p + 16);
      out.src3 = u32(b, p + 20);
      out.dst0 = u32(b, p + 24);
      out.dst1 = u32(b, p + 28);
      out.dst2 = u32(b, p + 32);
      out.dst3 = u32(b, p + 36);
      out.ipBytes = 40 + payloadLength;
    } else {
      return DecodeStatus.malformed;
    }
    out.protocol = proto;
    return proto === 6 ? this.decodeTcp(b, l4, end, l4End, out) : this.decodeUdp(b, l4, end, l4End, out, depth);
  }

  private decodeTcp(b: Uint8Array, p: number, end: number, segEnd: number, out: DecodedPacket): DecodeStatus {
    if (end - p < 20) return DecodeStatus.truncated;
    const hl = ((b[p + 12] as number) >> 4) * 4;
    if (hl < 20 || p + hl > segEnd) return DecodeStatus.malformed;
    if (end - p < hl) return DecodeStatus.truncated;
    out.srcPort = u16(b, p);
    out.dstPort = u16(b, p + 2);
    out.seq = u32(b, p + 4);
    out.ack = u32(b, p + 8);
    out.tcpFlags = (b[p + 13] as number) & 0x3f;
    out.window = u16(b, p + 14);
    out.windowScale = -1;
    out.mss = -1;
    out.sackPermitted = false;
    // options: only handshake ones matter here
    if (hl > 20 && (out.tcpFlags & TcpFlag.syn) !== 0) readTcpOptions(b, p + 20, p + hl, out);
    out.l4Offset = p;
    out.l4HeaderLength = hl;
    out.payloadOffset = p + hl;
    out.payloadBytes = segEnd - (p + hl);
    out.payloadCaptured = Math.max(0, Math.min(end, segEnd) - (p + hl));
    return DecodeStatus.ok;
  }

  private decodeUdp(
    b: Uint8Array,
    p: number,
    end: number,
    datagramEnd: number,
    out: DecodedPacket,
    depth: number,
  ): DecodeStatus {
    if (end - p < 8) return DecodeStatus.truncated;
    const udpLength = u16(b, p + 4);
    if (udpLength < 8 || p + udpLength > datagramEnd) return DecodeStatus.malformed;
    const dstPort = u16(b, p + 2);
    if (this.vxlanPorts.has(dstPort) && depth < MAX_ENCAP_DEPTH && end - (p + 8) >= VXLAN_HEADER) {
      const flags = b[p + 8] as number;
      if ((flags & 0x08) !== 0) {
        const vni = ((b[p + 12] as number) << 16) | ((b[p + 13] as number) << 8) | (b[p + 14] as number);
        const inner = p + 8 + VXLAN_HEADER;
        const status = this.decodeEthernet(b, inner, Math.min(end, p + udpLength), out, depth + 1);
        if (status !== DecodeStatus.ok) return status;
        out.vni = vni;
        return DecodeStatus.ok;
      }
    }
    out.srcPort = u16(b, p);
    out.dstPort = dstPort;
    out.tcpFlags = 0;
    out.seq = out.ack = out.window = 0;
    out.l4Offset = p;
    out.l4HeaderLength = 8;
    out.payloadOffset = p + 8;
    out.payloadBytes = udpLength - 8;
    out.payloadCaptured = Math.max(0, Math.min(end, p + udpLength) - (p + 8));
    return DecodeStatus.ok;
  }
}

function readTcpOptions(b: Uint8Array, p: number, end: number, out: DecodedPacket): void {
  while (p < end) {
    const kind = b[p] as number;
    if (kind === 0) return;
    if (kind === 1) {
      p++;
      continue;
    }
    if (p + 1 >= end) return;
    const len = b[p + 1] as number;
    if (len < 2 || p + len > end) return;
    if (kind === 2 && len === 4) out.mss = u16(b, p + 2);
    else if (kind === 3 && len === 3) out.windowScale = Math.min(14, b[p + 2] as number);
    else if (kind === 4) out.sackPermitted = true;
    p += len;
  }
}

function u16(b: Uint8Array, p: number): number {
  return ((b[p] as number) << 8) | (b[p + 1] as number);
}

function u32(b: Uint8Array, p: number): number {
  return (
    (((b[p] as number) << 24) | ((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number)) >>> 0
  );
}

const V4 = new Uint8Array(4);
const V6 = new Uint8Array(16);
const V6_VIEW = new DataView(V6.buffer);

/** Text of an address held as words (family 4: w0 only); the receiver's formatter, shared. */
export function formatIp(family: number, w0: number, w1: number, w2: number, w3: number): string {
  if (family === 4) {
    V4[0] = w0 >>> 24;
    V4[1] = (w0 >>> 16) & 255;
    V4[2] = (w0 >>> 8) & 255;
    V4[3] = w0 & 255;
    return formatAddress(V4);
  }
  V6_VIEW.setUint32(0, w0);
  V6_VIEW.setUint32(4, w1);
  V6_VIEW.setUint32(8, w2);
  V6_VIEW.setUint32(12, w3);
  return formatAddress(V6);
}
