import type { ChunkMeta } from "../../types.js";
import { ByteQueue } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { toMessage } from "./record.js";
import { type DnsInfo, HEADER_BYTES, headerPlausible, newInfo, parseMessage, u16 } from "./wire.js";

/** SessionOptions plus the transport, when the caller knows it (UDP: every feed is one datagram). */
export interface DnsSessionOptions extends SessionOptions {
  transport?: "tcp" | "udp";
}

enum Mode {
  /** At a message start: the next chunk decides between a length prefix and a bare message. */
  Boundary = 0,
  /** Reading the 2-byte length prefix. */
  Length = 1,
  /** Reading `msgLen` message bytes, keeping the first ones. */
  Body = 2,
  /** Lost our place: skip until a chunk starts with a message. */
  Resync = 3,
}

enum Start {
  None = 0,
  /** A length-prefixed message (or the start of one). */
  Framed = 1,
  /** A whole message without prefix: a UDP datagram, or TCP whose prefix was read apart. */
  Bare = 2,
}

const TCP_PREFIX = 2;
const MAX_MESSAGE = 0xffff;

/** One direction of a TCP connection (UDP needs no state). */
class Stream {
  mode = Mode.Boundary;
  prefix = 0;
  prefixBytes = 0;
  msgLen = 0;
  /** Message bytes passed so far, captured or not. */
  got = 0;
  headerChecked = false;
  cut = false;
  startNs = 0;
  startTid = 0;
  startSeq: number | undefined;
  /** The message's first bytes (up to the keep limit); allocated on first use. */
  queue: ByteQueue | undefined;

  begin(meta: ChunkMeta, offset: number): void {
    this.startNs = meta.startNs;
    this.startTid = meta.tid;
    this.startSeq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
    this.prefix = 0;
    this.prefixBytes = 0;
    this.cut = false;
    this.headerChecked = false;
    this.queue?.clear();
  }

  reset(mode: Mode): void {
    this.mode = mode;
    this.prefixBytes = 0;
    this.got = 0;
    this.queue?.clear();
  }
}

/**
 * DNS over UDP (one message per datagram) and TCP (2-byte length prefix, messages split across
 * chunks or several per chunk). Requests and responses carry the transaction id as pairing key.
 */
export class DnsSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly info: DnsInfo = newInfo();
  private readonly transport: "tcp" | "udp" | undefined;
  private readonly keepLimit: number;
  private readonly c2s = new Stream();
  private readonly s2c = new Stream();

  constructor(options: DnsSessionOptions) {
    this.transport = options.transport;
    this.keepLimit = Math.max(HEADER_BYTES, Math.min(options.maxBufferBytes, MAX_MESSAGE));
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    if (this.transport === "udp") {
      if (data.length > 0) this.bare(data, missing, meta, emit, false);
      else this.stats.resyncBytes += missing;
      return;
    }
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0 && !this.stream(d, data, missing, meta, emit)) return;
    if (missing > 0) this.skipMissing(d, missing, meta, emit);
  }

  buffered(): number {
    return (this.c2s.queue?.length ?? 0) + (this.s2c.queue?.length ?? 0);
  }

  /**
   * Parses one whole message without length prefix; false when it is not DNS. On TCP (known, or
   * told by a valid seq) its prefix came in an earlier read: it counts in bytes and seq.
   */
  private bare(data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit, stream: boolean): boolean {
    const wireLength = data.length + missing;
    if (!parseMessage(data, wireLength, this.info)) {
      this.stats.malformed++;
      this.stats.resyncBytes += wireLength;
      return false;
    }
    const m = toMessage(this.info);
    m.startNs = meta.startNs;
    m.endNs = meta.endNs;
    m.tid = meta.tid;
    const prefixed = stream && (this.transport === "tcp" || meta.seqValid);
    m.bytes = prefixed ? TCP_PREFIX + wireLength : wireLength;
    if (meta.seqValid) m.tcpSeq = prefixed ? (meta.tcpSeq - TCP_PREFIX) >>> 0 : meta.tcpSeq;
    emit(m);
    return true;
  }

  /** Runs a TCP direction over one chunk; false when `missing` was accounted for already. */
  private stream(d: Stream, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): boolean {
    if (d.mode === Mode.Boundary || d.mode === Mode.Resync) {
      const start = startOf(data, missing, d.mode === Mode.Boundary);
      if (start === Start.Bare) {
        d.reset(this.bare(data, missing, meta, emit, true) ? Mode.Boundary : Mode.Resync);
        return false;
      }
      if (start === Start.None) {
        if (d.mode === Mode.Boundary) this.stats.malformed++;
        d.reset(Mode.Resync);
        this.stats.resyncBytes += data.length + missing;
        return false;
      }
      d.mode = Mode.Length;
    }
    let i = 0;
    while (i < data.length) {
      if ((d.mode as Mode) === Mode.Boundary) d.mode = Mode.Length; // the next message follows in this chunk
      if (d.mode === Mode.Length) {
        if (d.prefixBytes === 0) d.begin(meta, i);
        d.prefix = ((d.prefix << 8) | (data[i++] as number)) & MAX_MESSAGE;
        if (++d.prefixBytes < TCP_PREFIX) continue;
        if (d.prefix < HEADER_BYTES) return this.lose(d, data.length - i + missing);
        d.msgLen = d.prefix;
        d.got = 0;
        d.mode = Mode.Body;
        continue;
      }
      const take = Math.min(d.msgLen - d.got, data.length - i);
      if (d.got === 0 && take === d.msgLen) {
        // the whole message is in this chunk: parse it in place
        i += take;
        if (!this.complete(d, data.subarray(i - take, i), meta, emit)) return this.lose(d, data.length - i + missing);
        continue;
      }
      d.queue ??= new ByteQueue(this.keepLimit);
      const q = d.queue;
      const keep = Math.min(take, this.keepLimit - q.length);
      if (keep > 0) q.push(data.subarray(i, i + keep));
      d.got += take;
      i += take;
      if (!d.headerChecked && q.length >= HEADER_BYTES) {
        d.headerChecked = true;
        if (!headerPlausible(q.view(), 0, d.msgLen, false)) return this.lose(d, data.length - i + missing);
      }
      if (d.got === d.msgLen && !this.complete(d, q.view(), meta, emit)) return this.lose(d, data.length - i + missing);
    }
    return true;
  }

  /** A whole message is in: emit it; false when it is not DNS. */
  private complete(d: Stream, msg: Uint8Array, meta: ChunkMeta, emit: Emit): boolean {
    if (!parseMessage(msg, d.msgLen, this.info)) return false;
    if (d.cut) this.info.cut = true;
    const m = toMessage(this.info);
    m.startNs = d.startNs;
    m.endNs = meta.endNs;
    m.tid = d.startTid;
    m.bytes = TCP_PREFIX + d.msgLen;
    if (d.startSeq !== undefined) m.tcpSeq = d.startSeq;
    emit(m);
    d.reset(Mode.Boundary);
    return true;
  }

  /** Bytes of this direction that were not captured. */
  private skipMissing(d: Stream, n: number, meta: ChunkMeta, emit: Emit): void {
    if (d.mode === Mode.Body) {
      const left = d.msgLen - d.got;
      d.cut = true;
      if (n < left) {
        d.got += n;
        return;
      }
      d.got = d.msgLen;
      const kept = d.queue?.view();
      if (kept && kept.length >= HEADER_BYTES) {
        if (!this.complete(d, kept, meta, emit)) this.stats.malformed++;
      } else this.stats.resyncBytes += TCP_PREFIX + d.msgLen; // the header itself was not captured
      d.reset(n > left ? Mode.Resync : Mode.Boundary);
      this.stats.resyncBytes += n - left;
      return;
    }
    // between messages or inside a length prefix: where the next message starts is unknown
    if (d.mode === Mode.Length && d.prefixBytes > 0) this.stats.resyncBytes += d.prefixBytes;
    d.reset(Mode.Resync);
    this.stats.resyncBytes += n;
  }

  private lose(d: Stream, skipped: number): false {
    this.stats.malformed++;
    this.stats.resyncBytes += skipped;
    d.reset(Mode.Resync);
    return false;
  }
}

/**
 * What a chunk at a message start holds: a length-prefixed message (checked once its header is in
 * the chunk), else a bare one. `partial` accepts a chunk too short to tell as the start of a prefix;
 * when resynchronising only a lone 2-byte prefix is.
 */
function startOf(data: Uint8Array, missing: number, partial: boolean): Start {
  const n = data.length;
  if (n >= TCP_PREFIX + HEADER_BYTES) {
    const length = u16(data, 0);
    if (length >= HEADER_BYTES && headerPlausible(data, TCP_PREFIX, length, false)) return Start.Framed;
    return headerPlausible(data, 0, n + missing, false) ? Start.Bare : Start.None;
  }
  if (n < TCP_PREFIX) return partial ? Start.Framed : Start.None;
  if (u16(data, 0) < HEADER_BYTES) return Start.None;
  return partial || (n === TCP_PREFIX && missing === 0) ? Start.Framed : Start.None;
}
