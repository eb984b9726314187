import type { ChunkMeta } from "../../types.js";
import { ascii, utf8Text } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { type CommandInfo, lookupCommand, Pending, Special } from "./commands.js";
import { replyVerdict, requestVerdict, Verdict } from "./detect.js";
import { errorText, lostReplyMessage, pushMessage, replyMessage, requestMessage, type Span } from "./record.js";

/** RESP type bytes (RESP2 and RESP3). */
enum T {
  /** Pseudo type: an inline command line ("PING\r\n"). */
  Inline = 0,
  Simple = 0x2b,
  Error = 0x2d,
  Integer = 0x3a,
  Bulk = 0x24,
  Array = 0x2a,
  Null = 0x5f,
  Double = 0x2c,
  Boolean = 0x23,
  BlobError = 0x21,
  Verbatim = 0x3d,
  BigNumber = 0x28,
  Map = 0x25,
  Set = 0x7e,
  Push = 0x3e,
  Attribute = 0x7c,
}

enum State {
  /** At a value boundary: the next byte is a type byte (or an inline command). */
  Idle = 0,
  /** Reading a header or simple line up to LF. */
  Line = 1,
  /** Reading `bulkLeft` bytes of a bulk string. */
  Bulk = 2,
  /** Expecting the CR, then the LF, after bulk data. */
  BulkCR = 3,
  BulkLF = 4,
  /** Lost our place: wait for a chunk that starts a message. */
  Resync = 5,
}

/** First element of a pub/sub or push array. Confirmation kinds equal their Pending codes. */
enum Kind {
  None = 0,
  Subscribe = 1,
  Unsubscribe = 2,
  PSubscribe = 3,
  PUnsubscribe = 4,
  SSubscribe = 5,
  SUnsubscribe = 6,
  Message = 10,
  PMessage = 11,
  SMessage = 12,
  Invalidate = 13,
  Other = 14,
}

const CR = 0x0d;
const LF = 0x0a;
const MAX_DEPTH = 32;
const SCRATCH = 512;
const MAX_INLINE = 64 * 1024;
const MAX_TEXT_LINE = 1024 * 1024;
const MAX_NUMBER_LINE = 32;
const MAX_BULK = 512 * 1024 * 1024;
const MAX_ELEMENTS = 0x7fffffff;
const MAX_PENDING = 256;
const MAX_SPECIAL = 16;
const MAX_KIND_LENGTH = 16;
/** Bytes held while deciding whether a chunk after a gap starts a message. */
const PROBE = 64;
/** Invalid number marker. */
const BAD = -0x20000000000000;

const KINDS: ReadonlyArray<readonly [Kind, string]> = [
  [Kind.Subscribe, "subscribe"],
  [Kind.Unsubscribe, "unsubscribe"],
  [Kind.PSubscribe, "psubscribe"],
  [Kind.PUnsubscribe, "punsubscribe"],
  [Kind.SSubscribe, "ssubscribe"],
  [Kind.SUnsubscribe, "sunsubscribe"],
  [Kind.Message, "message"],
  [Kind.PMessage, "pmessage"],
  [Kind.SMessage, "smessage"],
  [Kind.Invalidate, "invalidate"],
];
const KIND_BYTES = KINDS.map(([k, s]) => [k, Uint8Array.from(s, (c) => c.charCodeAt(0))] as const);
const KIND_ENDPOINT = new Map<Kind, string>(KINDS.map(([k, s]) => [k, s.toUpperCase()]));

const isConfirmation = (k: Kind) => k >= Kind.Subscribe && k <= Kind.SUnsubscribe;
const isUnsubscribe = (k: Kind) => k === Kind.Unsubscribe || k === Kind.PUnsubscribe || k === Kind.SUnsubscribe;

/** One direction of a connection: RESP framing state and the message being read. */
class Direction {
  state = State.Idle;
  lineType = 0;
  /** Bytes of the current line before its LF (after the type byte). */
  lineLen = 0;
  lastByte = 0;
  bulkLeft = 0;
  capture = false;
  /** Part of the captured bulk string was not captured: do not use it. */
  captureCut = false;
  readonly scratch: Uint8Array;
  scratchLen = 0;
  active = false;
  readonly span: Span = { startNs: 0, endNs: 0, bytes: 0, tid: 0, tcpSeq: undefined, truncated: false };
  /** Open aggregates: elements still expected, and their types. */
  depth = 0;
  readonly counts = new Float64Array(MAX_DEPTH);
  readonly types = new Uint8Array(MAX_DEPTH);
  /** While resynchronising: the first bytes of a possible message start, and where they came from. */
  readonly probe = new Uint8Array(PROBE);
  probeLen = 0;
  readonly probeMeta: ChunkMeta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
  /** Type of the top-level value (attributes aside); 0 until its header is seen. */
  topType = 0;
  /** Elements of the top-level aggregate completed so far (the argument index for requests). */
  topIndex = 0;

  constructor(
    readonly fromClient: boolean,
    scratchSize: number,
  ) {
    this.scratch = new Uint8Array(scratchSize);
  }

  begin(meta: ChunkMeta, offset: number): void {
    this.active = true;
    const s = this.span;
    s.startNs = meta.startNs;
    s.endNs = meta.endNs;
    s.tid = meta.tid;
    s.tcpSeq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
    s.bytes = 0;
    s.truncated = false;
    this.depth = 0;
    this.topType = 0;
    this.topIndex = 0;
  }

  startLine(type: number): void {
    this.state = State.Line;
    this.lineType = type;
    this.lineLen = 0;
    this.lastByte = 0;
    this.scratchLen = 0;
  }

  reset(state: State): void {
    this.state = state;
    this.active = false;
    this.depth = 0;
    this.topType = 0;
    this.topIndex = 0;
    this.scratchLen = 0;
    this.bulkLeft = 0;
  }

  /** True when a header here would be the top-level value (only attribute prefixes are open). */
  atTop(): boolean {
    for (let i = 0; i < this.depth; i++) if (this.types[i] !== T.Attribute || this.counts[i] !== 1) return false;
    return true;
  }

  push(type: number, count: number): boolean {
    if (this.depth >= MAX_DEPTH) return false;
    this.counts[this.depth] = count;
    this.types[this.depth] = type;
    this.depth++;
    return true;
  }

  copy(data: Uint8Array, from: number, to: number): void {
    const end = Math.min(to, from + this.scratch.length - this.scratchLen);
    for (let i = from; i < end; i++) this.scratch[this.scratchLen++] = data[i] as number;
  }
}

/** A request waiting for a reply that is not a plain one (pub/sub, MONITOR, RESET). */
interface SpecialPending {
  seq: number;
  kind: Pending;
  /** Confirmations expected (-1: as many as the server says). */
  confirms: number;
}

/** What the request being read needs from its arguments. */
interface RequestState {
  argc: number;
  cmd: CommandInfo | undefined;
  requestType: string | undefined;
  key: string;
  keyAt: number;
  /** CLIENT REPLY: its mode argument is wanted. */
  clientReply: boolean;
  /** CLIENT REPLY mode: 1 ON, 2 OFF, 3 SKIP. */
  replyMode: number;
}

/** Incremental RESP2/RESP3 parser for one connection: commands one way, replies the other, in order. */
export class RedisSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  private readonly req: RequestState = {
    argc: 0,
    cmd: undefined,
    requestType: undefined,
    key: "",
    keyAt: 0,
    clientReply: false,
    replyMode: 0,
  };
  private version = "2";
  // CLIENT REPLY OFF / SKIP
  private repliesOff = false;
  private skipNext = false;
  private subscribed = false;
  private monitoring = false;
  // requests without a reply yet: what their reply means, how many confirmations (-1 unknown)
  // (most are plain: only the others are listed, by sequence number)
  private pendingSize = 0;
  private headSeq = 0;
  private readonly special: SpecialPending[] = [];
  // reply being read
  private kind = Kind.None;
  private topCount = 0;
  private subCount = -1;
  private error: string | undefined;
  private monitorLine = false;
  // pub/sub confirmations of one command, gathered into one response
  private holdActive = false;
  private holdKind = Kind.None;
  private holdLeft = 0;
  private readonly hold: Span = { startNs: 0, endNs: 0, bytes: 0, tid: 0, tcpSeq: undefined, truncated: false };

  constructor(options: SessionOptions) {
    const scratch = Math.max(64, Math.min(SCRATCH, options.maxBufferBytes));
    this.c2s = new Direction(true, scratch);
    this.s2c = new Direction(false, scratch);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0) {
      if (d.state === State.Resync && !this.resync(d, data, missing, meta, emit)) return;
      this.process(d, data, meta, emit);
    }
    if (missing > 0) this.skipMissing(d, missing, meta, emit);
  }

  buffered(): number {
    return this.c2s.scratchLen + this.s2c.scratchLen + this.c2s.probeLen + this.s2c.probeLen;
  }

  close(emit: Emit): void {
    this.flushHold(emit);
  }

  /**
   * After a gap: does this chunk (with bytes held from the chunks before) start a message? True when
   * `data` is to be parsed now; false when it was skipped or is held until there are bytes enough to tell.
   */
  private resync(d: Direction, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): boolean {
    const held = d.probeLen;
    let view: Uint8Array;
    if (held > 0) {
      const take = Math.min(data.length, PROBE - held);
      d.probe.set(data.subarray(0, take), held);
      view = d.probe.subarray(0, held + take);
    } else view = data.length > PROBE ? data.subarray(0, PROBE) : data;
    let v = this.startVerdict(d, view);
    if (v === Verdict.More && view.length >= PROBE) v = Verdict.Yes;
    if (v === Verdict.No) {
      this.stats.resyncBytes += held + data.length + missing;
      d.probeLen = 0;
      return false;
    }
    if (v === Verdict.More) {
      // all of data fits in the probe: keep it until the next chunk tells
      if (held === 0) {
        d.probe.set(data, 0);
        const pm = d.probeMeta;
        pm.startNs = meta.startNs;
        pm.endNs = meta.endNs;
        pm.tcpSeq = meta.tcpSeq;
        pm.seqValid = meta.seqValid;
        pm.tid = meta.tid;
      }
      d.probeLen = held + data.length;
      if (missing > 0) {
        this.stats.resyncBytes += d.probeLen + missing;
        d.probeLen = 0;
      }
      return false;
    }
    d.state = State.Idle;
    if (held > 0) {
      d.probeLen = 0;
      this.process(d, d.probe.subarray(0, held), d.probeMeta, emit);
    }
    return true;
  }

  private startVerdict(d: Direction, b: Uint8Array): Verdict {
    if (d.fromClient) return requestVerdict(b);
    const v = replyVerdict(b);
    // a reply needs a request to answer, unless it is a push, a pub/sub delivery or the MONITOR feed
    if (v === Verdict.Yes && !(this.pendingSize > 0 || b[0] === T.Push || this.subscribed || this.monitoring)) {
      return Verdict.No;
    }
    return v;
  }

  private process(d: Direction, data: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const n = data.length;
    let i = 0;
    while (i < n) {
      switch (d.state) {
        case State.Idle: {
          const b = data[i] as number;
          if (!d.active) {
            // blank lines between inline commands
            if (d.fromClient && (b === CR || b === LF)) {
              i++;
              continue;
            }
            d.begin(meta, i);
            if (d.fromClient) this.startRequest(0);
          }
          if (!this.startValue(d, b)) {
            this.malformed(d, meta, emit);
            break;
          }
          if (d.lineType !== T.Inline) {
            i++;
            d.span.bytes++;
          }
          break;
        }
        case State.Line: {
          // header lines are short: a plain scan beats indexOf's call
          let end = i;
          while (end < n && data[end] !== LF) end++;
          const lf = end < n ? end : -1;
          if (end > i) {
            d.copy(data, i, end);
            d.lineLen += end - i;
            d.lastByte = data[end - 1] as number;
          }
          if (d.lineLen > maxLine(d.lineType)) {
            this.malformed(d, meta, emit);
            break;
          }
          if (lf < 0) {
            d.span.bytes += n - i;
            i = n;
            break;
          }
          d.span.bytes += lf + 1 - i;
          i = lf + 1;
          d.span.endNs = meta.endNs;
          if (d.fromClient) this.requestLine(d, meta, emit);
          else this.replyLine(d, meta, emit);
          break;
        }
        case State.Bulk: {
          const take = Math.min(d.bulkLeft, n - i);
          if (d.capture) d.copy(data, i, i + take);
          d.bulkLeft -= take;
          d.span.bytes += take;
          i += take;
          if (d.bulkLeft === 0) d.state = State.BulkCR;
          break;
        }
        case State.BulkCR:
          if (data[i] !== CR) {
            this.malformed(d, meta, emit);
            break;
          }
          i++;
          d.span.bytes++;
          d.state = State.BulkLF;
          break;
        case State.BulkLF:
          if (data[i] !== LF) {
            this.malformed(d, meta, emit);
            break;
          }
          i++;
          d.span.bytes++;
          d.span.endNs = meta.endNs;
          this.bulkDone(d, emit);
          break;
        case State.Resync:
          this.stats.resyncBytes += n - i;
          return;
      }
    }
  }

  /** A value starts with type byte `b`; false when `b` cannot start one here. */
  private startValue(d: Direction, b: number): boolean {
    if (d.fromClient) {
      if (d.depth > 0) {
        if (b !== T.Bulk) return false;
        d.startLine(T.Bulk);
      } else if (b === T.Array) d.startLine(T.Array);
      else if (b >= 0x20 && b < 0x7f) d.startLine(T.Inline);
      else return false;
      return true;
    }
    switch (b) {
      case T.Simple:
      case T.Error:
      case T.Integer:
      case T.Bulk:
      case T.Array:
        break;
      case T.Null:
      case T.Double:
      case T.Boolean:
      case T.BlobError:
      case T.Verbatim:
      case T.BigNumber:
      case T.Map:
      case T.Set:
      case T.Push:
      case T.Attribute:
        this.version = "3";
        break;
      default:
        return false;
    }
    if (d.topType === 0 && b !== T.Attribute && d.atTop()) {
      d.topType = b;
      this.kind = Kind.None;
      this.topCount = 0;
      this.subCount = -1;
      this.error = undefined;
      this.monitorLine = false;
    }
    d.startLine(b);
    return true;
  }

  // ---- requests ----

  private requestLine(d: Direction, meta: ChunkMeta, emit: Emit): void {
    if (d.lineType === T.Inline) {
      this.inlineDone(d, false, emit);
      return;
    }
    const n = d.lastByte === CR ? parseNumber(d.scratch, 0, d.lineLen - 1) : BAD;
    if (d.depth === 0) {
      if (n === BAD || n > MAX_ELEMENTS) {
        this.malformed(d, meta, emit);
        return;
      }
      if (n <= 0) {
        // "*0" / "*-1": Redis ignores it, no reply
        d.reset(State.Idle);
        return;
      }
      this.startRequest(n);
      d.push(T.Array, n);
      d.state = State.Idle;
      return;
    }
    if (n === BAD || n < 0 || n > MAX_BULK) {
      this.malformed(d, meta, emit);
      return;
    }
    d.capture = this.wantArg(d.topIndex);
    d.captureCut = false;
    d.scratchLen = 0;
    d.bulkLeft = n;
    d.state = n > 0 ? State.Bulk : State.BulkCR;
  }

  private startRequest(argc: number): void {
    const r = this.req;
    r.argc = argc;
    r.cmd = undefined;
    r.requestType = undefined;
    r.key = "";
    r.keyAt = 0;
    r.clientReply = false;
    r.replyMode = 0;
  }

  private wantArg(index: number): boolean {
    const r = this.req;
    if (index === 0) return true;
    const c = r.cmd;
    if (!c) return false;
    switch (index) {
      case 1:
        return c.container || r.keyAt === 1 || c.special === Special.Hello;
      case 2:
        return r.keyAt === 2 || c.special === Special.NumKeysAt2 || r.clientReply;
      case 3:
        return r.keyAt === 3;
      default:
        return false;
    }
  }

  /** Takes what the record needs from argument `index` (bytes [start, end) of b). */
  private requestArg(index: number, b: Uint8Array, start: number, end: number): void {
    const r = this.req;
    if (index === 0) {
      const c = lookupCommand(b, start, end);
      r.cmd = c;
      if (c) {
        r.requestType = c.name;
        r.keyAt = c.keyAt;
        if (c.pending === Pending.Reset) {
          this.repliesOff = false;
          this.skipNext = false;
          this.version = "2";
        }
      } else r.requestType = unknownCommand(b, start, end);
      return;
    }
    const c = r.cmd;
    if (!c) return;
    if (index === 1 && c.container) {
      const sub = word(b, start, end);
      if (sub !== undefined) {
        r.requestType = `${c.name} ${sub}`;
        if (c.subKeys?.has(sub)) r.keyAt = 2;
        if (c.special === Special.Client && sub === "REPLY") r.clientReply = true;
      }
    } else if (index === 1 && c.special === Special.Hello) {
      if (end - start === 1 && (b[start] === 0x32 || b[start] === 0x33)) this.version = b[start] === 0x33 ? "3" : "2";
    } else if (index === 2 && c.special === Special.NumKeysAt2) {
      if (parseNumber(b, start, end) >= 1) r.keyAt = 3;
    } else if (index === 2 && r.clientReply) {
      const mode = word(b, start, end);
      r.replyMode = mode === "ON" ? 1 : mode === "OFF" ? 2 : mode === "SKIP" ? 3 : 0;
    }
    if (index === r.keyAt) r.key = keyText(b, start, end);
  }

  /** An inline command line: space-separated words, quotes allowed. */
  private inlineDone(d: Direction, cut: boolean, emit: Emit): void {
    const b = d.scratch;
    let end = d.scratchLen;
    if (!cut && d.lineLen <= b.length && end > 0 && b[end - 1] === CR) end--;
    const bounds = this.inlineWords;
    let argc = 0;
    let i = 0;
    while (i < end) {
      const c = b[i];
      if (c === 0x20 || c === 0x09) {
        i++;
        continue;
      }
      let s = i;
      let e: number;
      if (c === 0x22 || c === 0x27) {
        s = i + 1;
        let j = s;
        while (j < end && b[j] !== c) j += b[j] === 0x5c && c === 0x22 ? 2 : 1;
        e = Math.min(j, end);
        i = j + 1;
      } else {
        while (i < end && b[i] !== 0x20 && b[i] !== 0x09) i++;
        e = i;
      }
      if (argc < 4) {
        bounds[2 * argc] = s;
        bounds[2 * argc + 1] = e;
      }
      argc++;
    }
    if (argc === 0) {
      // an empty line: Redis ignores it
      d.reset(State.Idle);
      return;
    }
    this.startRequest(argc);
    for (let k = 0; k < Math.min(argc, 4); k++) {
      if (this.wantArg(k)) this.requestArg(k, b, bounds[2 * k] as number, bounds[2 * k + 1] as number);
    }
    this.requestDone(d, emit);
  }

  private readonly inlineWords = new Int32Array(8);

  private requestDone(d: Direction, emit: Emit): void {
    const r = this.req;
    let oneWay = false;
    if (r.replyMode === 1) {
      this.repliesOff = false;
      this.skipNext = false;
    } else if (r.replyMode === 2) {
      this.repliesOff = true;
      oneWay = true;
    } else if (r.replyMode === 3) {
      this.skipNext = !this.repliesOff;
      oneWay = true;
    } else if (this.repliesOff) oneWay = true;
    else if (this.skipNext) {
      this.skipNext = false;
      oneWay = true;
    }
    if (!oneWay) {
      const c = r.cmd;
      const kind = c ? c.pending : Pending.Plain;
      const confirms = isConfirmation(kind as number as Kind) ? (r.argc > 1 ? r.argc - 1 : -1) : 0;
      this.pushPending(kind, confirms);
    }
    emit(requestMessage(d.span, this.version, r.requestType, r.key, oneWay));
    d.reset(State.Idle);
  }

  // ---- replies ----

  private replyLine(d: Direction, meta: ChunkMeta, emit: Emit): void {
    if (d.lastByte !== CR) {
      this.malformed(d, meta, emit);
      return;
    }
    const t = d.lineType;
    const len = d.lineLen - 1;
    const top = d.depth === 0;
    switch (t) {
      case T.Bulk:
      case T.Verbatim:
      case T.BlobError: {
        const n = parseNumber(d.scratch, 0, len);
        if (n === -1 && t === T.Bulk) {
          this.elementDone(d, emit);
          return;
        }
        if (n < 0 || n > MAX_BULK) {
          this.malformed(d, meta, emit);
          return;
        }
        d.capture =
          (t === T.BlobError && top) ||
          (d.depth === 1 &&
            d.topIndex === 0 &&
            n <= MAX_KIND_LENGTH &&
            (d.topType === T.Array || d.topType === T.Push));
        d.captureCut = false;
        d.scratchLen = 0;
        d.bulkLeft = n;
        d.state = n > 0 ? State.Bulk : State.BulkCR;
        return;
      }
      case T.Array:
      case T.Set:
      case T.Push:
      case T.Map:
      case T.Attribute: {
        const n = parseNumber(d.scratch, 0, len);
        if (n === -1 && t === T.Array) {
          this.elementDone(d, emit);
          return;
        }
        if (n < 0 || n > MAX_ELEMENTS) {
          this.malformed(d, meta, emit);
          return;
        }
        const count = t === T.Map ? 2 * n : t === T.Attribute ? 2 * n + 1 : n;
        if (top && t !== T.Attribute) this.topCount = count;
        if (count === 0) {
          this.elementDone(d, emit);
          return;
        }
        if (!d.push(t, count)) {
          this.malformed(d, meta, emit);
          return;
        }
        d.state = State.Idle;
        return;
      }
      case T.Error:
        if (top) this.error = errorText(d.scratch, 0, Math.min(len, d.scratchLen));
        this.elementDone(d, emit);
        return;
      case T.Integer: {
        const n = parseNumber(d.scratch, 0, len);
        if (n === BAD) {
          this.malformed(d, meta, emit);
          return;
        }
        if (d.depth === 1 && d.topIndex === 2) this.subCount = n;
        this.elementDone(d, emit);
        return;
      }
      case T.Null:
        if (len !== 0) {
          this.malformed(d, meta, emit);
          return;
        }
        this.elementDone(d, emit);
        return;
      case T.Boolean:
        if (len !== 1 || (d.scratch[0] !== 0x74 && d.scratch[0] !== 0x66)) {
          this.malformed(d, meta, emit);
          return;
        }
        this.elementDone(d, emit);
        return;
      case T.Simple:
        if (top && this.monitoring && len > 0 && d.scratch[0] !== undefined && isDigit(d.scratch[0])) {
          this.monitorLine = true;
        }
        this.elementDone(d, emit);
        return;
      default:
        // double, big number: text we do not need
        this.elementDone(d, emit);
        return;
    }
  }

  private bulkDone(d: Direction, emit: Emit): void {
    if (d.capture) {
      if (d.fromClient) {
        if (!d.captureCut) this.requestArg(d.topIndex, d.scratch, 0, d.scratchLen);
      } else if (d.depth === 0) this.error = errorText(d.scratch, 0, d.scratchLen);
      else if (!d.captureCut) this.kind = kindOf(d.scratch, d.scratchLen);
      d.capture = false;
    }
    this.elementDone(d, emit);
  }

  /** A value ended: count it in its aggregate; a whole message when nothing is open. */
  private elementDone(d: Direction, emit: Emit): void {
    while (d.depth > 0) {
      const top = d.depth - 1;
      if (top === 0) d.topIndex++;
      const left = (d.counts[top] as number) - 1;
      d.counts[top] = left;
      if (left > 0) {
        d.state = State.Idle;
        return;
      }
      d.depth--;
    }
    if (d.fromClient) this.requestDone(d, emit);
    else {
      this.replyDone(d.span, d.topType, emit);
      d.reset(State.Idle);
    }
  }

  /** A whole reply: pairs with the oldest request unless it is a push, a pub/sub delivery or a MONITOR line. */
  private replyDone(s: Span, type: number, emit: Emit): void {
    const kind = this.kind;
    if (type === T.Push || (type === T.Array && kind !== Kind.None)) {
      const count = this.topCount;
      if (isConfirmation(kind) && count === 3 && this.subCount >= 0) {
        this.confirmation(s, kind, emit);
        return;
      }
      const delivery =
        ((kind === Kind.Message || kind === Kind.SMessage) && count === 3) || (kind === Kind.PMessage && count === 4);
      if (type === T.Push || (delivery && (this.subscribed || this.pendingSize === 0))) {
        emit(pushMessage(s, this.version, KIND_ENDPOINT.get(kind) ?? "PUSH"));
        return;
      }
    }
    if (type === T.Simple && this.monitorLine) {
      emit(pushMessage(s, this.version, "MONITOR"));
      return;
    }
    this.flushHold(emit);
    const failed = type === T.Error || type === T.BlobError;
    const answered = this.shiftPending();
    if (answered === Pending.Monitor && !failed) this.monitoring = true;
    else if (answered === Pending.Reset) {
      this.monitoring = false;
      this.subscribed = false;
    }
    emit(replyMessage(s, this.version, this.error, failed));
  }

  /** A (un)subscribe confirmation: one per channel, all answering one command. */
  private confirmation(s: Span, kind: Kind, emit: Emit): void {
    const count = this.subCount;
    if (count > 0) this.subscribed = true;
    else if (isUnsubscribe(kind)) this.subscribed = false;
    const h = this.hold;
    if (this.holdActive && this.holdKind === kind) {
      h.bytes += s.bytes;
      h.endNs = s.endNs;
      h.truncated ||= s.truncated;
    } else {
      this.flushHold(emit);
      const head = this.special[0];
      if (this.pendingSize === 0 || head?.seq !== this.headSeq || head.kind !== kind) {
        emit(pushMessage(s, this.version, KIND_ENDPOINT.get(kind) ?? "PUSH"));
        return;
      }
      this.holdActive = true;
      this.holdKind = kind;
      this.holdLeft = head.confirms;
      h.startNs = s.startNs;
      h.endNs = s.endNs;
      h.bytes = s.bytes;
      h.tid = s.tid;
      h.tcpSeq = s.tcpSeq;
      h.truncated = s.truncated;
    }
    if (this.holdLeft > 0) this.holdLeft--;
    if (this.holdLeft === 0 || (this.holdLeft < 0 && count === 0)) this.flushHold(emit);
  }

  private flushHold(emit: Emit): void {
    if (!this.holdActive) return;
    this.holdActive = false;
    this.shiftPending();
    emit(replyMessage(this.hold, this.version, undefined, false));
  }

  private pushPending(kind: Pending, confirms: number): void {
    if (this.pendingSize === MAX_PENDING) this.shiftPending();
    const seq = this.headSeq + this.pendingSize;
    this.pendingSize++;
    if (kind === Pending.Plain) return;
    if (this.special.length === MAX_SPECIAL) this.special.shift();
    this.special.push({ seq, kind, confirms });
  }

  /** Removes the oldest pending request; its Pending kind, or -1 when none. */
  private shiftPending(): number {
    if (this.pendingSize === 0) return -1;
    let kind: number = Pending.Plain;
    const head = this.special[0];
    if (head && head.seq === this.headSeq) {
      kind = head.kind;
      this.special.shift();
    }
    this.headSeq++;
    this.pendingSize--;
    return kind;
  }

  /** Replies went uncaptured: every request still waiting was answered there, outcome unknown. */
  private loseReplies(meta: ChunkMeta, emit: Emit): void {
    this.flushHold(emit);
    while (this.shiftPending() >= 0) emit(lostReplyMessage(meta.startNs, meta.endNs, meta.tid, this.version));
  }

  // ---- gaps and errors ----

  /** `n` bytes that side sent were not captured. */
  private skipMissing(d: Direction, missing: number, meta: ChunkMeta, emit: Emit): void {
    let n = missing;
    if (d.state === State.Resync) {
      this.stats.resyncBytes += n;
      return;
    }
    if (d.state === State.Bulk) {
      const take = Math.min(n, d.bulkLeft);
      d.bulkLeft -= take;
      d.span.bytes += take;
      d.span.truncated = true;
      if (take > 0 && d.capture) d.captureCut = true;
      n -= take;
      if (d.bulkLeft > 0) return;
      d.state = State.BulkCR;
      if (n === 0) return;
    }
    if (d.state === State.BulkCR) {
      d.span.truncated = true;
      n--;
      d.span.bytes++;
      d.state = State.BulkLF;
      if (n === 0) return;
    }
    if (d.state === State.BulkLF) {
      d.span.truncated = true;
      n--;
      d.span.bytes++;
      d.span.endNs = meta.endNs;
      this.bulkDone(d, emit);
      if (n === 0) return;
    }
    this.lost(d, n, meta, emit);
  }

  /** Lost our place with `n` uncaptured bytes: end the message in progress there, then resync. */
  private lost(d: Direction, n: number, meta: ChunkMeta, emit: Emit): void {
    if (d.active) {
      d.span.bytes += n;
      d.span.truncated = true;
      d.span.endNs = meta.endNs;
      if (d.fromClient) {
        if (d.state === State.Line && d.lineType === T.Inline) this.inlineDone(d, true, emit);
        else this.requestDone(d, emit);
      } else {
        if (d.state === State.Line && d.lineType === T.Error && d.depth === 0) {
          this.error = errorText(d.scratch, 0, d.scratchLen);
        }
        this.replyDone(d.span, d.topType, emit);
      }
    } else this.stats.resyncBytes += n;
    if (!d.fromClient) this.loseReplies(meta, emit);
    d.reset(State.Resync);
  }

  private malformed(d: Direction, meta: ChunkMeta, emit: Emit): void {
    this.stats.malformed++;
    if (!d.fromClient) this.loseReplies(meta, emit);
    d.reset(State.Resync);
  }
}

function maxLine(type: number): number {
  switch (type) {
    case T.Inline:
      return MAX_INLINE;
    case T.Simple:
    case T.Error:
      return MAX_TEXT_LINE;
    case T.Double:
    case T.BigNumber:
      return 4096;
    default:
      return MAX_NUMBER_LINE;
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** Decimal integer in bytes [start, end) (optional '-'), or BAD. */
function parseNumber(b: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 21) return BAD;
  let i = start;
  const negative = b[i] === 0x2d;
  if (negative) i++;
  if (i === end) return BAD;
  let n = 0;
  for (; i < end; i++) {
    const c = b[i] as number;
    if (!isDigit(c)) return BAD;
    n = n * 10 + (c - 0x30);
  }
  return negative ? -n : n;
}

/** A key as text: short ASCII keys without a decoder call, others as UTF-8. */
function keyText(b: Uint8Array, start: number, end: number): string {
  if (end - start > 32) return utf8Text(b, start, end);
  let key = "";
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c >= 0x80) return utf8Text(b, start, end);
    key += String.fromCharCode(c);
  }
  return key;
}

/** Upper-case word of bytes [start, end) when it is a short token (a subcommand or mode), else undefined. */
function word(b: Uint8Array, start: number, end: number): string | undefined {
  if (end <= start || end - start > 32) return undefined;
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (c <= 0x20 || c >= 0x7f) return undefined;
  }
  return ascii(b, start, end).toUpperCase();
}

/** Name of a command the table does not know (a module's, a typo): upper-cased when it is a token. */
function unknownCommand(b: Uint8Array, start: number, end: number): string {
  return word(b, start, end) ?? "UNKNOWN";
}

function kindOf(b: Uint8Array, len: number): Kind {
  outer: for (const [kind, bytes] of KIND_BYTES) {
    if (bytes.length !== len) continue;
    for (let i = 0; i < len; i++) if (b[i] !== bytes[i]) continue outer;
    return kind;
  }
  return Kind.Other;
}
