// The most recent packets of each flow, for `kalman pcap`: fixed-size slots in a few large slabs,
// a ring per flow (a linked list of slots), a global byte budget enforced by evicting the least
// recently used flow. No object per packet is kept.

import type { FrameCursor } from "./frame.js";
import type { PcapWriter } from "./writer.js";

/** Metadata bytes per slot: sec f64, nsec u32, wire length u32, captured length u32, link type u16, next i32. */
const SLOT_META_BYTES = 26;
const SLAB_SHIFT = 12;
/** Slots per slab (4096: 1 MiB of frame bytes at the default 256 bytes per packet). */
const SLAB_SLOTS = 1 << SLAB_SHIFT;
const SLAB_MASK = SLAB_SLOTS - 1;
const NONE = -1;

export interface PacketRetentionOptions {
  /** Packets kept per flow; the oldest is overwritten beyond (default 128). */
  maxPacketsPerFlow?: number;
  /** Bytes kept of each frame; the rest is cut (default 256). */
  maxBytesPerPacket?: number;
  /** Bytes for all slots (frame bytes + metadata); least recently used flows are evicted beyond (default 64 MiB). */
  byteBudget?: number;
}

export interface RetainedPacket {
  realSec: number;
  realNsec: number;
  linkType: number;
  wireLen: number;
  /** The kept bytes (a copy, at most maxBytesPerPacket). */
  data: Uint8Array;
}

export interface RetentionStats {
  /** Flows holding at least one packet. */
  flows: number;
  /** Packets held. */
  packets: number;
  /** Bytes of slots in use (frame bytes + metadata). */
  bytesUsed: number;
  /** Bytes of slabs allocated so far (never above byteBudget). */
  bytesAllocated: number;
  byteBudget: number;
  /** Packets added. */
  added: number;
  /** Packets overwritten by a newer one of the same flow (per-flow ring full). */
  overwritten: number;
  /** Frames cut to maxBytesPerPacket. */
  truncated: number;
  /** Flows dropped to stay within the byte budget, and the packets they held. */
  evictedFlows: number;
  evictedPackets: number;
  /** Flows dropped by forget(). */
  forgotten: number;
}

interface Slab {
  data: Uint8Array;
  sec: Float64Array;
  nsec: Uint32Array;
  wireLen: Uint32Array;
  capLen: Uint32Array;
  linkType: Uint16Array;
  next: Int32Array;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) {
    throw new Error(`PacketRetention: ${name} must be a positive integer, got ${value}`);
  }
  return v;
}

/**
 * Keeps the last `maxPacketsPerFlow` packets of each flow (numeric flow ids), each cut to
 * `maxBytesPerPacket`, all within `byteBudget`. `add` copies the frame into a preallocated slot.
 */
export class PacketRetention {
  readonly maxPacketsPerFlow: number;
  readonly maxBytesPerPacket: number;
  readonly byteBudget: number;
  private readonly slotBytes: number;
  private readonly maxSlots: number;
  private readonly slabs: Slab[] = [];
  private slotsAllocated = 0;
  private freeSlot = NONE;

  private readonly flowIndex = new Map<number, number>();
  private flowIdOf = new Float64Array(0);
  private head = new Int32Array(0);
  private tail = new Int32Array(0);
  private count = new Int32Array(0);
  private lruPrev = new Int32Array(0);
  private lruNext = new Int32Array(0);
  private flowsAllocated = 0;
  private freeFlows: number[] = [];
  /** Least recently used flow (first to go) and most recently used. */
  private lruOldest = NONE;
  private lruNewest = NONE;

  private packetsHeld = 0;
  private readonly counters = {
    added: 0,
    overwritten: 0,
    truncated: 0,
    evictedFlows: 0,
    evictedPackets: 0,
    forgotten: 0,
  };

  constructor(options: PacketRetentionOptions = {}) {
    this.maxPacketsPerFlow = positiveInt("maxPacketsPerFlow", options.maxPacketsPerFlow, 128);
    this.maxBytesPerPacket = positiveInt("maxBytesPerPacket", options.maxBytesPerPacket, 256);
    this.byteBudget = positiveInt("byteBudget", options.byteBudget, 64 * 1024 * 1024);
    this.slotBytes = this.maxBytesPerPacket + SLOT_META_BYTES;
    this.maxSlots = Math.floor(this.byteBudget / this.slotBytes);
    if (this.maxSlots < 1) {
      throw new Error(
        `PacketRetention: byteBudget ${this.byteBudget} holds no packet of ${this.slotBytes} bytes (maxBytesPerPacket + ${SLOT_META_BYTES}); raise byteBudget`,
      );
    }
  }

  /** Keeps a copy of `frame` (cut to maxBytesPerPacket) as the newest packet of `flowId`. */
  add(flowId: number, realSec: number, realNsec: number, linkType: number, frame: Uint8Array, wireLen = frame.length) {
    this.store(flowId, realSec, realNsec, linkType, frame, 0, frame.length, wireLen);
  }

  /** `add` for the cursor's current frame (no subarray per packet). */
  addFrame(flowId: number, frame: FrameCursor): void {
    this.store(
      flowId,
      frame.realSec,
      frame.realNsec,
      frame.linkType,
      frame.buffer,
      frame.dataOffset,
      frame.capLen,
      frame.wireLen,
    );
  }

  /** The packets held for a flow, oldest first. */
  packets(flowId: number): RetainedPacket[] {
    const f = this.flowIndex.get(flowId);
    const out: RetainedPacket[] = [];
    if (f === undefined) return out;
    for (let s = this.head[f] as number; s !== NONE; ) {
      const slab = this.slabs[s >>> SLAB_SHIFT] as Slab;
      const i = s & SLAB_MASK;
      const start = i * this.maxBytesPerPacket;
      out.push({
        realSec: slab.sec[i] as number,
        realNsec: slab.nsec[i] as number,
        linkType: slab.linkType[i] as number,
        wireLen: slab.wireLen[i] as number,
        data: slab.data.slice(start, start + (slab.capLen[i] as number)),
      });
      s = slab.next[i] as number;
    }
    return out;
  }

  /** Number of packets held for a flow. */
  packetCount(flowId: number): number {
    const f = this.flowIndex.get(flowId);
    return f === undefined ? 0 : (this.count[f] as number);
  }

  /** Drops a flow's packets (e.g. when the flow table forgets the flow). */
  forget(flowId: number): boolean {
    const f = this.flowIndex.get(flowId);
    if (f === undefined) return false;
    this.counters.forgotten++;
    this.dropFlow(f);
    return true;
  }

  /**
   * Writes the held packets of these flows to `writer`, merged by capture time. Packets of another
   * link type than the writer's are left out and counted in `skippedLinkType`.
   */
  writePcap(flowIds: Iterable<number>, writer: PcapWriter): { written: number; skippedLinkType: number } {
    const slots: number[] = [];
    for (const id of new Set(flowIds)) {
      const f = this.flowIndex.get(id);
      if (f === undefined) continue;
      for (let s = this.head[f] as number; s !== NONE; s = this.slotNext(s)) slots.push(s);
    }
    // stable: packets of one flow at the same time keep their order
    slots.sort((a, b) => this.slotSec(a) - this.slotSec(b) || this.slotNsec(a) - this.slotNsec(b));
    let written = 0;
    let skippedLinkType = 0;
    for (const s of slots) {
      const slab = this.slabs[s >>> SLAB_SHIFT] as Slab;
      const i = s & SLAB_MASK;
      if (slab.linkType[i] !== writer.linkType) {
        skippedLinkType++;
        continue;
      }
      const start = i * this.maxBytesPerPacket;
      writer.write(
        slab.sec[i] as number,
        slab.nsec[i] as number,
        slab.data.subarray(start, start + (slab.capLen[i] as number)),
        slab.wireLen[i] as number,
      );
      written++;
    }
    return { written, skippedLinkType };
  }

  /** Link types among the held packets of these flows (to pick a writer per link type). */
  linkTypes(flowIds: Iterable<number>): number[] {
    const seen = new Set<number>();
    for (const id of flowIds) {
      const f = this.flowIndex.get(id);
      if (f === undefined) continue;
      for (let s = this.head[f] as number; s !== NONE; s = this.slotNext(s)) {
        seen.add((this.slabs[s >>> SLAB_SHIFT] as Slab).linkType[s & SLAB_MASK] as number);
      }
    }
    return [...seen].sort((a, b) => a - b);
  }

  stats(): RetentionStats {
    let bytesAllocated = 0;
    for (const slab of this.slabs) bytesAllocated += slab.next.length * this.slotBytes;
    return {
      flows: this.flowIndex.size,
      packets: this.packetsHeld,
      bytesUsed: this.packetsHeld * this.slotBytes,
      bytesAllocated,
      byteBudget: this.byteBudget,
      ...this.counters,
    };
  }

  private store(
    flowId: number,
    realSec: number,
    realNsec: number,
    linkType: number,
    src: Uint8Array,
    offset: number,
    length: number,
    wireLen: number,
  ): void {
    this.counters.added++;
    let f = this.flowIndex.get(flowId);
    if (f === undefined) f = this.newFlow(flowId);
    else this.touch(f);
    let slot: number;
    if ((this.count[f] as number) >= this.maxPacketsPerFlow) {
      slot = this.popOldest(f);
      this.counters.overwritten++;
    } else {
      slot = this.takeSlot(f);
    }
    const slab = this.slabs[slot >>> SLAB_SHIFT] as Slab;
    const i = slot & SLAB_MASK;
    let n = length;
    if (n > this.maxBytesPerPacket) {
      n = this.maxBytesPerPacket;
      this.counters.truncated++;
    }
    slab.data.set(src.subarray(offset, offset + n), i * this.maxBytesPerPacket);
    slab.sec[i] = realSec;
    slab.nsec[i] = realNsec;
    slab.wireLen[i] = Math.max(wireLen, length);
    slab.capLen[i] = n;
    slab.linkType[i] = linkType;
    slab.next[i] = NONE;
    const last = this.tail[f] as number;
    if (last === NONE) this.head[f] = slot;
    else this.setSlotNext(last, slot);
    this.tail[f] = slot;
    this.count[f] = (this.count[f] as number) + 1;
    this.packetsHeld++;
  }

  /** A free slot: from the free list, a new one within the budget, or one freed by evicting the LRU flow. */
  private takeSlot(f: number): number {
    for (;;) {
      if (this.freeSlot !== NONE) {
        const s = this.freeSlot;
        this.freeSlot = this.slotNext(s);
        return s;
      }
      if (this.slotsAllocated < this.maxSlots) {
        const s = this.slotsAllocated++;
        if ((s & SLAB_MASK) === 0) this.addSlab(Math.min(SLAB_SLOTS, this.maxSlots - s));
        return s;
      }
      const victim = this.lruOldest;
      if (victim === f || victim === NONE) {
        // the only flow left is this one: it gives up its own oldest packet
        this.counters.evictedPackets++;
        return this.popOldest(f);
      }
      this.counters.evictedFlows++;
      this.counters.evictedPackets += this.count[victim] as number;
      this.dropFlow(victim);
    }
  }

  private popOldest(f: number): number {
    const s = this.head[f] as number;
    const next = this.slotNext(s);
    this.head[f] = next;
    if (next === NONE) this.tail[f] = NONE;
    this.count[f] = (this.count[f] as number) - 1;
    this.packetsHeld--;
    return s;
  }

  private addSlab(slots: number): void {
    this.slabs.push({
      data: new Uint8Array(slots * this.maxBytesPerPacket),
      sec: new Float64Array(slots),
      nsec: new Uint32Array(slots),
      wireLen: new Uint32Array(slots),
      capLen: new Uint32Array(slots),
      linkType: new Uint16Array(slots),
      next: new Int32Array(slots),
    });
  }

  private slotNext(s: number): number {
    return (this.slabs[s >>> SLAB_SHIFT] as Slab).next[s & SLAB_MASK] as number;
  }

  private setSlotNext(s: number, next: number): void {
    (this.slabs[s >>> SLAB_SHIFT] as Slab).next[s & SLAB_MASK] = next;
  }

  private slotSec(s: number): number {
    return (this.slabs[s >>> SLAB_SHIFT] as Slab).sec[s & SLAB_MASK] as number;
  }

  private slotNsec(s: number): number {
    return (this.slabs[s >>> SLAB_SHIFT] as Slab).nsec[s & SLAB_MASK] as number;
  }

  private newFlow(flowId: number): number {
    let f = this.freeFlows.pop();
    if (f === undefined) {
      if (this.flowsAllocated === this.head.length) this.growFlows();
      f = this.flowsAllocated++;
    }
    this.flowIndex.set(flowId, f);
    this.flowIdOf[f] = flowId;
    this.head[f] = NONE;
    this.tail[f] = NONE;
    this.count[f] = 0;
    this.lruPrev[f] = this.lruNewest;
    this.lruNext[f] = NONE;
    if (this.lruNewest !== NONE) this.lruNext[this.lruNewest] = f;
    else this.lruOldest = f;
    this.lruNewest = f;
    return f;
  }

  private growFlows(): void {
    const n = Math.max(1024, this.head.length * 2);
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.flowIdOf = grow(this.flowIdOf, (k) => new Float64Array(k));
    this.head = grow(this.head, (k) => new Int32Array(k));
    this.tail = grow(this.tail, (k) => new Int32Array(k));
    this.count = grow(this.count, (k) => new Int32Array(k));
    this.lruPrev = grow(this.lruPrev, (k) => new Int32Array(k));
    this.lruNext = grow(this.lruNext, (k) => new Int32Array(k));
  }

  /** Moves a flow to the most recently used end. */
  private touch(f: number): void {
    if (this.lruNewest === f) return;
    this.unlinkLru(f);
    this.lruPrev[f] = this.lruNewest;
    this.lruNext[f] = NONE;
    if (this.lruNewest !== NONE) this.lruNext[this.lruNewest] = f;
    else this.lruOldest = f;
    this.lruNewest = f;
  }

  private unlinkLru(f: number): void {
    const prev = this.lruPrev[f] as number;
    const next = this.lruNext[f] as number;
    if (prev !== NONE) this.lruNext[prev] = next;
    else this.lruOldest = next;
    if (next !== NONE) this.lruPrev[next] = prev;
    else this.lruNewest = prev;
  }

  /** Returns a flow's slots to the free list and forgets the flow. */
  private dropFlow(f: number): void {
    const first = this.head[f] as number;
    const last = this.tail[f] as number;
    if (first !== NONE) {
      this.setSlotNext(last, this.freeSlot);
      this.freeSlot = first;
    }
    this.packetsHeld -= this.count[f] as number;
    this.unlinkLru(f);
    this.flowIndex.delete(this.flowIdOf[f] as number);
    this.freeFlows.push(f);
  }
}
