import type { AttributeValue, ChunkMeta, L7Message, ResponseStatus } from "../../types.js";
import { ascii, ByteQueue, utf8Text } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { looksLikeMessages } from "./detect.js";
import { parseErrorFields, parseTag, RowKind, SYSTEM_NAME, sqlStateStatus, startupParams } from "./record.js";
import { type SqlInfo, summarizeSql } from "./sql.js";
import { Back, be32, EncryptionReply, Front, nulAt, TLS_HANDSHAKE, typedLengthOk, Untyped, untypedOk } from "./wire.js";

enum Mode {
  /** At (or inside) a message header. */
  Header = 0,
  /** Inside a message body of known length. */
  Body = 1,
  /** Lost our place: wait for a chunk that starts with messages (or, server side, a ReadyForQuery). */
  Lost = 2,
  /** TLS or GSS encryption was negotiated: nothing to read. */
  Encrypted = 3,
}

/** `type` of the untyped packets (StartupMessage, SSLRequest, ...): typed messages never start with 0. */
const UNTYPED = 0;
/** Body bytes kept for parsing, per message type; the rest is skipped. */
const SQL_CAP = 8192;
const NAME_CAP = 256;
const STARTUP_CAP = 2048;
const ERROR_CAP = 2048;
const TAG_CAP = 64;
/** Named statements and portals remembered per connection. */
const MAX_NAMED = 256;

const TX_IDLE = 0x49; // I
const TX_BLOCK = 0x54; // T
const TX_FAILED = 0x45; // E
const DESCRIBE_STATEMENT = 0x53; // S
const DESCRIBE_PORTAL = 0x50; // P

const EXECUTE_UNKNOWN: SqlInfo = { requestType: "EXECUTE", resource: "", endpoint: "EXECUTE" };
const DESCRIBE: SqlInfo = { requestType: "DESCRIBE", resource: "", endpoint: "DESCRIBE" };
const CLOSE: SqlInfo = { requestType: "CLOSE", resource: "", endpoint: "CLOSE" };
const SYNC: SqlInfo = { requestType: "SYNC", resource: "", endpoint: "SYNC" };
const FUNCTION_CALL: SqlInfo = { requestType: "FUNCTION_CALL", resource: "", endpoint: "FUNCTION_CALL" };
const TERMINATE: SqlInfo = { requestType: "TERMINATE", resource: "", endpoint: "TERMINATE" };

/** One direction's framing state. */
class Direction {
  mode = Mode.Header;
  /** A header split across chunks: type + length (typed) or length + code (untyped). */
  readonly header = new Uint8Array(8);
  headerLen = 0;
  type = 0;
  /** Code of an untyped packet. */
  code = 0;
  /** Current message's size on the wire. */
  size = 0;
  /** Body bytes still to come. */
  remaining = 0;
  /** Body prefix the parser reads, and how much of it is in. */
  want = 0;
  collected = 0;
  truncated = false;
  startNs = 0;
  tid = 0;
  seq: number | undefined;
  lastEndNs = 0;
  readonly queue: ByteQueue;
  /** Last bytes of a lost chunk, for a ReadyForQuery split across chunks. */
  readonly carry = new Uint8Array(5);
  carryLen = 0;

  constructor(limit: number) {
    this.queue = new ByteQueue(limit);
  }

  markStart(meta: ChunkMeta, offset: number): void {
    this.startNs = meta.startNs;
    this.tid = meta.tid;
    this.seq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
  }
}

/**
 * Extended-query messages up to Sync. One request per Sync group (not per Execute): the backend
 * answers each Sync with exactly one ReadyForQuery, so pairing stays in order even after an error
 * discards the rest of a group. A group with several Executes (pipelines, batches) is reported as
 * its first statement plus db.operation.batch.size.
 */
class Group {
  open = false;
  startNs = 0;
  tid = 0;
  seq: number | undefined;
  bytes = 0;
  executes = 0;
  first: SqlInfo | undefined;
  parsed: SqlInfo | undefined;
  /** Statement of the first Bind (what a group cut by the capture most likely executed). */
  bound: SqlInfo | undefined;
  described = false;
  closed = false;
  truncated = false;

  begin(d: Direction): void {
    this.open = true;
    this.startNs = d.startNs;
    this.tid = d.tid;
    this.seq = d.seq;
    this.bytes = 0;
    this.executes = 0;
    this.first = undefined;
    this.parsed = undefined;
    this.bound = undefined;
    this.described = false;
    this.closed = false;
    this.truncated = false;
  }
}

/** Everything the backend sends for one request, up to ReadyForQuery. */
class Response {
  active = false;
  /** Authentication / BackendKeyData seen: the startup exchange, not a request's answer. */
  startup = false;
  /** Part of it was not captured. */
  truncated = false;
  /** Part of it was skipped without knowing what it held. */
  lost = false;
  startNs = 0;
  tid = 0;
  seq: number | undefined;
  bytes = 0;
  error = false;
  sqlState = "";
  message = "";
  completed = false;
  returned = -1;
  affected = -1;
  copyOut = false;

  begin(d: Direction, lost: boolean): void {
    this.active = true;
    this.startup = false;
    this.truncated = lost;
    this.lost = lost;
    this.startNs = d.startNs;
    this.tid = d.tid;
    this.seq = d.seq;
    this.bytes = 0;
    this.error = false;
    this.sqlState = "";
    this.message = "";
    this.completed = false;
    this.returned = -1;
    this.affected = -1;
    this.copyOut = false;
  }
}

/** Incremental PostgreSQL v3 parser for one connection (both directions). */
export class PostgresSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  private readonly queueLimit: number;
  private readonly group = new Group();
  private readonly response = new Response();
  private readonly statements = new Map<string, SqlInfo>();
  private unnamedStatement: SqlInfo | undefined;
  private readonly portals = new Map<string, SqlInfo | undefined>();
  private unnamedPortal: SqlInfo | undefined;
  private query: SqlInfo | undefined;
  private channel = "";
  private database: string | undefined;
  private version: string | undefined;
  /** Requests emitted and not yet answered (what the aggregator's pairing holds). */
  private open = 0;
  /** SSLRequest / GSSENCRequest sent: the server answers with one byte. */
  private encryptionReplyPending = false;
  private tlsMayFollow = false;
  /** The server side resumed on a scanned ReadyForQuery: the response it ends was partly lost. */
  private resumedByScan = false;
  private readonly tag: [RowKind, number] = [RowKind.None, 0];

  constructor(private readonly options: SessionOptions) {
    this.queueLimit = Math.min(options.maxBufferBytes, SQL_CAP + NAME_CAP);
    this.c2s = new Direction(this.queueLimit);
    this.s2c = new Direction(this.queueLimit);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    if (d.mode === Mode.Encrypted) return;
    if (data.length > 0) {
      d.lastEndNs = meta.endNs;
      let i = 0;
      while (i < data.length) {
        if (d.mode === Mode.Header) i = this.header(d, fromClient, data, i, meta, emit);
        else if (d.mode === Mode.Body) i = this.body(d, fromClient, data, i, meta, emit);
        else if (d.mode === Mode.Lost) i = this.lost(d, fromClient, data, i, meta);
        else break;
      }
    }
    if (missing > 0) this.skip(d, fromClient, missing, meta, emit);
  }

  buffered(): number {
    const c = this.c2s;
    const s = this.s2c;
    return c.queue.length + s.queue.length + c.headerLen + s.headerLen + c.carryLen + s.carryLen;
  }

  close(emit: Emit, meta: ChunkMeta): void {
    // a response cut by the close (FATAL, crash): it answers the oldest request
    const r = this.response;
    if (r.active && !r.startup && this.open > 0) {
      // the message in progress was counted whole when it started
      if (this.s2c.mode === Mode.Body) r.bytes -= this.s2c.remaining;
      r.truncated = true;
      r.lost = true;
      this.finishResponse(this.s2c.lastEndNs || meta.endNs, emit);
    }
  }

  // ---- framing ----

  private header(d: Direction, fromClient: boolean, data: Uint8Array, at: number, meta: ChunkMeta, emit: Emit): number {
    let i = at;
    if (d.headerLen === 0) {
      if (!fromClient && this.encryptionReplyPending) {
        this.encryptionReplyPending = false;
        const reply = data[i];
        if (reply === EncryptionReply.Ssl || reply === EncryptionReply.Gss) return this.encrypted(data.length);
        if (reply === EncryptionReply.No) return i + 1;
      }
      if (fromClient && this.tlsMayFollow) {
        this.tlsMayFollow = false;
        if (data[i] === TLS_HANDSHAKE) return this.encrypted(data.length);
      }
      d.markStart(meta, i);
    }
    const untyped = fromClient && (d.headerLen > 0 ? d.header[0] : data[i]) === UNTYPED;
    const need = untyped ? 8 : 5;
    let h = data;
    let hAt = i;
    if (d.headerLen === 0 && data.length - i >= need) i += need;
    else {
      const take = Math.min(need - d.headerLen, data.length - i);
      d.header.set(data.subarray(i, i + take), d.headerLen);
      d.headerLen += take;
      i += take;
      if (d.headerLen < need) return i;
      h = d.header;
      hAt = 0;
      d.headerLen = 0;
    }
    let body: number;
    if (untyped) {
      const len = be32(h, hAt);
      const code = be32(h, hAt + 4);
      if (!untypedOk(len, code)) return this.malformed(d, fromClient, i, need, meta, emit);
      d.type = UNTYPED;
      d.code = code;
      d.size = len;
      body = len - 8;
    } else {
      const type = h[hAt] as number;
      const len = be32(h, hAt + 1);
      if (!typedLengthOk(type, len, fromClient)) return this.malformed(d, fromClient, i, need, meta, emit);
      d.type = type;
      d.size = len + 1;
      body = len - 4;
    }
    d.remaining = body;
    d.want = Math.min(body, this.capOf(d, fromClient), this.queueLimit);
    d.collected = 0;
    d.truncated = false;
    if (fromClient) this.clientStart(d, emit);
    else this.serverStart(d);
    if (body === 0) this.end(d, fromClient, meta, emit);
    else d.mode = Mode.Body;
    return i;
  }

  private body(d: Direction, fromClient: boolean, data: Uint8Array, i: number, meta: ChunkMeta, emit: Emit): number {
    const take = Math.min(d.remaining, data.length - i);
    if (d.collected < d.want) {
      const need = d.want - d.collected;
      if (d.collected === 0 && take >= need) {
        d.collected = d.want;
        this.prefix(d, fromClient, data.subarray(i, i + need));
      } else {
        const n = Math.min(need, take);
        d.queue.push(data.subarray(i, i + n));
        d.collected += n;
        if (d.collected === d.want) this.flushPrefix(d, fromClient);
      }
    }
    d.remaining -= take;
    if (d.remaining === 0) this.end(d, fromClient, meta, emit);
    return i + take;
  }

  private flushPrefix(d: Direction, fromClient: boolean): void {
    d.collected = d.want;
    this.prefix(d, fromClient, d.queue.view());
    d.queue.clear();
  }

  private end(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    d.mode = Mode.Header;
    if (fromClient) this.clientEnd(d, meta, emit);
    else this.serverEnd(d, meta, emit);
  }

  /** `n` bytes the side sent after the data were not captured. */
  private skip(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    switch (d.mode) {
      case Mode.Body: {
        d.truncated = true;
        if (d.collected < d.want) this.flushPrefix(d, fromClient);
        if (n <= d.remaining) {
          d.remaining -= n;
          if (d.remaining === 0) this.end(d, fromClient, meta, emit);
          return;
        }
        const over = n - d.remaining;
        d.remaining = 0;
        this.end(d, fromClient, meta, emit);
        this.lose(d, fromClient, over, true, meta, emit);
        return;
      }
      case Mode.Header:
        this.lose(d, fromClient, n, true, meta, emit);
        return;
      case Mode.Lost:
        d.carryLen = 0;
        this.lostBytes(fromClient, n, meta);
        return;
    }
  }

  private malformed(
    d: Direction,
    fromClient: boolean,
    i: number,
    headerBytes: number,
    meta: ChunkMeta,
    emit: Emit,
  ): number {
    this.stats.malformed++;
    this.lose(d, fromClient, headerBytes, false, meta, emit);
    return i;
  }

  /** We no longer know where messages start on this side. */
  private lose(
    d: Direction,
    fromClient: boolean,
    bytes: number,
    uncaptured: boolean,
    meta: ChunkMeta,
    emit: Emit,
  ): void {
    // a partial header was consumed but not yet counted
    const skipped = bytes + d.headerLen;
    d.mode = Mode.Lost;
    d.headerLen = 0;
    d.queue.clear();
    d.carryLen = 0;
    if (fromClient && this.group.open) {
      // a client write ends at a flush point (Sync): an open group cut by the capture was sent whole
      if (uncaptured) {
        this.group.bytes += skipped;
        this.group.truncated = true;
        this.emitGroup(meta.endNs, emit);
        return;
      }
      this.group.open = false;
    }
    this.lostBytes(fromClient, skipped, meta);
  }

  /** Bytes skipped without being read: part of the response in progress (or the one a request awaits). */
  private lostBytes(fromClient: boolean, n: number, meta: ChunkMeta): void {
    const r = this.response;
    if (!fromClient && !r.active && this.open > 0 && n > 0) {
      this.s2c.markStart(meta, 0);
      this.s2c.seq = undefined;
      r.begin(this.s2c, true);
    }
    if (!fromClient && r.active) {
      r.bytes += n;
      r.truncated = true;
      r.lost = true;
    } else this.stats.resyncBytes += n;
  }

  /** Lost: resume at a chunk that starts with messages, or (server) at a ReadyForQuery found by scanning. */
  private lost(d: Direction, fromClient: boolean, data: Uint8Array, from: number, meta: ChunkMeta): number {
    if (from === 0 && looksLikeMessages(data, fromClient)) {
      d.mode = Mode.Header;
      d.carryLen = 0;
      return 0;
    }
    if (fromClient) {
      this.lostBytes(true, data.length - from, meta);
      return data.length;
    }
    // ReadyForQuery straddling the previous chunk and this one
    for (let k = 0; k < d.carryLen; k++) {
      const inCarry = d.carryLen - k;
      if (readyAt(d.carry, k, d.carryLen, data)) {
        d.header.set(d.carry.subarray(k, d.carryLen));
        d.headerLen = inCarry;
        d.startNs = meta.startNs;
        d.tid = meta.tid;
        d.seq = meta.seqValid ? (meta.tcpSeq - inCarry) >>> 0 : undefined;
        d.carryLen = 0;
        d.mode = Mode.Header;
        // those bytes were counted as lost already
        if (this.response.active) this.response.bytes -= inCarry;
        else this.stats.resyncBytes -= inCarry;
        this.resumedByScan = true;
        return 0;
      }
    }
    for (let p = from; p + 6 <= data.length; p++) {
      if (data[p] === Back.ReadyForQuery && readyAt(data, p, data.length, data)) {
        const resume = messageEndingAt(data, from, p);
        this.lostBytes(false, resume - from, meta);
        d.carryLen = 0;
        d.mode = Mode.Header;
        this.resumedByScan = true;
        return resume;
      }
    }
    this.lostBytes(false, data.length - from, meta);
    keepTail(d, data, from);
    return data.length;
  }

  private encrypted(consumed: number): number {
    for (const d of [this.c2s, this.s2c]) {
      d.mode = Mode.Encrypted;
      d.headerLen = 0;
      d.queue.clear();
    }
    return consumed;
  }

  private capOf(d: Direction, fromClient: boolean): number {
    if (fromClient) {
      switch (d.type) {
        case UNTYPED:
          return d.code >>> 16 === Untyped.ProtocolMajor3 ? STARTUP_CAP : 0;
        case Front.Query:
          return SQL_CAP;
        case Front.Parse:
          return SQL_CAP + NAME_CAP;
        case Front.Bind:
          return 2 * NAME_CAP;
        case Front.Execute:
        case Front.Close:
          return NAME_CAP + 1;
        default:
          return 0;
      }
    }
    switch (d.type) {
      case Back.CommandComplete:
        return TAG_CAP;
      case Back.ErrorResponse:
        return ERROR_CAP;
      case Back.NotificationResponse:
        return NAME_CAP + 4;
      default:
        return 0;
    }
  }

  // ---- client messages ----

  private clientStart(d: Direction, emit: Emit): void {
    switch (d.type) {
      case UNTYPED:
      case Front.Password:
      case Front.CopyData:
      case Front.CopyDone:
      case Front.CopyFail:
        return;
      case Front.Query:
      case Front.FunctionCall:
      case Front.Terminate:
        this.requestStarts(emit);
        return;
      default:
        // Parse, Bind, Describe, Execute, Close, Flush, Sync
        if (!this.group.open) {
          this.requestStarts(emit);
          this.group.begin(d);
        }
        this.group.bytes += d.size;
    }
  }

  /**
   * A new request while the server side is lost inside a response: clients wait for ReadyForQuery
   * (always the last bytes of a server write, so the one a truncated capture hides), so that
   * response ended with the last server chunk (a startup answer is dropped as usual).
   */
  private requestStarts(emit: Emit): void {
    if (this.s2c.mode === Mode.Lost && this.response.active) {
      this.finishResponse(this.s2c.lastEndNs, emit);
    }
  }

  private clientPrefix(d: Direction, b: Uint8Array): void {
    switch (d.type) {
      case UNTYPED: {
        const params = startupParams(b);
        this.database = params.database ?? params.user;
        this.version = `${d.code >>> 16}.${d.code & 0xffff}`;
        return;
      }
      case Front.Query: {
        const end = nulAt(b, 0);
        this.query = this.summarize(b, 0, end < 0 ? b.length : end);
        return;
      }
      case Front.Parse: {
        const nameEnd = nulAt(b, 0);
        if (nameEnd < 0) return;
        const sqlEnd = nulAt(b, nameEnd + 1);
        const info = this.summarize(b, nameEnd + 1, sqlEnd < 0 ? b.length : sqlEnd);
        if (nameEnd === 0) this.unnamedStatement = info;
        else remember(this.statements, ascii(b, 0, nameEnd), info);
        this.group.parsed = info;
        return;
      }
      case Front.Bind: {
        const portalEnd = nulAt(b, 0);
        const statementEnd = portalEnd < 0 ? -1 : nulAt(b, portalEnd + 1);
        let info: SqlInfo | undefined;
        if (statementEnd === portalEnd + 1) info = this.unnamedStatement;
        else if (statementEnd > 0) info = this.statements.get(ascii(b, portalEnd + 1, statementEnd));
        this.group.bound ??= info ?? EXECUTE_UNKNOWN;
        if (portalEnd === 0) this.unnamedPortal = info;
        else if (portalEnd > 0) remember(this.portals, ascii(b, 0, portalEnd), info);
        return;
      }
      case Front.Execute: {
        const portalEnd = nulAt(b, 0);
        const info =
          portalEnd === 0 ? this.unnamedPortal : portalEnd > 0 ? this.portals.get(ascii(b, 0, portalEnd)) : undefined;
        if (++this.group.executes === 1) this.group.first = info ?? EXECUTE_UNKNOWN;
        return;
      }
      case Front.Close: {
        const nameEnd = nulAt(b, 1);
        if (nameEnd < 0) return;
        if (b[0] === DESCRIBE_STATEMENT) {
          if (nameEnd === 1) this.unnamedStatement = undefined;
          else this.statements.delete(ascii(b, 1, nameEnd));
        } else if (b[0] === DESCRIBE_PORTAL) {
          if (nameEnd === 1) this.unnamedPortal = undefined;
          else this.portals.delete(ascii(b, 1, nameEnd));
        }
        return;
      }
    }
  }

  private clientEnd(d: Direction, meta: ChunkMeta, emit: Emit): void {
    switch (d.type) {
      case UNTYPED:
        if (d.code === Untyped.SslRequest || d.code === Untyped.GssEncRequest) {
          this.encryptionReplyPending = true;
          this.tlsMayFollow = true;
        }
        return;
      case Front.Query: {
        const info = this.query;
        this.query = undefined;
        this.open++;
        emit(this.request(info, d.startNs, d.tid, d.seq, meta.endNs, d.size, d.truncated));
        return;
      }
      case Front.FunctionCall:
        this.open++;
        emit(this.request(FUNCTION_CALL, d.startNs, d.tid, d.seq, meta.endNs, d.size, d.truncated));
        return;
      case Front.Terminate: {
        const m = this.request(TERMINATE, d.startNs, d.tid, d.seq, meta.endNs, d.size, false);
        m.oneWay = true;
        emit(m);
        return;
      }
      case Front.Password:
      case Front.CopyData:
      case Front.CopyDone:
      case Front.CopyFail:
        return;
      case Front.Describe:
        this.group.described = true;
        break;
      case Front.Close:
        this.group.closed = true;
        break;
    }
    if (d.truncated) this.group.truncated = true;
    if (d.type === Front.Sync) this.emitGroup(meta.endNs, emit);
  }

  private emitGroup(endNs: number, emit: Emit): void {
    const g = this.group;
    g.open = false;
    let info: SqlInfo;
    if (g.executes > 0) info = g.first ?? EXECUTE_UNKNOWN;
    else if (g.truncated && g.bound) info = g.bound;
    else if (g.parsed) info = { requestType: "PREPARE", resource: g.parsed.resource, endpoint: "PREPARE" };
    else if (g.described) info = DESCRIBE;
    else if (g.closed) info = CLOSE;
    else info = SYNC;
    const m = this.request(info, g.startNs, g.tid, g.seq, endNs, g.bytes, g.truncated);
    if (g.executes > 1 && m.attributes) m.attributes["db.operation.batch.size"] = g.executes;
    this.open++;
    emit(m);
  }

  private request(
    info: SqlInfo | undefined,
    startNs: number,
    tid: number,
    seq: number | undefined,
    endNs: number,
    bytes: number,
    truncated: boolean,
  ): L7Message {
    const attributes: Record<string, AttributeValue> = { "db.system.name": SYSTEM_NAME };
    const m: L7Message = { kind: "request", startNs, endNs, bytes, tid, attributes };
    if (seq !== undefined) m.tcpSeq = seq;
    if (this.version !== undefined) m.version = this.version;
    if (this.database !== undefined) m.domain = this.database;
    if (info) {
      if (info.requestType !== undefined) m.requestType = info.requestType;
      if (info.resource) m.resource = info.resource;
      if (info.endpoint !== undefined) m.endpoint = info.endpoint;
    }
    if (truncated) attributes["kalman.truncated"] = true;
    return m;
  }

  private summarize(b: Uint8Array, start: number, end: number): SqlInfo {
    return summarizeSql(utf8Text(b, start, end), this.options.redact);
  }

  // ---- server messages ----

  private serverStart(d: Direction): void {
    const r = this.response;
    const type = d.type;
    if (type === Back.NotificationResponse) return;
    if (!r.active) {
      // asynchronous notices and parameter changes between requests answer nothing
      if ((type === Back.NoticeResponse || type === Back.ParameterStatus) && this.open === 0) return;
      r.begin(d, this.resumedByScan);
    }
    this.resumedByScan = false;
    r.bytes += d.size;
    switch (type) {
      case Back.Authentication:
      case Back.BackendKeyData:
      case Back.NegotiateProtocolVersion:
        r.startup = true;
        break;
      case Back.CopyOutResponse:
        r.copyOut = true;
        break;
    }
  }

  private serverPrefix(d: Direction, b: Uint8Array): void {
    const r = this.response;
    switch (d.type) {
      case Back.CommandComplete: {
        if (!r.active) return;
        r.completed = true;
        const tag = this.tag;
        parseTag(b, tag);
        let kind = tag[0];
        if (kind === RowKind.Copied) kind = r.copyOut ? RowKind.Returned : RowKind.Affected;
        if (kind === RowKind.Returned) r.returned = Math.max(r.returned, 0) + tag[1];
        else if (kind === RowKind.Affected) r.affected = Math.max(r.affected, 0) + tag[1];
        return;
      }
      case Back.ErrorResponse: {
        if (!r.active || r.error) return;
        const fields = parseErrorFields(b);
        r.error = true;
        r.sqlState = fields.sqlState;
        r.message = fields.message;
        return;
      }
      case Back.NotificationResponse: {
        const end = nulAt(b, 4);
        this.channel = b.length > 4 ? utf8Text(b, 4, end < 0 ? b.length : end) : "";
        return;
      }
    }
  }

  private serverEnd(d: Direction, meta: ChunkMeta, emit: Emit): void {
    if (d.type === Back.NotificationResponse) {
      emit(this.notification(d, meta.endNs));
      return;
    }
    if (d.truncated && this.response.active) this.response.truncated = true;
    if (d.type === Back.ReadyForQuery) this.finishResponse(meta.endNs, emit);
  }

  private finishResponse(endNs: number, emit: Emit): void {
    const r = this.response;
    if (!r.active) return;
    r.active = false;
    if (r.startup || this.open === 0) return;
    this.open--;
    let status: ResponseStatus = "ok";
    if (r.error) status = r.sqlState ? sqlStateStatus(r.sqlState) : "server_error";
    else if (r.lost && !r.completed) status = "unknown";
    const attributes: Record<string, AttributeValue> = { "db.system.name": SYSTEM_NAME };
    const m: L7Message = {
      kind: "response",
      startNs: r.startNs,
      endNs,
      bytes: r.bytes,
      tid: r.tid,
      status,
      attributes,
    };
    if (r.seq !== undefined) m.tcpSeq = r.seq;
    if (r.error) {
      if (r.sqlState) attributes["db.response.status_code"] = r.sqlState;
      if (r.message) m.exception = r.message;
    }
    if (r.returned >= 0) attributes["db.response.returned_rows"] = r.returned;
    if (r.affected >= 0) attributes["db.response.affected_rows"] = r.affected;
    if (r.truncated) attributes["kalman.truncated"] = true;
    emit(m);
  }

  /** LISTEN/NOTIFY delivery: a response to no request. The payload is a value: never recorded. */
  private notification(d: Direction, endNs: number): L7Message {
    const m: L7Message = {
      kind: "response",
      unsolicited: true,
      startNs: d.startNs,
      endNs,
      bytes: d.size,
      tid: d.tid,
      status: "ok",
      endpoint: `NOTIFY ${this.channel}`,
      attributes: { "db.system.name": SYSTEM_NAME },
    };
    if (d.seq !== undefined) m.tcpSeq = d.seq;
    return m;
  }

  private prefix(d: Direction, fromClient: boolean, b: Uint8Array): void {
    if (fromClient) this.clientPrefix(d, b);
    else this.serverPrefix(d, b);
  }
}

/** ReadyForQuery ('Z', length 5, status I/T/E) at a[k..aEnd) continued by b when it runs past aEnd. */
function readyAt(a: Uint8Array, k: number, aEnd: number, b: Uint8Array): boolean {
  const inA = aEnd - k;
  const at = (j: number) => (j < inA ? a[k + j] : a === b ? undefined : b[j - inA]);
  if (at(0) !== Back.ReadyForQuery || at(1) !== 0 || at(2) !== 0 || at(3) !== 0 || at(4) !== 5) return false;
  const status = at(5);
  return status === TX_IDLE || status === TX_BLOCK || status === TX_FAILED;
}

/**
 * Start of the CommandComplete / ErrorResponse / EmptyQueryResponse that ends right at `end` (where
 * a scanned ReadyForQuery starts), so the status is read too; `end` if there is none.
 */
function messageEndingAt(data: Uint8Array, from: number, end: number): number {
  const limit = Math.max(from, end - ERROR_CAP);
  for (let q = end - 5; q >= limit; q--) {
    const type = data[q];
    if (type !== Back.CommandComplete && type !== Back.ErrorResponse && type !== Back.EmptyQueryResponse) continue;
    const len = be32(data, q + 1);
    if (q + 1 + len === end && typedLengthOk(type, len, false) && (len === 4 || data[end - 1] === 0)) return q;
  }
  return end;
}

/** Keeps the last bytes of a lost chunk (after what the carry held) for readyAt across chunks. */
function keepTail(d: Direction, data: Uint8Array, from: number): void {
  const cap = d.carry.length;
  const fresh = data.length - from;
  if (fresh >= cap) {
    d.carry.set(data.subarray(data.length - cap));
    d.carryLen = cap;
    return;
  }
  const keep = Math.min(d.carryLen, cap - fresh);
  d.carry.copyWithin(0, d.carryLen - keep, d.carryLen);
  d.carry.set(data.subarray(from), keep);
  d.carryLen = keep + fresh;
}

/** Map.set bounded to MAX_NAMED entries (the oldest goes first). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  if (!map.has(key) && map.size >= MAX_NAMED) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
