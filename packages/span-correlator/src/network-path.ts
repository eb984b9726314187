import { BoundedMap, type RequestRecord } from "@kalman/flow-aggregator";
import type { MonotonicClock } from "./clock.js";
import { newSpanId, newTraceId } from "./ids.js";
import { type WireKey, wireKey } from "./link-index.js";
import { spanAttributes, spanName, spanStatus } from "./spans.js";
import type { ServiceIdentity, Span } from "./types.js";

/** The resource of network spans: the path, not a process. */
export const NETWORK_OBSERVER: ServiceIdentity = { serviceName: "kalman-network", attributes: {} };

export interface NetworkPathOptions {
  /** How long socket spans wait for the packet path's view of the same request (default 300 ms). */
  holdMs?: number;
  /** Network records waiting for their request's socket spans (default 65536; the oldest go first, counted). */
  maxNetworkRecords?: number;
  /** Emit network hops no socket span claimed, as their own trace (default true). */
  emitUnclaimed?: boolean;
}

export interface NetworkPathStats {
  /** Network spans placed between a client and a server span (or under/over one of them). */
  joined: number;
  /** Network spans whose request no observed process sent or received: their own trace. */
  unclaimed: number;
  /** Network records dropped to stay within maxNetworkRecords. */
  dropped: number;
  /** Socket spans held right now. */
  held: number;
}

interface Hop {
  record: RequestRecord;
  arrivedMs: number;
}

interface HeldSpan {
  span: Span;
  key: WireKey | undefined;
  arrivedMs: number;
}

/**
 * Puts the packet path's observations of a request into its trace: each interface the request
 * crossed becomes an INTERNAL span (attribute `kalman.observation_point` = network,
 * `network.interface.name`), chained in time order between the client span and the server span.
 * Requests are matched by their identity on the wire, the TCP seq of their first byte and their
 * size, the same key the correlator links client and server spans with, so NAT does not break it.
 *
 * Socket spans are held for `holdMs` (the packet path drains in blocks), then released: a server span
 * takes the last hop as its parent, and the first hop takes the server span's former parent.
 */
export class NetworkPathJoiner {
  private readonly holdMs: number;
  private readonly maxNetwork: number;
  private readonly emitUnclaimed: boolean;
  /** Wire key -> its hops, oldest first (never walked from the front of a Map: see BoundedMap). */
  private readonly hops: BoundedMap<WireKey, Hop[]>;
  private hopCount = 0;
  private held: HeldSpan[] = [];
  private readonly counters = { joined: 0, unclaimed: 0, dropped: 0 };

  constructor(
    private readonly clock: MonotonicClock,
    options: NetworkPathOptions = {},
  ) {
    this.holdMs = options.holdMs ?? 300;
    this.maxNetwork = options.maxNetworkRecords ?? 65536;
    // bounded by the hops they hold (below); as many keys as hops at most
    this.hops = new BoundedMap(this.maxNetwork + 1);
    this.emitUnclaimed = options.emitUnclaimed ?? true;
  }

  /** Socket spans with the records they came from (same order). */
  addSpans(spans: readonly Span[], records: readonly RequestRecord[], nowMs: number): void {
    for (let i = 0; i < spans.length; i++) {
      const r = records[i] as RequestRecord;
      const key = r.transport === "tcp" && r.reqTcpSeq !== undefined ? wireKey(r.reqTcpSeq, r.requestBytes) : undefined;
      this.held.push({ span: spans[i] as Span, key, arrivedMs: nowMs });
    }
  }

  /** Request records observed at network interfaces (the packet path). */
  addNetwork(records: readonly RequestRecord[], nowMs: number): void {
    for (const r of records) {
      if (r.observationPoint !== "network" || r.reqTcpSeq === undefined) continue;
      const key = wireKey(r.reqTcpSeq, r.requestBytes);
      let list = this.hops.get(key);
      if (!list) {
        list = [];
        this.hops.set(key, list);
      }
      list.push({ record: r, arrivedMs: nowMs });
      this.hopCount++;
    }
    // bounded: the oldest keys go first (Map order is insertion order)
    while (this.hopCount > this.maxNetwork) {
      const [key, list] = this.hops.oldest() as [WireKey, Hop[]];
      this.hops.delete(key);
      this.hopCount -= list.length;
      this.counters.dropped += list.length;
    }
  }

  /** Spans whose hold time is over (network spans included), and unclaimed hops past it. */
  release(nowMs: number, all = false): Span[] {
    const out: Span[] = [];
    let i = 0;
    const held = this.held;
    // server spans first within a release: they own the path between their caller and themselves
    const due: HeldSpan[] = [];
    for (; i < held.length; i++) {
      const h = held[i] as HeldSpan;
      if (!all && nowMs - h.arrivedMs < this.holdMs) break;
      due.push(h);
    }
    this.held = held.slice(i);
    due.sort((a, b) => (a.span.kind === "server" ? 0 : 1) - (b.span.kind === "server" ? 0 : 1));
    for (const h of due) {
      const path = h.key === undefined ? undefined : this.take(h.key);
      if (path) this.splice(h.span, path, out);
      out.push(h.span);
    }
    // hops no socket span claimed in time: the request's path without observed ends
    for (let oldest = this.hops.oldest(); oldest; oldest = this.hops.oldest()) {
      const [key, list] = oldest;
      if (!all && nowMs - (list[0] as Hop).arrivedMs < this.holdMs * 2) break;
      this.hops.delete(key);
      this.hopCount -= list.length;
      if (!this.emitUnclaimed) {
        this.counters.dropped += list.length;
        continue;
      }
      const traceId = newTraceId();
      let parent: string | undefined;
      for (const hop of sortByTime(list)) {
        const s = this.networkSpan(hop.record, traceId, parent);
        out.push(s);
        parent = s.spanId;
        this.counters.unclaimed++;
      }
    }
    return out;
  }

  stats(): NetworkPathStats {
    return { ...this.counters, held: this.held.length };
  }

  private take(key: WireKey): Hop[] | undefined {
    const list = this.hops.get(key);
    if (!list) return undefined;
    this.hops.delete(key);
    this.hopCount -= list.length;
    return sortByTime(list);
  }

  /** Chains the hops between `span` and its caller (a server span) or under it (a client span). */
  private splice(span: Span, path: Hop[], out: Span[]): void {
    if (span.kind === "server") {
      let parent = span.parentSpanId;
      for (const hop of path) {
        const n = this.networkSpan(hop.record, span.traceId, parent);
        out.push(n);
        parent = n.spanId;
      }
      span.parentSpanId = parent;
    } else {
      let parent: string | undefined = span.spanId;
      for (const hop of path) {
        const n = this.networkSpan(hop.record, span.traceId, parent);
        out.push(n);
        parent = n.spanId;
      }
    }
    this.counters.joined += path.length;
  }

  private networkSpan(r: RequestRecord, traceId: string, parentSpanId: string | undefined): Span {
    const attributes = spanAttributes(r);
    if (r.interface) attributes["network.interface.name"] = r.interface;
    if (r.netns) attributes["kalman.netns"] = r.netns;
    const span: Span = {
      traceId,
      spanId: newSpanId(),
      name: spanName(r),
      kind: "internal",
      start: this.clock.toHrTime(r.startNs),
      end: this.clock.toHrTime(r.endNs),
      durationNs: r.durationNs,
      status: spanStatus(r),
      attributes,
      service: NETWORK_OBSERVER,
    };
    if (parentSpanId) span.parentSpanId = parentSpanId;
    return span;
  }
}

function sortByTime(list: Hop[]): Hop[] {
  return list.sort((a, b) => a.record.startNs - b.record.startNs);
}
