import { Direction, type EventBatch, RecordType, Syscall } from "@kalman/ebpf-receiver";
import { BoundedMap } from "./bounded-map.js";
import { Pairing, type PendingRequest } from "./pairing.js";
import { type PayloadView, SocketPayloadView } from "./payload.js";
import { copyBytes } from "./protocols/bytes.js";
import { Confidence, type ProtocolParser, type ProtocolSession } from "./protocols/parser.js";
import { defaultParsers } from "./protocols/registry.js";
import { parseTraceparent } from "./protocols/traceparent.js";
import type { ChunkMeta, ConnectionInfo, L7Listener, L7Message, L7ProtocolName, RequestRecord } from "./types.js";

export interface L7AggregatorOptions {
  /** Protocols to parse (default: all). */
  protocols?: L7ProtocolName[];
  /** Extra server ports per protocol, as inference hints. */
  portHints?: Partial<Record<L7ProtocolName, number[]>>;
  /** Redact Authorization/Cookie values and SQL literals (default true). */
  redact?: boolean;
  /** Connections tracked at once; the least recently used is evicted past it (default 65536). */
  maxConnections?: number;
  /** Requests pending per connection (default 1024). */
  maxPendingPerConnection?: number;
  /** A request without a response after this long becomes a timeout record (default 30 s). */
  requestTimeoutMs?: number;
  /** A UDP peer or idle TCP connection is forgotten after this long without traffic (default 120 s). */
  idleTimeoutMs?: number;
  /** Per-direction buffer bound for parsers (default 64 KiB). */
  maxBufferBytes?: number;
  /** Chunks to look at before a connection is declared unknown (default 8). */
  maxDetectChunks?: number;
  /** Custom parser list (default: the built-in parsers). */
  parsers?: ProtocolParser[];
  /** Told about every request and response as they are parsed (the span correlator). */
  listener?: L7Listener;
  /**
   * ingestBatch() keeps only the events of processes this accepts (default: all). Called once per
   * event with the process id: keep it a cache lookup (the agent's process selection).
   */
  acceptProcess?: (pid: number) => boolean;
}

/** Counters: what was parsed, and every place data was dropped or could not be used. */
export interface L7Stats {
  connections: number;
  connectionsEvicted: number;
  connectionsUnknown: number;
  records: number;
  timeouts: number;
  orphanResponses: number;
  closedUnanswered: number;
  pendingDropped: number;
  malformed: number;
  resyncBytes: number;
  gapBytes: number;
  ignoredBytes: number;
  /** Connections that turned out to carry TLS: what was parsed of them before the plaintext came is dropped. */
  tlsSwitches: number;
  /** Syscall bytes of TLS connections (ciphertext) not parsed. */
  tlsCiphertextBytes: number;
}

enum ConnState {
  Detecting = 0,
  Parsing = 1,
  Unknown = 2,
}

interface Conn extends Omit<ConnectionInfo, "weAreClient"> {
  key: number | string;
  connId: number;
  transport: "tcp" | "udp";
  pid: number;
  comm: string;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  netns: number;
  cgroupId: number;
  weAreClient: boolean | undefined;
  interfaceName: string | undefined;
  /** Parsed from TLS plaintext; syscall payloads of it are ciphertext. */
  tls: boolean;
  state: ConnState;
  detectChunks: number;
  parser?: ProtocolParser;
  session?: ProtocolSession;
  pairing: Pairing;
  /** Next expected TCP seq per direction: [fromClient, fromServer]; -1 unknown. */
  nextSeq: [number, number];
  /**
   * While detecting on TCP: small chunks that matched nothing yet, per direction (egress, ingress),
   * kept to be joined with the next chunk (a length prefix read on its own, for example).
   */
  held: [Uint8Array | undefined, Uint8Array | undefined];
  heldSeq: [number, number];
  lastSeenNs: number;
}

const NS_PER_MS = 1e6;
/** How stale a connection's place in the recency order may get before it is moved. */
const RECENCY_REFRESH_NS = 1e9;
/** Largest undetected chunk held back to be joined with the next one. */
const MAX_HELD = 64;
const TCP_CLOSE = 7;

/**
 * Socket (or packet) payloads in, request records out: per-connection protocol inference,
 * incremental parsing and request/response pairing. Bounded in connections, pending requests
 * and parser buffers; whatever it cannot use is counted in stats().
 */
export class L7Aggregator {
  private readonly parsers: ProtocolParser[];
  private readonly conns: BoundedMap<number | string, Conn>;
  private readonly withPending = new Set<Conn>();
  private out: RequestRecord[] = [];
  private readonly meta: ChunkMeta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
  private current: Conn | undefined;
  private lastNs = 0;
  private readonly opts: Required<
    Omit<L7AggregatorOptions, "protocols" | "portHints" | "parsers" | "listener" | "acceptProcess">
  >;
  private readonly listener: L7Listener | undefined;
  private readonly acceptProcess: ((pid: number) => boolean) | undefined;
  private readonly hints = new Map<ProtocolParser, Set<number>>();
  private readonly counters: L7Stats = {
    connections: 0,
    connectionsEvicted: 0,
    connectionsUnknown: 0,
    records: 0,
    timeouts: 0,
    orphanResponses: 0,
    closedUnanswered: 0,
    pendingDropped: 0,
    malformed: 0,
    resyncBytes: 0,
    gapBytes: 0,
    ignoredBytes: 0,
    tlsSwitches: 0,
    tlsCiphertextBytes: 0,
  };
  private readonly emit = (m: L7Message) => this.onMessage(m);
  /** Reused per batch: record offsets, causal-order keys, and the sorted order of both. */
  private order = new Int32Array(0);
  private offsets = new Int32Array(0);
  private keys = new Float64Array(0);

  constructor(options: L7AggregatorOptions = {}) {
    const all = options.parsers ?? defaultParsers();
    const enabled = options.protocols;
    for (const name of enabled ?? []) {
      if (!all.some((p) => p.name === name || (name === "grpc" && p.name === "http2"))) {
        throw new Error(`protocols: unknown protocol '${name}'; known: ${all.map((p) => p.name).join(", ")}`);
      }
    }
    this.parsers = enabled ? all.filter((p) => enabled.includes(p.name)) : all;
    this.listener = options.listener;
    this.acceptProcess = options.acceptProcess;
    for (const p of this.parsers) {
      this.hints.set(p, new Set([...p.ports, ...(options.portHints?.[p.name] ?? [])]));
    }
    this.opts = {
      redact: options.redact ?? true,
      maxConnections: options.maxConnections ?? 65536,
      maxPendingPerConnection: options.maxPendingPerConnection ?? 1024,
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 120_000,
      maxBufferBytes: options.maxBufferBytes ?? 64 * 1024,
      maxDetectChunks: options.maxDetectChunks ?? 8,
    };
    // evicted explicitly (createConn), so that the connection's pending requests are finished first
    this.conns = new BoundedMap(this.opts.maxConnections + 1);
  }

  /**
   * Feeds every record of a receiver batch: data records are parsed, closes end connections.
   * Records are applied in causal order, not ring order: a write counts from when it started, a
   * read from when it returned. On loopback the peer's read (and even its answer) can reach the
   * ring before the write that caused it returns; this keeps each request ahead of its response.
   */
  ingestBatch(batch: EventBatch): void {
    const c = batch.cursor();
    const accept = this.acceptProcess;
    let n = 0;
    while (c.next()) {
      const type = c.type;
      // TCP state changes run in whatever task the kernel was in (softirq): never filtered by process
      if (accept !== undefined && type !== RecordType.tcpState && !accept(c.tgid)) continue;
      if (n === this.order.length) this.growOrder();
      this.offsets[n] = c.offset;
      this.keys[n] = type === RecordType.data ? (c.direction === Direction.Egress ? c.enterNs : c.exitNs) : c.tsNs;
      this.order[n] = n;
      n++;
    }
    sortByKey(this.order, this.keys, n);
    const view = new SocketPayloadView(c);
    for (let i = 0; i < n; i++) {
      if (!c.seek(this.offsets[this.order[i] as number] as number)) continue;
      const type = c.type;
      if (type === RecordType.data) {
        if (c.l4proto === 6 || c.l4proto === 17) this.ingest(view);
      } else if (
        (type === RecordType.sock && c.syscall === Syscall.Close) ||
        (type === RecordType.tcpState && c.newState === TCP_CLOSE)
      ) {
        this.closeConnection(c.sockId);
      }
    }
    this.endBatch();
  }

  private growOrder(): void {
    const size = Math.max(1024, this.order.length * 2);
    const grow = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(size);
      b.set(a);
      return b;
    };
    this.order = grow(this.order, (k) => new Int32Array(k));
    this.offsets = grow(this.offsets, (k) => new Int32Array(k));
    this.keys = grow(this.keys, (k) => new Float64Array(k));
  }

  /** Ends a batch of ingest() calls: the listener resolves what waited for the whole batch. */
  endBatch(): void {
    this.listener?.onBatchEnd();
  }

  /** Feeds one payload. */
  ingest(v: PayloadView): void {
    const transport = v.transport;
    const key = transport === "tcp" ? v.connId : `${v.connId}|${v.remoteAddr()}|${v.remotePort}`;
    let conn = this.conns.get(key);
    const endNs = v.endNs;
    const tls = v.tls === true;
    if (conn && conn.tls !== tls) {
      if (!tls) {
        this.counters.tlsCiphertextBytes += v.bytes;
        return;
      }
      // plaintext of a connection seen so far as syscall bytes (a handshake, a STARTTLS-like preamble)
      this.counters.tlsSwitches++;
      this.discard(conn);
      conn = undefined;
    }
    if (!conn) conn = this.createConn(key, v);
    else if (endNs - conn.lastSeenNs > RECENCY_REFRESH_NS) {
      // keep the order ≈ recency (to a second), for LRU eviction and idle expiry
      this.conns.touch(key);
    }
    conn.lastSeenNs = endNs;
    if (endNs > this.lastNs) this.lastNs = endNs;
    const payload = v.payload();
    let data = payload;
    if (conn.state === ConnState.Unknown) {
      this.counters.ignoredBytes += v.bytes;
      return;
    }
    let seqOverride = -1;
    if (conn.state === ConnState.Detecting) {
      const h = v.egress ? 0 : 1;
      const held = conn.held[h];
      if (held && transport === "tcp") {
        const joined = new Uint8Array(held.length + data.length);
        joined.set(held);
        joined.set(data, held.length);
        data = joined;
        seqOverride = conn.heldSeq[h];
        conn.held[h] = undefined;
      }
      if (!this.detect(conn, v, data)) {
        if (
          conn.state === ConnState.Detecting &&
          transport === "tcp" &&
          data.length <= MAX_HELD &&
          v.bytes === payload.length
        ) {
          conn.held[h] = copyBytes(data);
          conn.heldSeq[h] = seqOverride >= 0 ? seqOverride : v.tcpSeq;
        } else {
          this.counters.ignoredBytes += data.length + (conn.held[1 - h]?.length ?? 0);
          conn.held[1 - h] = undefined;
        }
        return;
      }
    }
    const session = conn.session as ProtocolSession;
    const fromClient = conn.weAreClient === v.egress;
    const meta = this.meta;
    // a read may block long before data arrives: its bytes exist from the read's return
    meta.startNs = v.egress ? v.startNs : endNs;
    meta.endNs = endNs;
    meta.tcpSeq = seqOverride >= 0 ? seqOverride : v.tcpSeq;
    meta.seqValid = v.seqValid;
    meta.tid = v.tid;
    this.current = conn;
    const dir = fromClient ? 0 : 1;
    if (transport === "tcp" && meta.seqValid && !conn.tls) {
      // (TLS plaintext: seqs are of the TLS records, so they do not advance by the plaintext bytes)
      const expected = conn.nextSeq[dir];
      if (expected >= 0 && expected !== meta.tcpSeq) {
        const gap = (meta.tcpSeq - expected) >>> 0;
        if (gap > 0 && gap < 0x40000000) {
          this.counters.gapBytes += gap;
          session.feed(fromClient, EMPTY, gap, meta, this.emit);
        }
      }
      conn.nextSeq[dir] = (v.tcpSeq + v.bytes) >>> 0;
    }
    const missing = v.bytes > payload.length ? v.bytes - payload.length : 0;
    session.feed(fromClient, data, missing, meta, this.emit);
    this.current = undefined;
  }

  /** The connection closed: flush its session; requests left unanswered are reported. */
  closeConnection(connId: number): void {
    const conn = this.conns.get(connId);
    if (!conn) return;
    this.finish(conn, "closed");
  }

  /**
   * Expires requests older than the timeout and forgets idle connections. Call every second or so;
   * `nowNs` defaults to the newest event time seen (same clock as the events).
   */
  tick(nowNs: number = this.lastNs): void {
    const cutoff = nowNs - this.opts.requestTimeoutMs * NS_PER_MS;
    const expired: PendingRequest[] = [];
    for (const conn of this.withPending) {
      conn.pairing.expire(cutoff, expired);
      for (const p of expired) {
        this.counters.timeouts++;
        this.pushRecord(conn, p, undefined, "timeout");
      }
      expired.length = 0;
      if (conn.pairing.size === 0) this.withPending.delete(conn);
    }
    const idleCutoff = nowNs - this.opts.idleTimeoutMs * NS_PER_MS;
    for (let oldest = this.conns.oldest(); oldest; oldest = this.conns.oldest()) {
      if (oldest[1].lastSeenNs >= idleCutoff) break; // the order is recency order
      this.finish(oldest[1], "idle");
    }
  }

  /** Records completed since the last call. */
  takeRecords(): RequestRecord[] {
    const r = this.out;
    this.out = [];
    return r;
  }

  stats(): L7Stats {
    let malformed = 0;
    let resync = 0;
    let dropped = this.counters.pendingDropped;
    for (const c of this.conns.values()) {
      malformed += c.session?.stats.malformed ?? 0;
      resync += c.session?.stats.resyncBytes ?? 0;
      dropped += c.pairing.dropped;
    }
    return {
      ...this.counters,
      connections: this.conns.size,
      malformed: this.counters.malformed + malformed,
      resyncBytes: this.counters.resyncBytes + resync,
      pendingDropped: dropped,
    };
  }

  private createConn(key: number | string, v: PayloadView): Conn {
    if (this.conns.size >= this.opts.maxConnections) {
      const oldest = (this.conns.oldest() as [number | string, Conn])[1];
      this.counters.connectionsEvicted++;
      this.finish(oldest, "evicted");
    }
    const conn: Conn = {
      key,
      connId: v.connId,
      transport: v.transport,
      pid: v.pid,
      comm: v.comm(),
      localAddr: v.localAddr(),
      localPort: v.localPort,
      remoteAddr: v.remoteAddr(),
      remotePort: v.remotePort,
      netns: v.netns,
      cgroupId: v.cgroupId,
      weAreClient: v.role === 1 ? true : v.role === 2 ? false : undefined,
      interfaceName: v.interfaceName,
      tls: v.tls === true,
      state: ConnState.Detecting,
      detectChunks: 0,
      pairing: new Pairing(this.opts.maxPendingPerConnection),
      nextSeq: [-1, -1],
      held: [undefined, undefined],
      heldSeq: [0, 0],
      lastSeenNs: v.endNs,
    };
    this.conns.set(key, conn);
    this.counters.connections++;
    return conn;
  }

  /** Picks the connection's protocol from its first bytes. Returns true once a session exists. */
  private detect(conn: Conn, v: PayloadView, data: Uint8Array): boolean {
    if (data.length === 0) return false;
    const knownFromClient = conn.weAreClient === undefined ? undefined : conn.weAreClient === v.egress;
    let best: ProtocolParser | undefined;
    let bestConfidence: number = Confidence.No;
    let bestFromClient: boolean | undefined;
    for (const p of this.parsers) {
      if (!p.transports.includes(conn.transport)) continue;
      const d = p.detect(data, knownFromClient);
      let c: number = d.confidence;
      if (c === Confidence.No) continue;
      const hinted = this.hints.get(p);
      if (hinted?.has(conn.localPort) || hinted?.has(conn.remotePort)) c += 0.5;
      if (c > bestConfidence) {
        best = p;
        bestConfidence = c;
        bestFromClient = d.fromClient;
      }
    }
    if (!best) {
      if (++conn.detectChunks >= this.opts.maxDetectChunks) {
        conn.state = ConnState.Unknown;
        this.counters.connectionsUnknown++;
      }
      return false;
    }
    if (conn.weAreClient === undefined) {
      if (bestFromClient !== undefined) conn.weAreClient = bestFromClient === v.egress;
      else {
        // no role and the parser cannot tell: the side on the well-known port is the server
        const hinted = this.hints.get(best);
        conn.weAreClient = hinted?.has(conn.localPort)
          ? false
          : hinted?.has(conn.remotePort)
            ? true
            : conn.localPort > conn.remotePort;
      }
    }
    conn.parser = best;
    conn.session = best.createSession({
      redact: this.opts.redact,
      maxBufferBytes: this.opts.maxBufferBytes,
      transport: conn.transport,
    });
    conn.state = ConnState.Parsing;
    return true;
  }

  private onMessage(m: L7Message): void {
    const conn = this.current;
    if (!conn) return;
    if (m.kind === "request") {
      this.listener?.onRequest(conn as ConnectionInfo, m);
      if (m.oneWay) {
        this.pushRecord(conn, m, undefined, "ok");
        return;
      }
      conn.pairing.add(m);
      this.withPending.add(conn);
      return;
    }
    const req = m.unsolicited ? undefined : conn.pairing.take(m);
    if (!req) this.counters.orphanResponses++;
    this.listener?.onResponse(conn as ConnectionInfo, m, req);
    this.pushRecord(conn, req, m, undefined);
  }

  /** Forgets a connection without reporting its pending requests (they were not what the peers said). */
  private discard(conn: Conn): void {
    this.counters.pendingDropped += conn.pairing.size;
    this.withPending.delete(conn);
    this.conns.delete(conn.key);
  }

  private finish(conn: Conn, why: "closed" | "idle" | "evicted"): void {
    this.current = conn;
    if (conn.session?.close) {
      const meta = this.meta;
      meta.startNs = meta.endNs = conn.lastSeenNs;
      meta.seqValid = false;
      meta.tid = 0;
      conn.session.close(this.emit, meta);
    }
    this.current = undefined;
    const left: PendingRequest[] = [];
    conn.pairing.drainAll(left);
    for (const p of left) {
      this.counters.closedUnanswered++;
      this.pushRecord(conn, p, undefined, "unknown", `no response: connection ${why}`);
    }
    this.counters.malformed += conn.session?.stats.malformed ?? 0;
    this.counters.resyncBytes += conn.session?.stats.resyncBytes ?? 0;
    this.counters.pendingDropped += conn.pairing.dropped;
    this.withPending.delete(conn);
    this.conns.delete(conn.key);
  }

  private pushRecord(
    conn: Conn,
    req: L7Message | undefined,
    resp: L7Message | undefined,
    status: RequestRecord["status"] | undefined,
    exception?: string,
  ): void {
    const first = (req ?? resp) as L7Message;
    const startNs = first.startNs;
    const endNs = resp ? resp.endNs : first.endNs;
    const weAreClient = conn.weAreClient ?? true;
    // one object shape for every record (all fields present), so V8 keeps record code monomorphic
    let traceId: string | undefined;
    let spanId: string | undefined;
    if (req?.traceparent !== undefined) {
      const tp = parseTraceparent(req.traceparent);
      traceId = tp?.traceId;
      spanId = tp?.spanId;
    }
    const rec: RequestRecord = {
      protocol: resp?.protocol ?? req?.protocol ?? (conn.parser?.name as L7ProtocolName),
      version: req?.version ?? resp?.version,
      requestType: req?.requestType,
      domain: req?.domain,
      resource: req?.resource,
      endpoint: req?.endpoint ?? resp?.endpoint,
      status: status ?? resp?.status ?? "unknown",
      code: resp?.code,
      exception: resp?.exception ?? exception,
      startNs,
      endNs,
      durationNs: endNs - startNs,
      requestBytes: req?.bytes ?? 0,
      responseBytes: resp?.bytes ?? 0,
      traceId,
      spanId,
      xRequestId: req?.xRequestId,
      reqTcpSeq: req?.tcpSeq,
      respTcpSeq: resp?.tcpSeq,
      pid: conn.pid,
      reqTid: req?.tid ?? 0,
      respTid: resp?.tid,
      comm: conn.comm,
      observationPoint: conn.interfaceName !== undefined ? "network" : weAreClient ? "client" : "server",
      interface: conn.interfaceName,
      transport: conn.transport,
      clientAddr: weAreClient ? conn.localAddr : conn.remoteAddr,
      clientPort: weAreClient ? conn.localPort : conn.remotePort,
      serverAddr: weAreClient ? conn.remoteAddr : conn.localAddr,
      serverPort: weAreClient ? conn.remotePort : conn.localPort,
      connId: conn.connId,
      netns: conn.netns,
      cgroupId: conn.cgroupId,
      tls: conn.tls ? true : undefined,
      attributes: req?.attributes || resp?.attributes ? { ...req?.attributes, ...resp?.attributes } : undefined,
      span: req?.span ?? resp?.span,
    };
    this.counters.records++;
    this.out.push(rec);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * Stable insertion sort of order[0, n) by keys[]: batches are nearly sorted already (only a write
 * moves back past what happened during its syscall), so this is close to linear and allocates nothing.
 */
function sortByKey(order: Int32Array, keys: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const idx = order[i] as number;
    const k = keys[idx] as number;
    let j = i - 1;
    while (j >= 0 && (keys[order[j] as number] as number) > k) {
      order[j + 1] = order[j] as number;
      j--;
    }
    order[j + 1] = idx;
  }
}
