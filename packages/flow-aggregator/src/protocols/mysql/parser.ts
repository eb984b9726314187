import type { ChunkMeta, L7Message } from "../../types.js";
import { ByteQueue, utf8Text } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import {
  Capability,
  COMMAND_NAMES,
  Command,
  Header,
  LAST_PREPARED_STATEMENT,
  MAX_COLUMNS,
  MAX_PACKET_PAYLOAD,
  PROGRESS_REPORT,
  ServerStatus,
} from "./constants.js";
import { looksLikeHandshakeResponse, packetLength, plausibleCommand } from "./detect.js";
import { baseAttributes, errorStatus, type Lenenc, parseErr, readLenenc } from "./record.js";
import { summarizeSql, useTarget } from "./sql.js";

/** Commands awaiting their response (pipelining); older ones are dropped past it. */
const MAX_PENDING = 256;
/** Prepared statements remembered per connection (id -> SQL). */
const MAX_STATEMENTS = 256;
/** Payload bytes kept of a packet, by what is in it. */
const SQL_PREFIX = 8192;
const RESPONSE_PREFIX = 640; // an ERR message is at most 512 bytes
const HANDSHAKE_PREFIX = 1024;
const SMALL_PREFIX = 16;

enum Stage {
  /** Nothing seen yet: a greeting starts the handshake, a command means we joined late. */
  Start = 0,
  Handshake = 1,
  Commands = 2,
  /** TLS, compression or a replication stream: nothing more to parse. */
  Ignored = 3,
}

/** Where the server is in its response to the current command. */
enum Phase {
  Idle = 0,
  /** First packet of a response, or of the next result of a multi-result response. */
  First = 1,
  /** Auth switch / LOCAL INFILE exchange: waiting for OK or ERR. */
  Await = 2,
  ColumnDefs = 3,
  /** After the column definitions: an EOF packet unless CLIENT_DEPRECATE_EOF. */
  AfterDefs = 4,
  Rows = 5,
  PrepareDefs = 6,
  /** After a group of PREPARE_OK parameter/column definitions: an EOF packet unless CLIENT_DEPRECATE_EOF. */
  PrepareGroupEnd = 7,
  /** COM_STATISTICS: one plain-text packet. */
  Statistics = 8,
}

enum EofMode {
  Unknown = 0,
  Classic = 1,
  Deprecated = 2,
}

interface Statement {
  text: string;
  endpoint: string;
}

interface Pending {
  command: number;
  /** COM_STMT_PREPARE: what the statement id will stand for. */
  statement?: Statement;
  /** COM_INIT_DB, USE, COM_CHANGE_USER: database once the server says OK. */
  db?: string;
}

/** Packet framing of one direction: 4-byte headers, payloads of known length, a bounded prefix of each. */
class Direction {
  readonly header = new Uint8Array(4);
  headerFill = 0;
  inPayload = false;
  length = 0;
  seen = 0;
  want = 0;
  /** The wanted prefix when it sits whole in the current chunk (no copy). */
  direct: Uint8Array | undefined;
  private queue: ByteQueue | undefined;
  /** The previous packet had 0xffffff bytes: this one continues the same message. */
  continued = false;
  // the message (one packet, or several continued ones)
  seq = 0;
  msgLength = 0;
  msgBytes = 0;
  multi = false;
  startNs = 0;
  tid = 0;
  tcpSeq: number | undefined;
  truncated = false;
  /** Framing lost (bytes not captured at a packet boundary): waiting for a chunk that starts a packet. */
  lost = false;
  lastEndNs = 0;

  constructor(readonly limit: number) {}

  begin(meta: ChunkMeta, offset: number): void {
    this.startNs = meta.startNs;
    this.tid = meta.tid;
    this.tcpSeq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
    this.msgLength = 0;
    this.msgBytes = 0;
    this.multi = false;
    this.truncated = false;
  }

  keep(bytes: Uint8Array): void {
    this.queue ??= new ByteQueue(this.limit);
    this.queue.push(bytes);
  }

  /** The kept prefix of the packet just completed. */
  prefix(): Uint8Array {
    return this.direct ?? this.queue?.view() ?? EMPTY;
  }

  clearPrefix(): void {
    this.direct = undefined;
    this.queue?.clear();
  }

  buffered(): number {
    return this.headerFill + (this.queue?.length ?? 0);
  }

  reset(): void {
    this.headerFill = 0;
    this.inPayload = false;
    this.continued = false;
    this.clearPrefix();
  }
}

const EMPTY = new Uint8Array(0);
const u16 = (p: Uint8Array, at: number) => (p[at] as number) | ((p[at + 1] as number) << 8);
const u32 = (p: Uint8Array, at: number) => (u16(p, at) | (u16(p, at + 2) << 16)) >>> 0;
const isProgress = (p: Uint8Array) => p.length >= 3 && u16(p, 1) === PROGRESS_REPORT;

/**
 * Status flags of a packet starting with 0xfe that ends a result: a classic EOF (warnings, status)
 * or an OK packet with the EOF header (CLIENT_DEPRECATE_EOF). 0 when cut short.
 */
function terminatorStatus(p: Uint8Array, length: number, n: Lenenc): number {
  if (length <= 5) return p.length >= 5 ? u16(p, 3) : 0;
  const a = readLenenc(p, 1, n).size;
  if (a === 0) return 0;
  const b = readLenenc(p, 1 + a, n).size;
  return b === 0 || p.length < 3 + a + b ? 0 : u16(p, 1 + a + b);
}

/**
 * Whether a chunk starts with whole packet headers: client commands (sequence id 0) or server
 * packets numbered on from `firstSeq`. Used to pick up the framing again after lost bytes.
 */
function startsPackets(b: Uint8Array, client: boolean, firstSeq: number): boolean {
  if (b.length < 5) return false;
  let at = 0;
  let seq = firstSeq;
  while (at + 4 <= b.length) {
    const len = packetLength(b, at);
    if (client) {
      if (b[at + 3] !== 0 || (at + 4 < b.length && !plausibleCommand(b[at + 4] as number, len))) return false;
    } else {
      if (b[at + 3] !== seq || len === 0) return false;
      seq = (seq + 1) & 0xff;
    }
    at += 4 + len;
  }
  return true;
}

/** Whether a whole chunk ends with the packet that ends a response (EOF/OK with 0xfe, or ERR). */
function endsWithTerminator(b: Uint8Array, n: Lenenc): boolean {
  const most = Math.min(b.length - 4, RESPONSE_PREFIX);
  for (let len = 5; len <= most; len++) {
    const at = b.length - 4 - len;
    if (packetLength(b, at) !== len) continue;
    const h = b[at + 4];
    if (h === Header.Eof && len < 64) {
      return (terminatorStatus(b.subarray(at + 4), len, n) & ServerStatus.MoreResultsExist) === 0;
    }
    if (h === Header.Err && b[at + 7] === 0x23) return true;
  }
  return false;
}

/** Incremental MySQL/MariaDB client-protocol parser for one connection (both directions). */
export class MysqlSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  private stage = Stage.Start;
  private eofMode = EofMode.Unknown;
  /** CLIENT_OPTIONAL_RESULTSET_METADATA (MySQL 8): a metadata flag before column counts. */
  private optionalMetadata = false;
  private compressed = false;
  private db: string | undefined;
  private readonly pending: Pending[] = [];
  private readonly statements = new Map<number, Statement>();
  private lastPrepared: Statement | undefined;
  private readonly lenenc: Lenenc = { value: 0, size: 0 };

  // the response in progress
  private phase = Phase.Idle;
  private current: Pending | undefined;
  private respStartNs = 0;
  private respTid = 0;
  private respTcpSeq: number | undefined;
  private respBytes = 0;
  private respTruncated = false;
  private rows = 0;
  private resultSets = 0;
  private affected = 0;
  private sawOk = false;
  private columnsLeft = 0;
  private prepareId = -1;
  private prepareColumns = 0;
  private prepareGroup = 0;
  /** Unknown EOF mode after the last PREPARE_OK definitions: complete unless an EOF follows. */
  private deferred = false;
  private deferredEndNs = 0;
  /** Framing was lost inside this response. */
  private lostOpen = false;

  constructor(private readonly options: SessionOptions) {
    const limit = Math.max(64, Math.min(options.maxBufferBytes, SQL_PREFIX));
    this.c2s = new Direction(limit);
    this.s2c = new Direction(limit);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    if (this.stage === Stage.Ignored) return;
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0 && (!d.lost || this.resync(d, fromClient, data, missing, meta, emit))) {
      this.process(d, fromClient, data, meta, emit);
      if (missing > 0 && (this.stage as Stage) !== Stage.Ignored) this.skip(d, fromClient, missing, meta, emit);
    } else if (data.length === 0 && missing > 0) {
      this.skip(d, fromClient, missing, meta, emit);
    }
    d.lastEndNs = meta.endNs;
  }

  buffered(): number {
    return this.c2s.buffered() + this.s2c.buffered();
  }

  close(emit: Emit): void {
    if (this.phase === Phase.PrepareGroupEnd && this.deferred) this.complete(this.deferredEndNs, emit);
    else if (this.lostOpen) this.finishLost(this.s2c.lastEndNs, emit);
  }

  // ---- framing ----

  private process(d: Direction, fromClient: boolean, data: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const n = data.length;
    let i = 0;
    while (i < n) {
      if (!d.inPayload) {
        if (d.headerFill === 0 && !d.continued) d.begin(meta, i);
        let length: number;
        let seq: number;
        if (d.headerFill === 0 && n - i >= 4) {
          length = packetLength(data, i);
          seq = data[i + 3] as number;
          i += 4;
        } else {
          while (d.headerFill < 4 && i < n) d.header[d.headerFill++] = data[i++] as number;
          if (d.headerFill < 4) break;
          length = packetLength(d.header, 0);
          seq = d.header[3] as number;
          d.headerFill = 0;
        }
        this.startPacket(d, fromClient, length, seq, i < n ? (data[i] as number) : -1);
        if (length === 0) {
          this.endPacket(d, fromClient, meta, emit);
          if (d.lost || this.stage === Stage.Ignored) break;
          continue;
        }
      }
      const take = Math.min(d.length - d.seen, n - i);
      if (d.seen < d.want) {
        const need = d.want - d.seen;
        if (d.seen === 0 && take >= need) d.direct = data.subarray(i, i + need);
        else d.keep(data.subarray(i, i + Math.min(take, need)));
      }
      d.seen += take;
      i += take;
      if (d.seen === d.length) this.endPacket(d, fromClient, meta, emit);
      if (d.lost || this.stage === Stage.Ignored) break;
    }
    if (this.stage === Stage.Ignored) d.reset();
    else if (d.lost) this.stats.resyncBytes += n - i;
    else if (d.direct) {
      // the packet goes on in the next chunk: keep its prefix
      const kept = d.direct;
      d.direct = undefined;
      d.keep(kept);
    }
  }

  private startPacket(d: Direction, fromClient: boolean, length: number, seq: number, firstByte: number): void {
    d.inPayload = true;
    d.length = length;
    d.seen = 0;
    if (!d.continued) d.seq = seq;
    let want: number;
    if (d.continued) want = 0;
    else if (fromClient) {
      if (seq === 0) {
        want =
          firstByte === Command.Query || firstByte === Command.StmtPrepare || firstByte < 0
            ? SQL_PREFIX
            : firstByte === Command.InitDb || firstByte === Command.ChangeUser
              ? RESPONSE_PREFIX
              : SMALL_PREFIX;
      } else want = this.stage === Stage.Commands ? 0 : HANDSHAKE_PREFIX;
    } else if (this.stage !== Stage.Commands) want = SMALL_PREFIX;
    else if (this.phase === Phase.ColumnDefs || this.phase === Phase.PrepareDefs) want = 1;
    else want = RESPONSE_PREFIX;
    d.want = Math.min(want, length, d.limit);
  }

  private endPacket(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    d.msgBytes += 4 + d.length;
    d.msgLength += d.length;
    d.inPayload = false;
    if (d.length === MAX_PACKET_PAYLOAD) {
      d.continued = true;
      d.multi = true;
      return;
    }
    d.continued = false;
    this.deliver(d, fromClient, meta, emit);
  }

  /** Hands a whole message (its kept prefix) to the client or server side. */
  private deliver(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    const p = d.prefix();
    if (fromClient) this.onClientPacket(d, p, meta, emit);
    else this.onServerPacket(d, p, meta, emit);
    d.clearPrefix();
  }

  /** `n` bytes after the chunk were not captured. */
  private skip(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    let left = n;
    if (!d.lost && d.inPayload) {
      const take = Math.min(d.length - d.seen, left);
      d.seen += take;
      left -= take;
      d.truncated = true;
      if (d.seen === d.length) this.endPacket(d, fromClient, meta, emit);
    }
    if (left === 0) return;
    if (!d.lost && d.continued) {
      // the next continuation header was not captured: the message ends in these bytes
      d.msgBytes += left;
      d.truncated = true;
      d.continued = false;
      this.deliver(d, fromClient, meta, emit);
    }
    if (!d.lost) this.lose(d, fromClient);
    if (!fromClient && this.lostOpen) this.respBytes += left;
    this.stats.resyncBytes += left;
  }

  private lose(d: Direction, fromClient: boolean): void {
    d.lost = true;
    d.reset();
    if (!fromClient && this.phase !== Phase.Idle) this.lostOpen = true;
  }

  /** A chunk while the framing is lost: true when it starts packets again and should be parsed. */
  private resync(
    d: Direction,
    fromClient: boolean,
    data: Uint8Array,
    missing: number,
    meta: ChunkMeta,
    emit: Emit,
  ): boolean {
    if (fromClient) {
      if (startsPackets(data, true, 0)) {
        d.lost = false;
        return true;
      }
    } else if (this.pending.length > 0 && startsPackets(data, false, 1)) {
      // the next response starts here; the lost one ended before
      if (this.lostOpen) this.finishLost(d.lastEndNs, emit);
      d.lost = false;
      return true;
    } else if (this.lostOpen) {
      this.respBytes += data.length + missing;
      if (missing === 0 && endsWithTerminator(data, this.lenenc)) {
        this.finishLost(meta.endNs, emit);
        d.lost = false;
      }
    }
    this.stats.resyncBytes += data.length + missing;
    return false;
  }

  // ---- client side ----

  private onClientPacket(d: Direction, p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const seq = d.seq;
    if (this.stage === Stage.Ignored) return;
    if (this.stage !== Stage.Commands) {
      if (seq !== 0) {
        if (seq === 1 && looksLikeHandshakeResponse(p, 0, d.msgLength)) this.onHandshakeResponse(p, d.msgLength);
        return;
      }
      this.stage = Stage.Commands; // only commands have sequence id 0
    }
    if (seq !== 0) return; // LOCAL INFILE contents, COM_CHANGE_USER auth data
    const command = p.length > 0 ? (p[0] as number) : -1;
    if (command < 0 || !plausibleCommand(command, d.msgLength)) {
      this.stats.malformed++;
      this.lose(d, true);
      return;
    }
    this.beforeCommand(meta, emit);
    const name = COMMAND_NAMES[command] as string;
    const m = this.request(d, meta);
    const pending: Pending = { command };
    m.requestType = name;
    m.endpoint = name;
    switch (command) {
      case Command.Query:
      case Command.StmtPrepare: {
        const sql = summarizeSql(utf8Text(p, 1), this.options.redact);
        m.resource = sql.text;
        if (sql.traceparent !== undefined) m.traceparent = sql.traceparent;
        if (command === Command.Query) {
          m.requestType = sql.verb;
          m.endpoint = sql.endpoint;
          if (sql.verb === "USE") {
            const db = useTarget(sql.text);
            if (db !== undefined) pending.db = db;
          }
        } else {
          pending.statement = { text: sql.text, endpoint: sql.endpoint };
          this.lastPrepared = pending.statement;
        }
        break;
      }
      case Command.StmtExecute:
      case Command.StmtBulkExecute:
      case Command.StmtFetch:
      case Command.StmtReset:
      case Command.StmtClose:
      case Command.StmtSendLongData: {
        const id = p.length >= 5 ? u32(p, 1) : -1;
        const statement = id === LAST_PREPARED_STATEMENT ? this.lastPrepared : this.statements.get(id);
        if (statement) {
          m.resource = statement.text;
          if (command === Command.StmtExecute || command === Command.StmtBulkExecute) m.endpoint = statement.endpoint;
        }
        if (command === Command.StmtClose) {
          this.statements.delete(id);
          m.oneWay = true;
        } else if (command === Command.StmtSendLongData) m.oneWay = true;
        break;
      }
      case Command.InitDb: {
        const db = utf8Text(p, 1);
        m.resource = db;
        m.domain = db;
        pending.db = db;
        break;
      }
      case Command.ChangeUser: {
        const db = this.changeUserDb(p);
        if (db !== undefined) pending.db = db;
        break;
      }
      case Command.Quit:
        m.oneWay = true;
        break;
      case Command.BinlogDump:
      case Command.BinlogDumpGtid:
        m.oneWay = true; // a replication stream follows
        this.stage = Stage.Ignored;
        break;
    }
    emit(m);
    if (m.oneWay) return;
    if (this.pending.length >= MAX_PENDING) this.pending.shift();
    this.pending.push(pending);
  }

  private request(d: Direction, meta: ChunkMeta): L7Message {
    const m: L7Message = {
      kind: "request",
      startNs: d.startNs,
      endNs: meta.endNs,
      bytes: d.msgBytes,
      tid: d.tid,
      attributes: baseAttributes(),
    };
    if (d.tcpSeq !== undefined) m.tcpSeq = d.tcpSeq;
    if (this.db !== undefined) m.domain = this.db;
    if (d.truncated) (m.attributes as Record<string, boolean>)["kalman.truncated"] = true;
    return m;
  }

  /** A command arrives: whatever the server owed before must be over. */
  private beforeCommand(meta: ChunkMeta, emit: Emit): void {
    if (this.phase === Phase.PrepareGroupEnd && this.deferred) {
      this.eofMode = EofMode.Deprecated;
      this.complete(this.deferredEndNs, emit);
    }
    if (!this.s2c.lost) return;
    if (this.lostOpen) this.finishLost(this.s2c.lastEndNs, emit);
    // responses that fell entirely in lost bytes: keep the in-order pairing right
    while (this.pending.length > 0) {
      this.pending.shift();
      emit({
        kind: "response",
        startNs: meta.startNs,
        endNs: meta.startNs,
        bytes: 0,
        tid: 0,
        status: "unknown",
        exception: "response not captured",
        attributes: baseAttributes(),
      });
    }
  }

  /** HandshakeResponse41: capabilities, then user, auth data and the database. */
  private onHandshakeResponse(p: Uint8Array, length: number): void {
    const caps = u32(p, 0);
    if ((caps & Capability.Ssl) !== 0 && length === 32) {
      this.stage = Stage.Ignored; // TLS follows
      return;
    }
    if (this.stage === Stage.Start) this.stage = Stage.Handshake;
    this.eofMode = (caps & Capability.DeprecateEof) !== 0 ? EofMode.Deprecated : EofMode.Classic;
    this.optionalMetadata = (caps & Capability.OptionalResultsetMetadata) !== 0;
    this.compressed = (caps & (Capability.Compress | Capability.ZstdCompression)) !== 0;
    if ((caps & Capability.ConnectWithDb) === 0) return;
    const userEnd = p.indexOf(0, 32);
    if (userEnd < 0) return;
    let at = userEnd + 1;
    if ((caps & Capability.PluginAuthLenencData) !== 0) {
      const n = readLenenc(p, at, this.lenenc);
      if (n.size === 0) return;
      at += n.size + n.value;
    } else if ((caps & Capability.SecureConnection) !== 0) at += 1 + (p[at] ?? 0);
    else {
      const end = p.indexOf(0, at);
      if (end < 0) return;
      at = end + 1;
    }
    const dbEnd = p.indexOf(0, at);
    if (dbEnd > at) this.db = utf8Text(p, at, dbEnd);
  }

  /** Database of a COM_CHANGE_USER: user\0, auth data (1-byte length), database\0. */
  private changeUserDb(p: Uint8Array): string | undefined {
    const userEnd = p.indexOf(0, 1);
    if (userEnd < 0) return undefined;
    const at = userEnd + 2 + (p[userEnd + 1] ?? 0);
    const dbEnd = p.indexOf(0, at);
    return dbEnd > at ? utf8Text(p, at, dbEnd) : undefined;
  }

  // ---- server side ----

  private onServerPacket(d: Direction, p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const b0 = p.length > 0 ? (p[0] as number) : -1;
    if (this.stage === Stage.Start) {
      if (d.seq === 0 && b0 === Header.HandshakeV10 && this.pending.length === 0) {
        this.stage = Stage.Handshake;
        return;
      }
      this.stage = Stage.Commands;
    }
    if (this.stage === Stage.Handshake) {
      // auth switch / more data until OK or ERR (no records for the handshake)
      if (d.seq > 0 && (b0 === Header.Ok || b0 === Header.Err)) {
        this.stage = this.compressed ? Stage.Ignored : Stage.Commands;
      }
      return;
    }
    if (this.stage !== Stage.Commands) return;
    if (this.phase === Phase.PrepareGroupEnd && this.deferred) {
      if (b0 === Header.Eof && d.msgLength < 9) {
        this.eofMode = EofMode.Classic;
        this.respBytes += d.msgBytes;
        this.complete(meta.endNs, emit);
        return;
      }
      this.eofMode = EofMode.Deprecated;
      this.complete(this.deferredEndNs, emit);
    }
    if (this.phase === Phase.Idle) {
      if (b0 === Header.Err && isProgress(p)) return;
      const next = this.pending.shift();
      if (next === undefined) {
        if (b0 === Header.Err) this.unsolicitedError(d, p, meta, emit);
        else this.stats.resyncBytes += d.msgBytes; // the answer to a command we did not see
        return;
      }
      this.begin(next, d);
    } else {
      this.respBytes += d.msgBytes;
      if (d.truncated) this.respTruncated = true;
    }
    this.step(d, p, b0, meta, emit);
  }

  private begin(next: Pending, d: Direction): void {
    this.current = next;
    this.respStartNs = d.startNs;
    this.respTid = d.tid;
    this.respTcpSeq = d.tcpSeq;
    this.respBytes = d.msgBytes;
    this.respTruncated = d.truncated;
    this.rows = 0;
    this.resultSets = 0;
    this.affected = 0;
    this.sawOk = false;
    this.prepareId = -1;
    this.deferred = false;
    this.lostOpen = false;
    const c = next.command;
    this.phase =
      c === Command.StmtFetch || c === Command.FieldList
        ? Phase.Rows
        : c === Command.Statistics
          ? Phase.Statistics
          : Phase.First;
  }

  private step(d: Direction, p: Uint8Array, b0: number, meta: ChunkMeta, emit: Emit): void {
    switch (this.phase) {
      case Phase.First:
        this.first(d, p, b0, meta, emit);
        return;
      case Phase.Await:
        if (b0 === Header.Ok) this.ok(p, meta, emit);
        else if (b0 === Header.Err && !isProgress(p)) this.error(p, meta, emit);
        return;
      case Phase.ColumnDefs:
        if (--this.columnsLeft <= 0) this.phase = Phase.AfterDefs;
        return;
      case Phase.AfterDefs: {
        const eof = b0 === Header.Eof && d.msgLength < 9;
        if (this.eofMode === EofMode.Unknown)
          this.eofMode = eof && d.msgLength <= 5 ? EofMode.Classic : EofMode.Deprecated;
        this.phase = Phase.Rows;
        if (eof && this.eofMode === EofMode.Classic) return;
        this.row(d, p, b0, meta, emit);
        return;
      }
      case Phase.Rows:
        this.row(d, p, b0, meta, emit);
        return;
      case Phase.PrepareDefs:
        if (--this.columnsLeft > 0) return;
        if (this.eofMode === EofMode.Deprecated) this.nextPrepareGroup(meta.endNs, emit);
        else {
          this.phase = Phase.PrepareGroupEnd;
          this.deferred = this.eofMode === EofMode.Unknown && this.lastPrepareGroup();
          this.deferredEndNs = meta.endNs;
        }
        return;
      case Phase.PrepareGroupEnd:
        if (b0 === Header.Eof && d.msgLength < 9) {
          if (this.eofMode === EofMode.Unknown) this.eofMode = EofMode.Classic;
          this.nextPrepareGroup(meta.endNs, emit);
          return;
        }
        // no EOF between the groups: this packet is the next group's first definition
        if (this.eofMode === EofMode.Unknown) this.eofMode = EofMode.Deprecated;
        this.nextPrepareGroup(meta.endNs, emit);
        if ((this.phase as Phase) === Phase.PrepareDefs) this.step(d, p, b0, meta, emit);
        return;
      case Phase.Statistics:
        this.complete(meta.endNs, emit);
        return;
    }
  }

  /** First packet of a response (or of the next result): OK, ERR, EOF, PREPARE_OK, or a column count. */
  private first(d: Direction, p: Uint8Array, b0: number, meta: ChunkMeta, emit: Emit): void {
    const command = (this.current as Pending).command;
    if (b0 === Header.Err) {
      if (!isProgress(p)) this.error(p, meta, emit);
      return;
    }
    if (b0 === Header.Ok) {
      if (command === Command.StmtPrepare) this.prepareOk(d, p, meta, emit);
      else this.ok(p, meta, emit);
      return;
    }
    if (command === Command.ChangeUser || (command === Command.Query && b0 === Header.LocalInfile)) {
      this.phase = Phase.Await; // auth switch, or the server asks for a local file
      return;
    }
    if (b0 === Header.Eof && d.msgLength < 9) {
      // COM_SET_OPTION, COM_DEBUG: an EOF is the OK
      this.terminator(p, d.msgLength, meta, emit);
      return;
    }
    // a result set: [metadata flag,] column count [, metadata flag]
    let at = 0;
    let metadata = true;
    if (this.optionalMetadata) {
      metadata = p[0] !== 0;
      at = 1;
    }
    const count = readLenenc(p, at, this.lenenc);
    if (p.length === 0) {
      this.lose(this.s2c, false); // payload not captured
      return;
    }
    if (count.size === 0 || count.value < 1 || count.value > MAX_COLUMNS) {
      this.stats.malformed++;
      this.lose(this.s2c, false);
      return;
    }
    if (!this.optionalMetadata && d.msgLength === count.size + 1 && p.length > count.size) {
      metadata = p[count.size] !== 0; // MariaDB metadata caching: definitions skipped when 0
    }
    this.resultSets++;
    this.columnsLeft = metadata ? count.value : 0;
    this.phase = metadata ? Phase.ColumnDefs : Phase.AfterDefs;
  }

  private row(d: Direction, p: Uint8Array, b0: number, meta: ChunkMeta, emit: Emit): void {
    if (b0 === Header.Eof && !d.multi) this.terminator(p, d.msgLength, meta, emit);
    else if (b0 === Header.Err) {
      if (!isProgress(p)) this.error(p, meta, emit);
    } else this.rows++;
  }

  /** EOF, or OK with the EOF header: the result ends; another follows when the server says so. */
  private terminator(p: Uint8Array, length: number, meta: ChunkMeta, emit: Emit): void {
    if ((terminatorStatus(p, length, this.lenenc) & ServerStatus.MoreResultsExist) !== 0) this.phase = Phase.First;
    else this.complete(meta.endNs, emit);
  }

  private ok(p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    this.sawOk = true;
    const affected = readLenenc(p, 1, this.lenenc);
    if (affected.size === 0) {
      this.complete(meta.endNs, emit);
      return;
    }
    this.affected += affected.value;
    const idSize = readLenenc(p, 1 + affected.size, this.lenenc).size;
    const at = 1 + affected.size + idSize;
    const status = idSize > 0 && p.length >= at + 2 ? u16(p, at) : 0;
    if ((status & ServerStatus.MoreResultsExist) !== 0) this.phase = Phase.First;
    else this.complete(meta.endNs, emit);
  }

  /** COM_STMT_PREPARE_OK: statement id, columns, parameters; then their definitions. */
  private prepareOk(d: Direction, p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    if (d.msgLength < 12 || p.length < 9) {
      if (d.msgLength < 12) this.stats.malformed++;
      this.respTruncated = true;
      this.complete(meta.endNs, emit);
      return;
    }
    this.prepareId = u32(p, 1);
    const metadata = !this.optionalMetadata || d.msgLength < 13 || p[12] !== 0;
    const columns = metadata ? u16(p, 5) : 0;
    const params = metadata ? u16(p, 7) : 0;
    this.prepareColumns = columns;
    if (params > 0) {
      this.prepareGroup = 0;
      this.columnsLeft = params;
      this.phase = Phase.PrepareDefs;
    } else if (columns > 0) {
      this.prepareGroup = 1;
      this.columnsLeft = columns;
      this.phase = Phase.PrepareDefs;
    } else this.complete(meta.endNs, emit);
  }

  private lastPrepareGroup(): boolean {
    return this.prepareGroup === 1 || this.prepareColumns === 0;
  }

  private nextPrepareGroup(endNs: number, emit: Emit): void {
    if (this.lastPrepareGroup()) {
      this.complete(endNs, emit);
      return;
    }
    this.prepareGroup = 1;
    this.columnsLeft = this.prepareColumns;
    this.phase = Phase.PrepareDefs;
  }

  private response(endNs: number, status: L7Message["status"]): L7Message {
    const m: L7Message = {
      kind: "response",
      startNs: this.respStartNs,
      endNs,
      bytes: this.respBytes,
      tid: this.respTid,
      status,
      attributes: baseAttributes(),
    };
    if (this.respTcpSeq !== undefined) m.tcpSeq = this.respTcpSeq;
    return m;
  }

  /** The response to the current command is whole. */
  private complete(endNs: number, emit: Emit): void {
    const m = this.response(endNs, "ok");
    const attributes = m.attributes as Record<string, number | boolean>;
    if (this.resultSets > 0) attributes["db.response.returned_rows"] = this.rows;
    if (this.sawOk) attributes["db.response.affected_rows"] = this.affected;
    if (this.respTruncated) attributes["kalman.truncated"] = true;
    this.succeeded();
    emit(m);
  }

  private error(p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const err = parseErr(p);
    const m = this.response(meta.endNs, errorStatus(err.sqlState));
    m.code = err.code;
    if (err.message) m.exception = err.message;
    (m.attributes as Record<string, string>)["db.response.status_code"] = String(err.code);
    this.idle();
    emit(m);
  }

  /** Emits the response whose framing was lost (its end was not seen). */
  private finishLost(endNs: number, emit: Emit): void {
    const known = this.resultSets > 0 || this.prepareId >= 0;
    const m = this.response(Math.max(endNs, this.respStartNs), known ? "ok" : "unknown");
    (m.attributes as Record<string, boolean>)["kalman.truncated"] = true;
    this.succeeded();
    emit(m);
  }

  /** Side effects of a successful response, then idle. */
  private succeeded(): void {
    const cmd = this.current;
    if (cmd?.statement !== undefined && this.prepareId >= 0) {
      if (this.statements.size >= MAX_STATEMENTS && !this.statements.has(this.prepareId)) {
        this.statements.delete(this.statements.keys().next().value as number);
      }
      this.statements.set(this.prepareId, cmd.statement);
    }
    if (cmd?.db !== undefined) this.db = cmd.db;
    this.idle();
  }

  private idle(): void {
    this.phase = Phase.Idle;
    this.current = undefined;
    this.deferred = false;
    this.lostOpen = false;
  }

  /** An ERR nobody asked for (server closing an idle connection, or the answer to an unseen command). */
  private unsolicitedError(d: Direction, p: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const err = parseErr(p);
    const m: L7Message = {
      kind: "response",
      unsolicited: true,
      startNs: d.startNs,
      endNs: meta.endNs,
      bytes: d.msgBytes,
      tid: d.tid,
      status: errorStatus(err.sqlState),
      code: err.code,
      attributes: baseAttributes(),
    };
    if (err.message) m.exception = err.message;
    if (d.tcpSeq !== undefined) m.tcpSeq = d.tcpSeq;
    emit(m);
  }
}
