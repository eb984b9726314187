import type { ChunkMeta, L7Message } from "../../types.js";
import { ByteQueue, StringCache } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { couldStartMessage, looksLikeRequestStart, looksLikeResponseStart } from "./detect.js";
import { type Head, parseHead } from "./head.js";
import { toMessage } from "./record.js";

enum Mode {
  /** Waiting for / accumulating a message head. */
  Head = 0,
  /** Skipping `remaining` body bytes. */
  Body = 1,
  /** Chunked body: expecting a chunk-size line. */
  ChunkSize = 2,
  /** Chunked body: skipping chunk data (then CRLF). */
  ChunkData = 3,
  /** Chunked body: trailer lines until an empty line. */
  Trailer = 4,
  /** Body runs until the connection closes. */
  UntilClose = 5,
  /** Lost our place: skip until a chunk starts with a message start. */
  Resync = 6,
  /** After 101 Switching Protocols: not HTTP/1 any more. */
  Upgraded = 7,
}

const MAX_HEAD = 32 * 1024;
const MAX_PENDING_METHODS = 256;

/** One direction of an HTTP/1 connection. */
class Direction {
  mode = Mode.Head;
  remaining = 0;
  queue: ByteQueue;
  head: Head | undefined;
  /** Bytes of the message so far (head + body, including uncaptured bytes). */
  bytes = 0;
  started = false;
  startNs = 0;
  startTid = 0;
  startSeq: number | undefined;
  truncated = false;

  constructor(limit: number) {
    this.queue = new ByteQueue(Math.min(limit, MAX_HEAD));
  }

  begin(meta: ChunkMeta, offset: number): void {
    this.started = true;
    this.startNs = meta.startNs;
    this.startTid = meta.tid;
    this.startSeq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
    this.bytes = 0;
    this.truncated = false;
    this.head = undefined;
  }

  reset(mode: Mode): void {
    this.mode = mode;
    this.started = false;
    this.head = undefined;
    this.remaining = 0;
    this.queue.clear();
  }
}

/** Incremental HTTP/1.0/1.1 parser for one connection (both directions). */
export class Http1Session implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  /** Methods of requests whose final response has not been seen (HEAD has no response body). */
  private readonly methods: string[] = [];
  private readonly strings = new StringCache();

  constructor(private readonly options: SessionOptions) {
    this.c2s = new Direction(options.maxBufferBytes);
    this.s2c = new Direction(options.maxBufferBytes);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0) {
      if (d.mode === Mode.Resync) {
        if (fromClient ? looksLikeRequestStart(data) : looksLikeResponseStart(data)) d.mode = Mode.Head;
        else {
          this.stats.resyncBytes += data.length + missing;
          return;
        }
      }
      if (d.mode === Mode.Upgraded) return;
      if (d.queue.length > 0) {
        if (!d.queue.push(data)) {
          this.malformed(d);
          this.stats.resyncBytes += data.length + missing;
          return;
        }
        const view = d.queue.view();
        const used = this.process(d, fromClient, view, 0, meta, emit);
        d.queue.consume(used);
      } else {
        const used = this.process(d, fromClient, data, 0, meta, emit);
        if (used < data.length && (d.mode as Mode) !== Mode.Resync && (d.mode as Mode) !== Mode.Upgraded) {
          if (!d.queue.push(data.subarray(used))) this.malformed(d);
        }
      }
    }
    if (missing > 0) this.skipMissing(d, fromClient, missing, meta, emit);
  }

  buffered(): number {
    return this.c2s.queue.length + this.s2c.queue.length;
  }

  close(emit: Emit, meta: ChunkMeta): void {
    for (const [d, fromClient] of [
      [this.c2s, true],
      [this.s2c, false],
    ] as const) {
      if (d.mode === Mode.UntilClose && d.head) this.complete(d, fromClient, meta, emit);
    }
  }

  /** Runs the state machine over `view` from `at`; returns how many bytes it consumed. */
  private process(
    d: Direction,
    fromClient: boolean,
    view: Uint8Array,
    at: number,
    meta: ChunkMeta,
    emit: Emit,
  ): number {
    let i = at;
    while (i < view.length) {
      switch (d.mode) {
        case Mode.Head: {
          if (!d.started) {
            // tolerate stray CRLFs between messages
            while (i < view.length && (view[i] === 13 || view[i] === 10)) i++;
            if (i >= view.length) return i;
            if (!couldStartMessage(view, i, fromClient)) {
              // not a message start (capture began mid-body, or we lost our place)
              d.reset(Mode.Resync);
              this.stats.resyncBytes += view.length - i;
              return view.length;
            }
            d.begin(meta, i);
          }
          const end = findHeadEnd(view, i);
          if (end < 0) {
            if (view.length - i > MAX_HEAD) {
              this.malformed(d);
              return view.length;
            }
            return i; // wait for more
          }
          const head = parseHead(view, i, end, fromClient, this.strings);
          if (!head) {
            this.malformed(d);
            return view.length;
          }
          d.head = head;
          d.bytes += end - i;
          i = end;
          this.afterHead(d, fromClient, meta, emit);
          break;
        }
        case Mode.Body: {
          const take = Math.min(d.remaining, view.length - i);
          d.remaining -= take;
          d.bytes += take;
          i += take;
          if (d.remaining === 0) this.complete(d, fromClient, meta, emit);
          break;
        }
        case Mode.ChunkSize: {
          const eol = findEol(view, i);
          if (eol < 0) {
            if (view.length - i > 1024) {
              this.malformed(d);
              return view.length;
            }
            return i;
          }
          const size = parseChunkSize(view, i, eol);
          if (size < 0) {
            this.malformed(d);
            return view.length;
          }
          const lineEnd = view[eol] === 13 ? eol + 2 : eol + 1;
          d.bytes += lineEnd - i;
          i = lineEnd;
          if (size === 0) d.mode = Mode.Trailer;
          else {
            d.remaining = size + 2; // data + CRLF
            d.mode = Mode.ChunkData;
          }
          break;
        }
        case Mode.ChunkData: {
          const take = Math.min(d.remaining, view.length - i);
          d.remaining -= take;
          d.bytes += take;
          i += take;
          if (d.remaining === 0) d.mode = Mode.ChunkSize;
          break;
        }
        case Mode.Trailer: {
          const eol = findEol(view, i);
          if (eol < 0) {
            if (view.length - i > 8192) {
              this.malformed(d);
              return view.length;
            }
            return i;
          }
          const lineEnd = view[eol] === 13 ? eol + 2 : eol + 1;
          const empty = eol === i;
          d.bytes += lineEnd - i;
          i = lineEnd;
          if (empty) this.complete(d, fromClient, meta, emit);
          break;
        }
        case Mode.UntilClose:
          d.bytes += view.length - i;
          return view.length;
        case Mode.Resync:
        case Mode.Upgraded:
          this.stats.resyncBytes += view.length - i;
          return view.length;
      }
    }
    return i;
  }

  /** Decides how the body is framed once a head is parsed. */
  private afterHead(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    const h = d.head as Head;
    if (fromClient) {
      if (h.chunked) d.mode = Mode.ChunkSize;
      else if (h.contentLength > 0) {
        d.mode = Mode.Body;
        d.remaining = h.contentLength;
      } else this.complete(d, fromClient, meta, emit);
      return;
    }
    const code = h.status;
    if (code >= 100 && code < 200 && code !== 101) {
      // interim (100 Continue, 103 Early Hints): not the answer; wait for the final one
      d.reset(Mode.Head);
      return;
    }
    const method = this.methods[0];
    if (method === "HEAD" || code === 204 || code === 304 || code === 101) this.complete(d, fromClient, meta, emit);
    else if (h.chunked) d.mode = Mode.ChunkSize;
    else if (h.contentLength >= 0) {
      if (h.contentLength === 0) this.complete(d, fromClient, meta, emit);
      else {
        d.mode = Mode.Body;
        d.remaining = h.contentLength;
      }
    } else d.mode = Mode.UntilClose;
  }

  /** A whole message is in: emit it and get ready for the next. */
  private complete(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    const h = d.head;
    if (!h) {
      d.reset(Mode.Resync);
      return;
    }
    const m: L7Message = toMessage(h, fromClient, this.options.redact);
    m.startNs = d.startNs;
    m.endNs = meta.endNs;
    m.tid = d.startTid;
    m.bytes = d.bytes;
    if (d.startSeq !== undefined) m.tcpSeq = d.startSeq;
    if (d.truncated) m.attributes = { ...m.attributes, "kalman.truncated": true };
    if (fromClient) {
      if (this.methods.length < MAX_PENDING_METHODS) this.methods.push(h.method);
    } else {
      this.methods.shift();
    }
    emit(m);
    const upgraded = !fromClient && h.status === 101;
    d.reset(Mode.Head);
    if (upgraded) {
      this.c2s.reset(Mode.Upgraded);
      this.s2c.reset(Mode.Upgraded);
    }
  }

  /** Bytes the peer sent that we did not capture. */
  private skipMissing(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    switch (d.mode) {
      case Mode.Body:
        if (n <= d.remaining) {
          d.remaining -= n;
          d.bytes += n;
          d.truncated = true;
          if (d.remaining === 0) this.complete(d, fromClient, meta, emit);
          return;
        }
        d.bytes += d.remaining;
        d.truncated = true;
        this.complete(d, fromClient, meta, emit);
        d.mode = Mode.Resync;
        this.stats.resyncBytes += n - d.remaining;
        return;
      case Mode.UntilClose:
        d.bytes += n;
        d.truncated = true;
        return;
      case Mode.ChunkData:
        if (n < d.remaining) {
          d.remaining -= n;
          d.bytes += n;
          d.truncated = true;
          return;
        }
        break;
      case Mode.Head:
        if (d.started && d.queue.length > 0) {
          // the head itself was cut by the capture size: keep what we have
          const view = d.queue.view();
          const head = parseHead(view, 0, view.length, fromClient, this.strings);
          if (head) {
            d.head = head;
            d.bytes += view.length + n;
            d.truncated = true;
            this.complete(d, fromClient, meta, emit);
          } else this.malformed(d);
          d.reset(Mode.Resync);
          return;
        }
        if (!d.started) {
          // a gap between messages: the next chunk starts fresh or we resync there
          d.reset(Mode.Resync);
          this.stats.resyncBytes += n;
          return;
        }
        break;
      case Mode.Resync:
      case Mode.Upgraded:
        this.stats.resyncBytes += n;
        return;
    }
    // lost our place inside chunked framing or a head: emit what we know, then resync
    if (d.head) {
      d.bytes += n;
      d.truncated = true;
      this.complete(d, fromClient, meta, emit);
    }
    d.reset(Mode.Resync);
    this.stats.resyncBytes += n;
  }

  private malformed(d: Direction): void {
    this.stats.malformed++;
    d.reset(Mode.Resync);
  }
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const LFLF = Buffer.from("\n\n");
const indexOfBytes = Buffer.prototype.indexOf as (this: Uint8Array, needle: Uint8Array, from: number) => number;

/**
 * Offset just past the blank line ending a head, or -1 (native search). CRLFCRLF first; a bare
 * LFLF (heads from LF-only peers) is looked for only when there is none.
 */
function findHeadEnd(b: Uint8Array, from: number): number {
  const crlf = indexOfBytes.call(b, CRLFCRLF, from);
  if (crlf >= 0) return crlf + 4;
  const lf = indexOfBytes.call(b, LFLF, from);
  return lf < 0 ? -1 : lf + 2;
}

/** Offset of the CR (or lone LF) ending the line starting at `from`, or -1. */
function findEol(b: Uint8Array, from: number): number {
  for (let i = from; i < b.length; i++) {
    if (b[i] === 10) return i > from && b[i - 1] === 13 ? i - 1 : i;
  }
  return -1;
}

/** Hex chunk size of a chunk-size line (extensions after ';' ignored); -1 if malformed. */
function parseChunkSize(b: Uint8Array, from: number, end: number): number {
  let n = 0;
  let digits = 0;
  for (let i = from; i < end; i++) {
    const c = b[i] as number;
    let v: number;
    if (c >= 48 && c <= 57) v = c - 48;
    else if (c >= 97 && c <= 102) v = c - 87;
    else if (c >= 65 && c <= 70) v = c - 55;
    else if (c === 59 || c === 32 || c === 9) break;
    else return -1;
    n = n * 16 + v;
    if (++digits > 12) return -1;
  }
  return digits === 0 ? -1 : n;
}
