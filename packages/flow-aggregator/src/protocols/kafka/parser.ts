import type { ChunkMeta, L7Message } from "../../types.js";
import { ByteQueue } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { looksLikeRequest, MAX_MESSAGE_SIZE } from "./detect.js";
import {
  parseRequestHead,
  parseResponseHead,
  REQUEST_HEADER_MIN,
  RESPONSE_HEADER_MIN,
  type RequestHead,
  type ResponseHead,
} from "./head.js";
import { requestMessage, responseMessage } from "./record.js";
import { Cursor, readI32 } from "./wire.js";

enum Mode {
  /** At or inside the first bytes of a message: size, header and the body fields records use. */
  Head = 0,
  /** Skipping the rest of a message of known size. */
  Body = 1,
  /** Lost our place: wait for a chunk that starts with a message. */
  Resync = 2,
}

/** Bytes of a message kept to read its head; the rest is skipped by size. */
const HEAD_BYTES = 1024;
/** Requests awaiting a response, by correlation id. */
const MAX_PENDING = 256;

/** One direction of a Kafka connection. */
class Direction {
  mode = Mode.Head;
  readonly queue: ByteQueue;
  /** Bytes of the head to gather before parsing it (set once the size is known). */
  headBytes = 0;
  /** Whole message size, size field included. */
  total = 0;
  /** Body bytes still to skip. */
  remaining = 0;
  started = false;
  startNs = 0;
  startTid = 0;
  startSeq: number | undefined;
  truncated = false;
  message: L7Message | undefined;
  request: RequestHead | undefined;

  constructor(readonly headLimit: number) {
    this.queue = new ByteQueue(headLimit);
  }

  begin(meta: ChunkMeta, offset: number): void {
    this.started = true;
    this.startNs = meta.startNs;
    this.startTid = meta.tid;
    this.startSeq = meta.seqValid && offset >= 0 ? (meta.tcpSeq + offset) >>> 0 : undefined;
    this.truncated = false;
    this.total = 0;
    this.headBytes = 0;
    this.message = undefined;
    this.request = undefined;
  }

  reset(mode: Mode): void {
    this.mode = mode;
    this.started = false;
    this.remaining = 0;
    this.message = undefined;
    this.request = undefined;
    this.queue.clear();
  }
}

/** Incremental Kafka parser for one connection: frames by size, pairs by correlation id. */
export class KafkaSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  /** correlation id -> api key << 8 | api version, oldest first. */
  private readonly pending = new Map<number, number>();
  private readonly cursor = new Cursor();

  constructor(options: SessionOptions) {
    const headLimit = Math.max(RESPONSE_HEADER_MIN, Math.min(options.maxBufferBytes, HEAD_BYTES));
    this.c2s = new Direction(headLimit);
    this.s2c = new Direction(headLimit);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0) {
      if (d.mode === Mode.Resync) {
        if (!this.startsMessage(fromClient, data)) {
          this.stats.resyncBytes += data.length + missing;
          return;
        }
        d.reset(Mode.Head);
      }
      this.consume(d, fromClient, data, meta, emit);
    }
    if (missing > 0) this.skipMissing(d, fromClient, missing, meta, emit);
  }

  /** Runs a chunk through the state machine; a head's start is kept in the queue until the head is whole. */
  private consume(d: Direction, fromClient: boolean, data: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    let offset = 0;
    while (offset < data.length) {
      const queued = d.queue.length;
      if (queued === 0) {
        const rest = data.subarray(offset);
        const used = this.process(d, fromClient, rest, offset, meta, emit);
        if (used < rest.length && d.mode === Mode.Head && !d.queue.push(rest.subarray(used))) {
          this.malformed(d, rest.length - used);
        }
        return;
      }
      // a head started in an earlier chunk: top it up (never past headLimit), then go on from the queue
      const take = Math.min(data.length - offset, d.headLimit - queued);
      if (take <= 0 || !d.queue.push(data.subarray(offset, offset + take))) {
        this.malformed(d, queued + data.length - offset);
        return;
      }
      const used = this.process(d, fromClient, d.queue.view(), offset - queued, meta, emit);
      d.queue.consume(used);
      offset += take;
      if (d.mode === Mode.Resync) {
        this.stats.resyncBytes += data.length - offset;
        return;
      }
    }
  }

  buffered(): number {
    return this.c2s.queue.length + this.s2c.queue.length;
  }

  /**
   * Runs over view; `viewOffset` is where view starts in the current chunk (negative when it starts with
   * queued bytes). Returns the bytes consumed; the rest is the start of a head.
   */
  private process(
    d: Direction,
    fromClient: boolean,
    view: Uint8Array,
    viewOffset: number,
    meta: ChunkMeta,
    emit: Emit,
  ): number {
    let i = 0;
    while (i < view.length) {
      if (d.mode === Mode.Body) {
        const take = Math.min(d.remaining, view.length - i);
        d.remaining -= take;
        i += take;
        if (d.remaining === 0) this.complete(d, fromClient, meta, emit);
        continue;
      }
      if (d.mode === Mode.Resync) {
        this.stats.resyncBytes += view.length - i;
        return view.length;
      }
      if (!d.started) d.begin(meta, viewOffset + i);
      const available = view.length - i;
      if (d.total === 0) {
        if (available < 4) return i;
        const size = readI32(view, i);
        const min = fromClient ? REQUEST_HEADER_MIN - 4 : RESPONSE_HEADER_MIN - 4;
        if (size < min || size > MAX_MESSAGE_SIZE) {
          this.malformed(d, view.length - i);
          return view.length;
        }
        d.total = size + 4;
        d.headBytes = Math.min(d.total, d.headLimit);
      }
      if (available < d.headBytes) return i;
      if (!this.readHead(d, fromClient, view, i, i + d.headBytes)) {
        this.malformed(d, view.length - i);
        return view.length;
      }
      i += d.headBytes;
      d.remaining = d.total - d.headBytes;
      if (d.remaining === 0) this.complete(d, fromClient, meta, emit);
      else d.mode = Mode.Body;
    }
    return i;
  }

  /** Parses the head at view[start..end) into d.message; false when it is not a Kafka message. */
  private readHead(d: Direction, fromClient: boolean, view: Uint8Array, start: number, end: number): boolean {
    if (fromClient) {
      const head = parseRequestHead(this.cursor, view, start, end);
      if (!head) return false;
      d.request = head;
      d.message = requestMessage(head);
      return true;
    }
    if (end - start < RESPONSE_HEADER_MIN) return false;
    const correlationId = readI32(view, start + 4);
    const request = this.pending.get(correlationId);
    if (request !== undefined) this.pending.delete(correlationId);
    const apiKey = request === undefined ? -1 : request >> 8;
    const apiVersion = request === undefined ? -1 : request & 0xff;
    const head = parseResponseHead(this.cursor, view, start, end, apiKey, apiVersion) as ResponseHead;
    d.message = responseMessage(head, apiKey);
    return true;
  }

  /** The whole message went by: emit it and get ready for the next. */
  private complete(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    const m = d.message;
    if (m) {
      m.startNs = d.startNs;
      m.endNs = meta.endNs;
      m.tid = d.startTid;
      m.bytes = d.total;
      if (d.startSeq !== undefined) m.tcpSeq = d.startSeq;
      if (d.truncated) {
        const attributes = m.attributes ?? {};
        attributes["kalman.truncated"] = true;
        m.attributes = attributes;
      }
      const req = d.request;
      if (fromClient && req && !m.oneWay) this.expect(req);
      emit(m);
    }
    d.reset(Mode.Head);
  }

  /** Remembers how to read the response to `req`. */
  private expect(req: RequestHead): void {
    const pending = this.pending;
    if (!pending.has(req.correlationId) && pending.size >= MAX_PENDING) {
      const oldest = pending.keys().next().value as number;
      pending.delete(oldest);
    }
    pending.set(req.correlationId, (req.apiKey << 8) | (req.apiVersion & 0xff));
  }

  /** Bytes the peer sent that were not captured. */
  private skipMissing(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    if (d.mode === Mode.Resync) {
      this.stats.resyncBytes += n;
      return;
    }
    if (d.mode === Mode.Head) {
      const view = d.queue.view();
      if (!d.started || view.length < (fromClient ? REQUEST_HEADER_MIN - 2 : RESPONSE_HEADER_MIN)) {
        // a gap between messages, or too little of the header: nothing tells where the next message starts
        this.stats.resyncBytes += n + view.length;
        d.reset(Mode.Resync);
        return;
      }
      // the head was cut by the capture: read what there is, then skip the rest by size
      if (d.total === 0) {
        const size = readI32(view, 0);
        if (size < (fromClient ? REQUEST_HEADER_MIN : RESPONSE_HEADER_MIN) - 4 || size > MAX_MESSAGE_SIZE) {
          this.malformed(d, view.length + n);
          return;
        }
        d.total = size + 4;
      }
      if (!this.readHead(d, fromClient, view, 0, view.length)) {
        this.malformed(d, view.length + n);
        return;
      }
      d.remaining = d.total - view.length;
      d.queue.clear();
      d.mode = Mode.Body;
    }
    d.truncated = true;
    if (n < d.remaining) {
      d.remaining -= n;
      return;
    }
    const beyond = n - d.remaining;
    d.remaining = 0;
    this.complete(d, fromClient, meta, emit);
    if (beyond > 0) {
      // the next message started in the gap
      this.stats.resyncBytes += beyond;
      d.reset(Mode.Resync);
    }
  }

  /** A chunk that starts with a request (client) or a response to a pending request (server). */
  private startsMessage(fromClient: boolean, data: Uint8Array): boolean {
    if (fromClient) return looksLikeRequest(data);
    if (data.length < RESPONSE_HEADER_MIN) return false;
    const size = readI32(data, 0);
    return size >= RESPONSE_HEADER_MIN - 4 && size <= MAX_MESSAGE_SIZE && this.pending.has(readI32(data, 4));
  }

  /** Not Kafka where a message should start: count it, skip `skipped` bytes, resync. */
  private malformed(d: Direction, skipped: number): void {
    this.stats.malformed++;
    this.stats.resyncBytes += skipped;
    d.reset(Mode.Resync);
  }
}
