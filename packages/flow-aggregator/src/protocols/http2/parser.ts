import type { ChunkMeta } from "../../types.js";
import { ByteQueue } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME,
  FRAME_HEADER_BYTES,
  FrameFlag,
  FrameType,
  frameLength,
  frameStreamId,
  LARGEST_MAX_FRAME,
  plausibleFrame,
  reservedBitSet,
  Setting,
} from "./frame.js";
import { DecodeResult, HeaderFields, HpackDecoder } from "./hpack.js";
import { isGrpcContentType, requestMessage, responseMessage, StreamHalf } from "./record.js";

enum Phase {
  /** Client side, nothing seen yet: the connection preface, or frames when the capture starts later. */
  Preface = 0,
  /** Reading a 9-byte frame header. */
  Header = 1,
  /** Inside a frame payload. */
  Payload = 2,
  /** Lost our place: wait for a chunk that starts with a plausible frame header. */
  Resync = 3,
}

enum Collect {
  /** Payload skipped by length. */
  None = 0,
  /** Header block fragment (HEADERS, PUSH_PROMISE, CONTINUATION). */
  Block = 1,
  RstCode = 2,
  Settings = 3,
}

/** Streams tracked at once; past it the oldest is forgotten (its request times out upstream). */
const MAX_STREAMS = 1024;
/** Largest header block assembled (HEADERS + CONTINUATION). */
const MAX_HEADER_BLOCK = 64 * 1024;

export interface Http2Stats extends SessionStats {
  /** Messages with header fields left unset because HPACK state from before the capture was needed. */
  hpackIncomplete: number;
  streamsEvicted: number;
}

class Stream {
  readonly req = new StreamHalf();
  readonly resp = new StreamHalf();
  grpc = false;
  constructor(readonly id: number) {}
}

/** One direction of the connection: framing state and its HPACK decoding context. */
class Direction {
  phase: Phase;
  /** Frame headers must look plausible before they are trusted (first bytes, after lost bytes). */
  probing = true;
  /** The next frame header is this direction's first (no loss before it). */
  firstFrame = true;
  prefaceAt = 0;
  readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  headerLength = 0;
  type = 0;
  flags = 0;
  streamId = 0;
  length = 0;
  remaining = 0;
  collect = Collect.None;
  frameNs = 0;
  frameTid = 0;
  frameSeq = -1;
  /** Payload bytes before the block fragment (pad length, priority, promised id), and padding after it. */
  prefixLength = 0;
  padLength = 0;
  readonly small = new Uint8Array(8);
  smallCut = false;
  // the header block being assembled
  readonly block: ByteQueue;
  /** HEADERS/PUSH_PROMISE seen without END_HEADERS: CONTINUATION frames follow. */
  blockOpen = false;
  blockStream = 0;
  blockPromised = 0;
  blockEndStream = false;
  /** Payload bytes of the block's frames. */
  blockBytes = 0;
  /** Bytes of the block were not captured: decode what precedes the hole. */
  blockCut = false;
  /** The block cannot be decoded at all (too big, bad padding). */
  blockBroken = false;
  blockNs = 0;
  blockTid = 0;
  blockSeq = -1;
  readonly hpack = new HpackDecoder();
  /** Largest frame this side may send (the peer's SETTINGS_MAX_FRAME_SIZE). */
  maxFrame = DEFAULT_MAX_FRAME;

  constructor(fromClient: boolean, blockLimit: number) {
    this.phase = fromClient ? Phase.Preface : Phase.Header;
    this.block = new ByteQueue(blockLimit);
  }
}

/** Incremental HTTP/2 parser for one connection: frames, HPACK, streams paired by id. */
export class Http2Session implements ProtocolSession {
  readonly stats: Http2Stats = { malformed: 0, resyncBytes: 0, hpackIncomplete: 0, streamsEvicted: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  private readonly streams = new Map<number, Stream>();
  private readonly fields = new HeaderFields();
  private sawClientPreface = false;
  /** The server's first frame was its SETTINGS (connection start), and nothing was lost since. */
  private serverFromStart = false;
  private serverHpackStarted = false;

  constructor(private readonly options: SessionOptions) {
    const blockLimit = Math.min(options.maxBufferBytes, MAX_HEADER_BLOCK);
    this.c2s = new Direction(true, blockLimit);
    this.s2c = new Direction(false, blockLimit);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    if (data.length > 0) {
      if (d.phase === Phase.Resync) {
        d.phase = Phase.Header;
        d.probing = true;
        d.headerLength = 0;
      }
      this.run(d, fromClient, data, meta, emit);
    }
    if (missing > 0) this.skipMissing(d, fromClient, missing, meta, emit);
  }

  buffered(): number {
    return this.c2s.block.length + this.s2c.block.length;
  }

  /** Requests the client never ended are emitted: upstream reports them unanswered. */
  close(emit: Emit, meta: ChunkMeta): void {
    for (const stream of this.streams.values()) {
      if (stream.req.started && !stream.req.done) this.emitRequest(stream, meta.endNs, emit);
    }
    this.streams.clear();
  }

  private run(d: Direction, fromClient: boolean, data: Uint8Array, meta: ChunkMeta, emit: Emit): void {
    const n = data.length;
    let i = 0;
    while (i < n) {
      switch (d.phase) {
        case Phase.Preface: {
          if (data[i] !== CLIENT_PREFACE[d.prefaceAt]) {
            if (d.prefaceAt > 0) {
              this.malformed(d, fromClient, meta, emit);
              this.stats.resyncBytes += n - i;
              return;
            }
            // the capture starts after the preface
            d.phase = Phase.Header;
            break;
          }
          i++;
          if (++d.prefaceAt === CLIENT_PREFACE.length) {
            d.phase = Phase.Header;
            d.probing = false;
            this.onClientPreface();
          }
          break;
        }
        case Phase.Header: {
          if (d.headerLength === 0) {
            d.frameNs = meta.startNs;
            d.frameTid = meta.tid;
            d.frameSeq = meta.seqValid ? (meta.tcpSeq + i) >>> 0 : -1;
          }
          const take = Math.min(FRAME_HEADER_BYTES - d.headerLength, n - i);
          for (let k = 0; k < take; k++) d.header[d.headerLength + k] = data[i + k] as number;
          d.headerLength += take;
          i += take;
          if (d.headerLength === FRAME_HEADER_BYTES) {
            d.headerLength = 0;
            if (!this.onFrameHeader(d, fromClient, meta, emit)) {
              this.stats.resyncBytes += FRAME_HEADER_BYTES + n - i;
              return;
            }
          }
          break;
        }
        case Phase.Payload: {
          const take = Math.min(d.remaining, n - i);
          if (d.collect !== Collect.None) this.collect(d, fromClient, data, i, take);
          d.remaining -= take;
          i += take;
          if (d.remaining === 0) this.onFrameEnd(d, fromClient, meta, emit);
          break;
        }
        case Phase.Resync:
          this.stats.resyncBytes += n - i;
          return;
      }
    }
  }

  /** A whole frame header is in d.header. Returns false when it cannot be trusted (now resyncing). */
  private onFrameHeader(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): boolean {
    const h = d.header;
    const length = frameLength(h, 0);
    const type = h[3] as number;
    const flags = h[4] as number;
    const id = frameStreamId(h, 0);
    if (d.probing) {
      if (!plausibleFrame(type, flags, id, length, d.maxFrame, reservedBitSet(h, 0))) {
        this.lose(d, fromClient, meta, emit);
        return false;
      }
      d.probing = false;
    } else if (length > d.maxFrame) {
      this.malformed(d, fromClient, meta, emit);
      return false;
    }
    if (d.firstFrame) {
      d.firstFrame = false;
      if (!fromClient && type === FrameType.Settings && (flags & FrameFlag.Ack) === 0) {
        this.serverFromStart = true;
        this.startServerHpack();
      }
    }
    d.type = type;
    d.flags = flags;
    d.streamId = id;
    d.length = length;
    d.remaining = length;
    d.collect = Collect.None;
    d.prefixLength = 0;
    d.padLength = 0;
    d.smallCut = false;
    if (d.blockOpen && type !== FrameType.Continuation) {
      // a header block must be continued right away
      this.stats.malformed++;
      d.blockCut = true;
      this.finishBlock(d, fromClient, meta, emit);
    }
    switch (type) {
      case FrameType.Data: {
        const stream = this.streams.get(id);
        const half = stream && (fromClient ? stream.req : stream.resp);
        if (half && !half.done) {
          if (!half.started) half.begin(d.frameNs, d.frameTid, d.frameSeq);
          half.bytes += length;
        }
        break;
      }
      case FrameType.Headers: {
        if (id === 0) {
          this.stats.malformed++;
          break;
        }
        const stream = this.openStream(id);
        const half = fromClient ? stream.req : stream.resp;
        if (!half.started) half.begin(d.frameNs, d.frameTid, d.frameSeq);
        d.prefixLength = (flags & FrameFlag.Padded ? 1 : 0) + (flags & FrameFlag.Priority ? 5 : 0);
        this.openBlock(d, id, (flags & FrameFlag.EndStream) !== 0);
        break;
      }
      case FrameType.PushPromise: {
        if (fromClient || id === 0) {
          this.stats.malformed++;
          break;
        }
        d.prefixLength = (flags & FrameFlag.Padded ? 1 : 0) + 4;
        this.openBlock(d, id, false);
        break;
      }
      case FrameType.Continuation: {
        if (!d.blockOpen || id !== d.blockStream) {
          this.stats.malformed++;
          break;
        }
        d.blockBytes += length;
        d.collect = Collect.Block;
        break;
      }
      case FrameType.RstStream:
        if (length === 4 && id !== 0) d.collect = Collect.RstCode;
        else this.stats.malformed++;
        break;
      case FrameType.Settings:
        if ((flags & FrameFlag.Ack) === 0) {
          if (id === 0 && length % 6 === 0) d.collect = Collect.Settings;
          else this.stats.malformed++;
        }
        break;
      // PRIORITY, PING, GOAWAY, WINDOW_UPDATE and unknown types: skipped
    }
    if (d.collect === Collect.Block && d.length < d.prefixLength) {
      this.stats.malformed++;
      d.blockBroken = true;
    }
    if (length === 0) this.onFrameEnd(d, fromClient, meta, emit);
    else d.phase = Phase.Payload;
    return true;
  }

  private openBlock(d: Direction, id: number, endStream: boolean): void {
    d.block.clear();
    d.blockStream = id;
    d.blockPromised = 0;
    d.blockEndStream = endStream;
    d.blockBytes = d.length;
    d.blockCut = false;
    d.blockBroken = false;
    d.blockNs = d.frameNs;
    d.blockTid = d.frameTid;
    d.blockSeq = d.frameSeq;
    d.collect = Collect.Block;
  }

  /** Payload bytes data[i, i + take) of the current frame, which needs them. */
  private collect(d: Direction, fromClient: boolean, data: Uint8Array, i: number, take: number): void {
    let pos = d.length - d.remaining;
    let j = i;
    const stop = pos + take;
    switch (d.collect) {
      case Collect.Block: {
        while (pos < d.prefixLength && pos < stop) {
          d.small[pos] = data[j] as number;
          pos++;
          j++;
          if (pos === d.prefixLength) this.prefixDone(d);
        }
        const end = Math.min(stop, d.length - d.padLength);
        if (end > pos && !d.blockCut && !d.blockBroken && !d.block.push(data.subarray(j, j + end - pos))) {
          // past the bound: the block is dropped and the table with it
          d.blockBroken = true;
          d.block.clear();
        }
        break;
      }
      case Collect.RstCode:
        for (; pos < stop; pos++, j++) d.small[pos] = data[j] as number;
        break;
      case Collect.Settings:
        for (; pos < stop; pos++, j++) {
          d.small[pos % 6] = data[j] as number;
          if (pos % 6 === 5) this.applySetting(fromClient, d.small);
        }
        break;
    }
  }

  /** The pad length / priority / promised id prefix of a HEADERS or PUSH_PROMISE payload is in. */
  private prefixDone(d: Direction): void {
    const padded = (d.flags & FrameFlag.Padded) !== 0;
    if (padded) d.padLength = d.small[0] as number;
    if (d.prefixLength + d.padLength > d.length) {
      this.stats.malformed++;
      d.blockBroken = true;
      d.padLength = 0;
    }
    if (d.type === FrameType.PushPromise) {
      const at = padded ? 1 : 0;
      d.blockPromised =
        ((d.small[at] as number) & 0x7f) * 0x1000000 +
        ((d.small[at + 1] as number) << 16) +
        ((d.small[at + 2] as number) << 8) +
        (d.small[at + 3] as number);
    }
  }

  private applySetting(fromClient: boolean, s: Uint8Array): void {
    const id = ((s[0] as number) << 8) | (s[1] as number);
    const value = (s[2] as number) * 0x1000000 + ((s[3] as number) << 16) + ((s[4] as number) << 8) + (s[5] as number);
    // a side's settings bound what the other side sends
    const other = fromClient ? this.s2c : this.c2s;
    if (id === Setting.HeaderTableSize) other.hpack.setLimit(value);
    else if (id === Setting.MaxFrameSize && value >= DEFAULT_MAX_FRAME && value <= LARGEST_MAX_FRAME) {
      other.maxFrame = value;
    }
  }

  private onFrameEnd(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    d.phase = Phase.Header;
    switch (d.type) {
      case FrameType.Data:
        if (d.flags & FrameFlag.EndStream) this.endStream(d.streamId, fromClient, meta, emit);
        break;
      case FrameType.Headers:
      case FrameType.PushPromise:
      case FrameType.Continuation:
        if (d.collect !== Collect.Block) break;
        if (d.flags & FrameFlag.EndHeaders) this.finishBlock(d, fromClient, meta, emit);
        else d.blockOpen = true;
        break;
      case FrameType.RstStream:
        if (d.collect === Collect.RstCode && !d.smallCut) {
          const s = d.small;
          const code =
            (s[0] as number) * 0x1000000 + ((s[1] as number) << 16) + ((s[2] as number) << 8) + (s[3] as number);
          this.resetStream(d, fromClient, code, meta, emit);
        }
        break;
    }
    d.collect = Collect.None;
  }

  /** The header block is complete (or cut short): decode it and apply it to its stream. */
  private finishBlock(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    d.blockOpen = false;
    const f = this.fields;
    f.reset();
    let truncated = d.blockCut;
    if (d.blockBroken) {
      d.hpack.lose();
      truncated = true;
    } else {
      const view = d.block.view();
      const result = d.hpack.decode(view, 0, view.length, f);
      if (result === DecodeResult.Malformed && !d.blockCut) this.stats.malformed++;
      if (result === DecodeResult.Truncated) truncated = true;
      // entries inserted by the missing part are unknown
      if (d.blockCut) d.hpack.lose();
    }
    d.block.clear();
    if (d.blockPromised > 0) {
      // server push: the promised request is complete now; its response comes on the promised stream
      const stream = this.openStream(d.blockPromised);
      const req = stream.req;
      if (req.started) return;
      req.begin(d.blockNs, d.blockTid, d.blockSeq);
      req.bytes = d.blockBytes;
      req.pushed = true;
      req.apply(f, true);
      if (truncated) req.truncated = true;
      this.emitRequest(stream, meta.endNs, emit);
      return;
    }
    const stream = this.streams.get(d.blockStream);
    if (!stream) return;
    const half = fromClient ? stream.req : stream.resp;
    if (half.done) return;
    half.bytes += d.blockBytes;
    half.apply(f, d.blockEndStream);
    if (truncated) half.truncated = true;
    if (d.blockEndStream) this.endStream(d.blockStream, fromClient, meta, emit);
  }

  private endStream(id: number, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    if (!fromClient) this.emitResponse(stream, meta.endNs, emit);
    else if (stream.req.started && !stream.req.done) this.emitRequest(stream, meta.endNs, emit);
  }

  /** RST_STREAM from either side ends the stream: its response is reported with the error code. */
  private resetStream(d: Direction, fromClient: boolean, code: number, meta: ChunkMeta, emit: Emit): void {
    const stream = this.streams.get(d.streamId);
    if (!stream) return;
    const own = fromClient ? stream.req : stream.resp;
    if (!own.done) own.bytes += d.length;
    const resp = stream.resp;
    if (!resp.started) resp.begin(d.frameNs, d.frameTid, fromClient ? -1 : d.frameSeq);
    resp.rstCode = code;
    this.emitResponse(stream, meta.endNs, emit);
  }

  private emitRequest(stream: Stream, endNs: number, emit: Emit): void {
    const req = stream.req;
    req.done = true;
    stream.grpc = isGrpcContentType(req.contentType);
    if (req.unresolved) this.stats.hpackIncomplete++;
    emit(requestMessage(stream.id, req, endNs, this.options.redact));
  }

  private emitResponse(stream: Stream, endNs: number, emit: Emit): void {
    // the server may end a stream before the client does: the request is then complete as it is
    if (stream.req.started && !stream.req.done) this.emitRequest(stream, endNs, emit);
    const resp = stream.resp;
    this.streams.delete(stream.id);
    if (!resp.started) return;
    resp.done = true;
    if (resp.unresolved) this.stats.hpackIncomplete++;
    emit(responseMessage(stream.id, resp, endNs, stream.grpc));
  }

  private openStream(id: number): Stream {
    let stream = this.streams.get(id);
    if (!stream) {
      if (this.streams.size >= MAX_STREAMS) {
        const oldest = this.streams.keys().next().value as number;
        this.streams.delete(oldest);
        this.stats.streamsEvicted++;
      }
      stream = new Stream(id);
      this.streams.set(id, stream);
    }
    return stream;
  }

  private onClientPreface(): void {
    this.sawClientPreface = true;
    this.c2s.hpack.start();
    this.startServerHpack();
  }

  /** Both connection starts seen: the server's table starts empty too. */
  private startServerHpack(): void {
    if (this.sawClientPreface && this.serverFromStart && !this.serverHpackStarted) {
      this.serverHpackStarted = true;
      this.s2c.hpack.start();
    }
  }

  /** Bytes the peer sent that were not captured. */
  private skipMissing(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    if (d.phase === Phase.Payload) {
      const take = Math.min(n, d.remaining);
      if (d.collect === Collect.Block) d.blockCut = true;
      else if (d.collect !== Collect.None) d.smallCut = true;
      this.markTruncated(d, fromClient);
      d.remaining -= take;
      if (d.remaining === 0) this.onFrameEnd(d, fromClient, meta, emit);
      if (n === take) return;
      this.stats.resyncBytes += n - take;
    } else {
      this.stats.resyncBytes += n;
    }
    if (d.phase !== Phase.Resync) this.lose(d, fromClient, meta, emit);
  }

  private markTruncated(d: Direction, fromClient: boolean): void {
    const id = d.collect === Collect.Block ? d.blockStream : d.streamId;
    const stream = this.streams.get(id);
    if (stream && d.type !== FrameType.PushPromise) (fromClient ? stream.req : stream.resp).truncated = true;
  }

  /** Framing lost (bytes missing, or garbage): the table may have missed updates; resync on a later chunk. */
  private lose(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    if (d.blockOpen) {
      d.blockCut = true;
      this.finishBlock(d, fromClient, meta, emit);
    }
    d.phase = Phase.Resync;
    d.headerLength = 0;
    d.collect = Collect.None;
    d.firstFrame = false;
    d.hpack.lose();
    if (!fromClient && !this.serverHpackStarted) this.serverFromStart = false;
  }

  private malformed(d: Direction, fromClient: boolean, meta: ChunkMeta, emit: Emit): void {
    this.stats.malformed++;
    this.lose(d, fromClient, meta, emit);
  }
}
