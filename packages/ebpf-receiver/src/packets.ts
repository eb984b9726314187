import { PacketFlag, PacketLinkType, PacketRecord } from "./layout.generated.js";

export { PacketFlag };

/** pcap LINKTYPE of a captured frame (what `data()` starts with); same keys as flow-aggregator's LinkType. */
export const LinkType = {
  /** Ethernet header (loopback too: 14 bytes with zero MACs). */
  ethernet: PacketLinkType.ethernet,
  /** Raw IPv4/IPv6, no link header (tun, wireguard, ipip, sit). */
  raw: PacketLinkType.raw,
  /** A device type Kalman does not decode; bytes as the device delivers them (only without a filter). */
  other: PacketLinkType.other,
} as const;
export type LinkType = (typeof LinkType)[keyof typeof LinkType];

/** Where the frame was going, seen from the capturing host (sll_pkttype). */
export const PacketType = {
  host: 0,
  broadcast: 1,
  multicast: 2,
  otherHost: 3,
  outgoing: 4,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

const TWO_32 = 4294967296;

/**
 * A reusable reader over one batch of captured frames, re-pointed at each record by next()
 * (no allocation per packet). u64 fields are read as two u32 (no BigInt).
 *
 * Valid only until the capture drains again.
 */
export class PacketCursor {
  private readonly view: DataView;
  private readonly end: number;
  /** Byte offset of the current record in `buffer`. */
  offset = -1;
  private nextOffset = 0;

  constructor(
    readonly buffer: Buffer,
    byteLength: number,
  ) {
    this.view = new DataView(buffer.buffer, buffer.byteOffset, byteLength);
    this.end = byteLength;
  }

  /** Moves to the next packet; false at the end of the batch (or on a malformed record). */
  next(): boolean {
    const at = this.nextOffset;
    if (at + PacketRecord.sizeof > this.end) return false;
    const recLen = this.view.getUint32(at + PacketRecord.recLen, true);
    const capLen = this.view.getUint32(at + PacketRecord.capLen, true);
    if (recLen < PacketRecord.sizeof + capLen || (recLen & 7) !== 0 || at + recLen > this.end) return false;
    this.offset = at;
    this.nextOffset = at + recLen;
    return true;
  }

  /** Positions the cursor on the record at byte `offset` (an `offset` seen earlier in this batch). */
  seek(offset: number): boolean {
    this.nextOffset = offset;
    return this.next();
  }

  /** Back to before the first record. */
  rewind(): void {
    this.offset = -1;
    this.nextOffset = 0;
  }

  /** CLOCK_MONOTONIC ns, the clock of the socket events and of process.hrtime. */
  get monoNs(): number {
    const at = this.offset + PacketRecord.monoNs;
    return this.view.getUint32(at + 4, true) * TWO_32 + this.view.getUint32(at, true);
  }
  /** Capture time, CLOCK_REALTIME seconds (for pcap output). */
  get realSec(): number {
    return this.view.getUint32(this.offset + PacketRecord.realSec, true);
  }
  get realNsec(): number {
    return this.view.getUint32(this.offset + PacketRecord.realNsec, true);
  }
  /** Length of the frame on the wire (a reinserted VLAN tag included). */
  get wireLen(): number {
    return this.view.getUint32(this.offset + PacketRecord.wireLen, true);
  }
  /** Bytes captured (≤ snapLen). */
  get capLen(): number {
    return this.view.getUint32(this.offset + PacketRecord.capLen, true);
  }
  /** Interface index in the capture's network namespace (see PacketCapture.interfaceName). */
  get ifindex(): number {
    return this.view.getUint32(this.offset + PacketRecord.ifindex, true);
  }
  get linkType(): LinkType {
    return this.view.getUint16(this.offset + PacketRecord.linkType, true) as LinkType;
  }
  get pktType(): PacketType {
    return this.view.getUint8(this.offset + PacketRecord.pktType) as PacketType;
  }
  /** PacketFlag bits: vlan (tag reinserted), truncated (capLen < wireLen). */
  get flags(): number {
    return this.view.getUint8(this.offset + PacketRecord.flags);
  }
  /** Which capture handle saw it (see PacketCapture.handles). */
  get captureId(): number {
    return this.view.getUint16(this.offset + PacketRecord.captureId, true);
  }
  /** One number per (capture handle, interface): the observation point key of the packet path. */
  get interfaceId(): number {
    return this.captureId * TWO_32 + this.ifindex;
  }
  /** monoNs, under the name the packet path reads (FrameCursor of @kalman/flow-aggregator). */
  get timeNs(): number {
    return this.monoNs;
  }
  /** Offset of the frame's first byte in `buffer`. */
  get dataOffset(): number {
    return this.offset + PacketRecord.sizeof;
  }
  /** The captured frame, a zero-copy view into the batch. */
  data(): Uint8Array {
    const at = this.offset + PacketRecord.sizeof;
    return this.buffer.subarray(at, at + this.capLen);
  }
}

/** One drain: a view over the capture's buffer, valid until the next drain. */
export class PacketBatch {
  constructor(
    readonly buffer: Buffer,
    readonly byteLength: number,
    readonly count: number,
  ) {}

  /** A cursor over this batch's packets. */
  cursor(): PacketCursor {
    return new PacketCursor(this.buffer, this.byteLength);
  }
}
