import {
  BoundedMap,
  type ConnectionInfo,
  type L7Listener,
  type L7Message,
  parseTraceparent,
  type SpanLink,
} from "@kalman/flow-aggregator";
import { newSpanId, newTraceId } from "./ids.js";
import { type LinkIndex, type LinkTarget, LocalLinkIndex, wireKey } from "./link-index.js";

export interface CorrelatorOptions {
  /** Where client spans publish their wire keys (default: in-process, bounded). */
  linkIndex?: LinkIndex;
  /** In-flight server requests older than this are forgotten (default 60 s). */
  inFlightTtlMs?: number;
  /** X-Request-ID values remembered (default 16384). */
  maxRequestIds?: number;
}

/** How spans were joined, and why the others were not. */
export interface CorrelatorStats {
  requests: number;
  linkedTraceparent: number;
  linkedTcpSeq: number;
  linkedThread: number;
  linkedRequestId: number;
  /** Server spans with no observed caller: trace roots (edge services). */
  serverRoots: number;
  /** Client spans with no server request in flight on their thread: trace roots. */
  clientRoots: number;
  /** Client spans left unlinked because several requests were in flight on their thread. */
  ambiguous: number;
  /** Client spans dropped from the TCP-seq index before their time because it was full, unmatched by any server span. */
  linksEvicted: number;
}

interface InFlight {
  span: SpanLink;
  startNs: number;
}

interface Queued {
  request: boolean;
  conn: ConnectionInfo;
  m: L7Message;
  req: L7Message | undefined;
  order: number;
  seq: number;
}

const MAX_IN_FLIGHT_PER_THREAD = 64;

/**
 * Decides each request's trace context as requests are parsed (never waiting for whole traces).
 * Links, strongest first: W3C traceparent, TCP seq (client write ↔ server read of the same bytes),
 * same thread (a client request written while the thread serves exactly one request), X-Request-ID.
 * Never guesses: an ambiguous link is left out and the reason recorded on the span.
 *
 * Within a batch, events are applied in causal time order (client requests by write start,
 * server requests by read end), because on loopback a server's read can be drained before the
 * client's write that caused it.
 */
export class SpanCorrelator implements L7Listener {
  private readonly links: LinkIndex;
  private readonly threads = new Map<string, InFlight[]>();
  private readonly serverByRequestId: BoundedMap<string, LinkTarget>;
  private readonly clientByRequestId: BoundedMap<string, LinkTarget>;
  private queue: Queued[] = [];
  private seq = 0;
  private readonly ttlNs: number;
  private readonly counters: Omit<CorrelatorStats, "linksEvicted"> = {
    requests: 0,
    linkedTraceparent: 0,
    linkedTcpSeq: 0,
    linkedThread: 0,
    linkedRequestId: 0,
    serverRoots: 0,
    clientRoots: 0,
    ambiguous: 0,
  };

  constructor(options: CorrelatorOptions = {}) {
    this.links = options.linkIndex ?? new LocalLinkIndex();
    this.ttlNs = (options.inFlightTtlMs ?? 60_000) * 1e6;
    const maxRequestIds = options.maxRequestIds ?? 16384;
    this.serverByRequestId = new BoundedMap(maxRequestIds);
    this.clientByRequestId = new BoundedMap(maxRequestIds);
  }

  onRequest(conn: ConnectionInfo, m: L7Message): void {
    m.span = { traceId: "", spanId: newSpanId() };
    this.queue.push({
      request: true,
      conn,
      m,
      req: undefined,
      order: conn.weAreClient ? m.startNs : m.endNs,
      seq: this.seq++,
    });
  }

  onResponse(conn: ConnectionInfo, m: L7Message, req: L7Message | undefined): void {
    if (conn.weAreClient || !req?.span) return;
    // the server answered: its request is no longer in flight on its thread
    this.queue.push({ request: false, conn, m, req, order: m.startNs, seq: this.seq++ });
  }

  onBatchEnd(): void {
    if (this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    q.sort((a, b) => a.order - b.order || a.seq - b.seq);
    for (const e of q) {
      if (!e.request) this.finishServer(e.conn, e.req as L7Message);
      else if (e.conn.weAreClient) this.startClient(e.conn, e.m);
      else this.startServer(e.conn, e.m);
    }
  }

  stats(): CorrelatorStats {
    return { ...this.counters, linksEvicted: this.links.evicted ?? 0 };
  }

  private startServer(conn: ConnectionInfo, m: L7Message): void {
    const span = m.span as SpanLink;
    this.counters.requests++;
    const key = m.tcpSeq === undefined ? undefined : wireKey(m.tcpSeq, m.bytes);
    const caller = key === undefined ? undefined : this.links.lookup(key, m.endNs);
    const tp = m.traceparent === undefined ? undefined : parseTraceparent(m.traceparent);
    const byId = m.xRequestId === undefined ? undefined : this.clientByRequestId.get(m.xRequestId);
    if (caller) {
      this.parent(span, caller, "tcp_seq");
      this.counters.linkedTcpSeq++;
    } else if (tp) {
      this.parent(span, tp, "traceparent");
      this.counters.linkedTraceparent++;
    } else if (byId) {
      this.parent(span, byId, "x_request_id");
      this.counters.linkedRequestId++;
    } else {
      span.traceId = newTraceId();
      span.unlinkedReason = "no caller observed";
      this.counters.serverRoots++;
    }
    const tkey = `${conn.pid}:${m.tid}`;
    let list = this.threads.get(tkey);
    if (!list) {
      list = [];
      this.threads.set(tkey, list);
    }
    this.prune(list, m.endNs);
    if (list.length >= MAX_IN_FLIGHT_PER_THREAD) list.shift();
    list.push({ span, startNs: m.endNs });
    if (m.xRequestId !== undefined) this.serverByRequestId.set(m.xRequestId, span);
  }

  private finishServer(conn: ConnectionInfo, req: L7Message): void {
    const tkey = `${conn.pid}:${req.tid}`;
    const list = this.threads.get(tkey);
    if (!list) return;
    const i = list.findIndex((f) => f.span === req.span);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.threads.delete(tkey);
  }

  private startClient(conn: ConnectionInfo, m: L7Message): void {
    const span = m.span as SpanLink;
    this.counters.requests++;
    const tp = m.traceparent === undefined ? undefined : parseTraceparent(m.traceparent);
    const list = this.threads.get(`${conn.pid}:${m.tid}`);
    if (list) this.prune(list, m.startNs);
    const serving = list ? list.filter((f) => f.startNs <= m.startNs) : [];
    const byId = m.xRequestId === undefined ? undefined : this.serverByRequestId.get(m.xRequestId);
    const servingOne = serving.length === 1 ? (serving[0] as InFlight).span : undefined;
    if (tp && !(servingOne && servingOne.traceId === tp.traceId)) {
      // the application propagates context itself: its header names our parent
      this.parent(span, tp, "traceparent");
      this.counters.linkedTraceparent++;
    } else if (servingOne) {
      // (a proxy passing the caller's header through unchanged: the thread names the closer parent)
      this.parent(span, servingOne, "thread");
      this.counters.linkedThread++;
    } else if (byId) {
      this.parent(span, byId, "x_request_id");
      this.counters.linkedRequestId++;
    } else if (serving.length > 1) {
      span.traceId = newTraceId();
      span.unlinkedReason = `ambiguous: ${serving.length} requests in flight on thread ${m.tid}`;
      this.counters.ambiguous++;
    } else {
      span.traceId = newTraceId();
      span.unlinkedReason = "no server request in flight on thread";
      this.counters.clientRoots++;
    }
    if (m.tcpSeq !== undefined) this.links.publish(wireKey(m.tcpSeq, m.bytes), span, m.startNs);
    if (m.xRequestId !== undefined) this.clientByRequestId.set(m.xRequestId, span);
  }

  private parent(span: SpanLink, p: { traceId: string; spanId: string }, kind: SpanLink["linkedBy"]): void {
    span.traceId = p.traceId;
    span.parentSpanId = p.spanId;
    span.linkedBy = kind;
  }

  /** Drops in-flight entries whose response never came. */
  private prune(list: InFlight[], nowNs: number): void {
    while (list.length && (list[0] as InFlight).startNs < nowNs - this.ttlNs) list.shift();
  }
}
