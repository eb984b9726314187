import type { ChunkMeta, L7Message } from "../../types.js";
import { ByteQueue, utf8Text } from "../bytes.js";
import type { Emit, ProtocolSession, SessionOptions, SessionStats } from "../parser.js";
import { fieldsLength, packetRun, Sides, skipProperties, subscribeHasProperties } from "./packet.js";
import { CodeTable, KeySpace, newMessage, setAttribute, setReason, setTopic, versionName } from "./record.js";
import {
  findProperty,
  isProtocolName,
  Level,
  PacketType,
  Property,
  readVarint,
  sentBy,
  u16,
  VARINT_SHORT,
  validRemainingLength,
  validTypeAndFlags,
  varint,
} from "./wire.js";

enum Mode {
  /** At a packet start, or buffering a packet's fixed header and fields. */
  Packet = 0,
  /** Skipping the rest of a packet (payload, unread fields) by length. */
  Skip = 1,
  /** Lost our place: wait for a write that starts with packets. */
  Resync = 2,
}

/** Bytes buffered for one packet's fields at most (topics and client ids are far smaller). */
const MAX_FIELDS = 64 * 1024;
/** Topic aliases and in-flight QoS 2 topics remembered per direction. */
const MAX_TRACKED = 256;
/** Longest reason string kept in an exception. */
const MAX_REASON_STRING = 256;

/** One direction of an MQTT connection. */
class Direction {
  mode = Mode.Packet;
  readonly queue: ByteQueue;
  readonly limit: number;
  /** While buffering: bytes from the packet start needed before parsing again. */
  wantTotal = 0;
  /** Bytes of the current packet still to skip. */
  skip = 0;
  /** The current packet's message, emitted once its last byte is seen. */
  pending: L7Message | undefined;
  packetBytes = 0;
  started = false;
  startNs = 0;
  startTid = 0;
  startSeq: number | undefined;
  truncated = false;
  /** MQTT 5 topic aliases this side set. */
  readonly aliases = new Map<number, string>();
  /** Topics of QoS 2 PUBLISHes this side sent, until its PUBREL. */
  readonly releasing = new Map<number, string>();

  constructor(maxBufferBytes: number) {
    this.limit = Math.min(maxBufferBytes, MAX_FIELDS);
    this.queue = new ByteQueue(this.limit);
  }

  begin(meta: ChunkMeta, offset: number): void {
    this.started = true;
    this.startNs = meta.startNs;
    this.startTid = meta.tid;
    this.startSeq = meta.seqValid ? (meta.tcpSeq + offset) >>> 0 : undefined;
    this.truncated = false;
    this.pending = undefined;
  }

  reset(mode: Mode): void {
    this.mode = mode;
    this.started = false;
    this.pending = undefined;
    this.skip = 0;
    this.queue.clear();
  }
}

/** Incremental MQTT 3.1/3.1.1/5.0 parser for one connection (both directions). */
export class MqttSession implements ProtocolSession {
  readonly stats: SessionStats = { malformed: 0, resyncBytes: 0 };
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  /** Protocol level from CONNECT (or inferred from MQTT 5-only fields); Level.Unknown until then. */
  private level: number = Level.Unknown;

  constructor(options: SessionOptions) {
    this.c2s = new Direction(options.maxBufferBytes);
    this.s2c = new Direction(options.maxBufferBytes);
  }

  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void {
    const d = fromClient ? this.c2s : this.s2c;
    let off = 0;
    if (data.length > 0 && d.mode === Mode.Resync) {
      // writes normally start on a packet boundary: resume where the bytes frame as packets
      if ((packetRun(data, false, 4) & (fromClient ? Sides.Client : Sides.Broker)) !== 0) d.mode = Mode.Packet;
      else {
        this.stats.resyncBytes += data.length;
        off = data.length;
      }
    }
    while (off < data.length) {
      if (d.queue.length === 0) {
        const used = this.process(d, fromClient, data, off, 0, meta, emit);
        if (used < data.length && !d.queue.push(data.subarray(used))) this.lose(d, data.length - used);
        break;
      }
      // complete the buffered packet's fields with just the bytes it needs, then go on unbuffered
      const take = Math.min(data.length - off, d.wantTotal - d.queue.length);
      if (take <= 0 || !d.queue.push(data.subarray(off, off + take))) {
        this.lose(d, d.queue.length);
        continue;
      }
      const base = d.queue.length - take - off;
      const used = this.process(d, fromClient, d.queue.view(), 0, base, meta, emit);
      d.queue.consume(used);
      off += take;
    }
    if (missing > 0) this.skipMissing(d, fromClient, missing, meta, emit);
  }

  buffered(): number {
    return this.c2s.queue.length + this.s2c.queue.length;
  }

  /**
   * Runs the framing over view[at..]; view position p is byte p - base of the current chunk.
   * Returns how many bytes it consumed (it stops at a packet whose fields are not all there yet).
   */
  private process(
    d: Direction,
    fromClient: boolean,
    view: Uint8Array,
    at: number,
    base: number,
    meta: ChunkMeta,
    emit: Emit,
  ): number {
    let i = at;
    while (i < view.length) {
      if (d.mode === Mode.Skip) {
        const take = Math.min(d.skip, view.length - i);
        d.skip -= take;
        i += take;
        if (d.skip === 0) this.finish(d, meta, emit);
        continue;
      }
      if (d.mode === Mode.Resync) {
        this.stats.resyncBytes += view.length - i;
        return view.length;
      }
      if (!d.started) d.begin(meta, i - base);
      const available = view.length - i;
      if (available < 2) {
        d.wantTotal = 2;
        return i;
      }
      const first = view[i] as number;
      const type = first >> 4;
      const flags = first & 0xf;
      if (!validTypeAndFlags(type, flags)) {
        this.malformed(d);
        continue;
      }
      const remaining = readVarint(view, i + 1);
      if (remaining === VARINT_SHORT) {
        d.wantTotal = available + 1;
        return i;
      }
      if (remaining < 0) {
        this.malformed(d);
        continue;
      }
      const header = 1 + varint.bytes;
      d.packetBytes = header + remaining;
      if (!sentBy(type, fromClient) || !validRemainingLength(type, flags, remaining)) {
        // framed but not a packet this side sends: skip it by length
        this.stats.malformed++;
        this.skipPacket(d, header + remaining);
        continue;
      }
      const limit = Math.min(remaining, d.limit - header);
      const bodyAvailable = Math.min(available - header, limit);
      const body = view.subarray(i + header, i + header + bodyAvailable);
      let need = fieldsLength(type, flags, body, remaining, this.level);
      if (need < 0 || need > remaining) {
        this.stats.malformed++;
        this.skipPacket(d, header + remaining);
        continue;
      }
      if (need > bodyAvailable) {
        if (bodyAvailable < limit) {
          d.wantTotal = header + Math.min(need, limit);
          return i;
        }
        // fields longer than the buffer: read what fits
        d.truncated = true;
        need = bodyAvailable;
      }
      d.pending = this.decode(type, flags, body.subarray(0, need), remaining, fromClient);
      i += header + need;
      d.skip = remaining - need;
      if (d.skip === 0) this.finish(d, meta, emit);
      else d.mode = Mode.Skip;
    }
    return i;
  }

  /** Skips a whole packet that yields no message. */
  private skipPacket(d: Direction, bytes: number): void {
    d.pending = undefined;
    d.skip = bytes;
    d.mode = Mode.Skip;
  }

  /** The current packet is complete: emit its message, if any. */
  private finish(d: Direction, meta: ChunkMeta, emit: Emit): void {
    const m = d.pending;
    d.mode = Mode.Packet;
    d.started = false;
    d.pending = undefined;
    if (!m) return;
    m.startNs = d.startNs;
    m.endNs = meta.endNs;
    m.tid = d.startTid;
    m.bytes = d.packetBytes;
    if (d.startSeq !== undefined) m.tcpSeq = d.startSeq;
    if (d.truncated) setAttribute(m, "kalman.truncated", true);
    emit(m);
  }

  /** Bytes the side sent that were not captured. */
  private skipMissing(d: Direction, fromClient: boolean, n: number, meta: ChunkMeta, emit: Emit): void {
    if (d.mode === Mode.Resync) {
      this.stats.resyncBytes += n;
      return;
    }
    if (d.mode === Mode.Packet && d.started && d.queue.length > 0) this.cutFields(d, fromClient);
    if (d.mode === Mode.Skip) {
      d.truncated = true;
      if (n < d.skip) {
        d.skip -= n;
        return;
      }
      const past = n - d.skip;
      d.skip = 0;
      this.finish(d, meta, emit);
      if (past === 0) return;
      // the next packet starts inside the uncaptured bytes
      this.stats.resyncBytes += past;
      d.reset(Mode.Resync);
      return;
    }
    // between packets or inside a fixed header: nothing tells where the next packet starts
    this.stats.resyncBytes += n + d.queue.length;
    d.reset(Mode.Resync);
  }

  /** The capture cut a packet's fields: decode what was buffered and skip the rest by length. */
  private cutFields(d: Direction, fromClient: boolean): void {
    const view = d.queue.view();
    const first = view[0] as number;
    const remaining = readVarint(view, 1);
    if (remaining < 0) return; // fixed header incomplete: the caller resyncs
    const header = 1 + varint.bytes;
    const body = view.subarray(header, Math.min(view.length, header + remaining));
    d.truncated = true;
    d.packetBytes = header + remaining;
    d.pending = this.decode(first >> 4, first & 0xf, body, remaining, fromClient);
    d.skip = remaining - body.length;
    d.mode = Mode.Skip;
    d.queue.clear();
  }

  private malformed(d: Direction): void {
    this.stats.malformed++;
    d.reset(Mode.Resync);
  }

  /** The buffer cannot hold what is needed: drop it and resync. */
  private lose(d: Direction, dropped: number): void {
    this.stats.malformed++;
    this.stats.resyncBytes += dropped;
    d.reset(Mode.Resync);
  }

  /** The message of a packet from its fields (b may be cut short); undefined for packets not recorded. */
  private decode(
    type: number,
    flags: number,
    b: Uint8Array,
    remaining: number,
    fromClient: boolean,
  ): L7Message | undefined {
    switch (type) {
      case PacketType.Connect:
        return this.connect(b);
      case PacketType.Connack:
        return this.connack(b, remaining);
      case PacketType.Publish:
        return this.publish(b, flags, remaining, fromClient);
      case PacketType.Puback:
      case PacketType.Pubrec:
      case PacketType.Pubcomp:
        return this.ack(type, b, remaining, fromClient);
      case PacketType.Pubrel:
        return this.release(b, fromClient);
      case PacketType.Subscribe:
      case PacketType.Unsubscribe:
        return this.subscribe(type, b, remaining);
      case PacketType.Suback:
      case PacketType.Unsuback:
        return this.subscribeAck(type, b, remaining);
      case PacketType.Pingreq: {
        const m = newMessage("request", this.version());
        m.requestType = "PINGREQ";
        return m;
      }
      case PacketType.Pingresp: {
        const m = newMessage("response", this.version());
        m.status = "ok";
        return m;
      }
      case PacketType.Disconnect:
        return this.disconnect(b, fromClient);
      default:
        return undefined; // AUTH: part of the CONNECT/CONNACK exchange
    }
  }

  private version(): string | undefined {
    return versionName(this.level);
  }

  private connect(b: Uint8Array): L7Message | undefined {
    const nameLength = u16(b, 0);
    const levelAt = 2 + nameLength;
    if (!isProtocolName(b, nameLength) || levelAt >= b.length) {
      this.stats.malformed++;
      return undefined;
    }
    const level = b[levelAt] as number;
    this.level = level === Level.V31 || level === Level.V311 || level === Level.V5 ? level : Level.Unknown;
    for (const d of [this.c2s, this.s2c]) {
      d.aliases.clear();
      d.releasing.clear();
    }
    const m = newMessage("request", this.version());
    m.requestType = "CONNECT";
    let at = levelAt + 4;
    if (level === Level.V5) at = skipProperties(b, at);
    // the client id; user name, password and will message are never read
    if (at >= 0 && at + 2 <= b.length) {
      const clientId = utf8Text(b, at + 2, Math.min(b.length, at + 2 + u16(b, at)));
      if (clientId) {
        m.domain = clientId;
        setAttribute(m, "messaging.client.id", clientId);
      }
    }
    return m;
  }

  private connack(b: Uint8Array, remaining: number): L7Message {
    const m = newMessage("response", this.version());
    // a 3.1.1 CONNACK is always 2 bytes (also the answer to an MQTT 5 CONNECT a 3.1.1 broker refuses)
    const v5 = remaining > 2;
    if (v5 && this.level === Level.Unknown) this.level = Level.V5;
    if (b.length < 2) {
      m.status = "unknown";
      return m;
    }
    setReason(m, b[1] as number, v5 ? CodeTable.V5 : CodeTable.V311Connack, v5 ? reasonString(b, 2) : undefined);
    if (v5) m.version = "5.0";
    return m;
  }

  private publish(b: Uint8Array, flags: number, remaining: number, fromClient: boolean): L7Message {
    const d = fromClient ? this.c2s : this.s2c;
    const qos = (flags >> 1) & 3;
    const topicLength = u16(b, 0);
    const topicEnd = 2 + topicLength;
    let topic = topicLength > 0 && topicEnd <= b.length ? utf8Text(b, 2, topicEnd) : undefined;
    const idAt = topicEnd;
    const fieldsEnd = topicEnd + (qos > 0 ? 2 : 0);
    const m = newMessage("request", this.version());
    m.requestType = "PUBLISH";
    let payloadAt = fieldsEnd;
    if (this.level === Level.V5 && fieldsEnd < remaining) {
      const propertiesLength = readVarint(b, fieldsEnd);
      const propertiesAt = fieldsEnd + varint.bytes;
      payloadAt = propertiesLength < 0 ? -1 : propertiesAt + propertiesLength;
      const alias =
        payloadAt < 0 ? -1 : findProperty(b, propertiesAt, Math.min(payloadAt, b.length), Property.TopicAlias);
      if (alias >= 0 && alias + 2 <= b.length) {
        const id = u16(b, alias);
        if (topic !== undefined) {
          if (d.aliases.has(id) || d.aliases.size < MAX_TRACKED) d.aliases.set(id, topic);
        } else if (topicLength === 0) topic = d.aliases.get(id);
        setAttribute(m, "mqtt.topic_alias", id);
      }
    }
    setTopic(m, topic);
    setAttribute(m, "messaging.operation", fromClient ? "publish" : "receive");
    setAttribute(m, "mqtt.qos", qos);
    if (flags & 1) setAttribute(m, "mqtt.retain", true);
    if (payloadAt > 0 && payloadAt <= remaining && payloadAt <= b.length) {
      setAttribute(m, "messaging.message.body.size", remaining - payloadAt);
    }
    if (qos === 0 || idAt + 2 > b.length) {
      // QoS 0 gets no answer; a packet id cut by the capture cannot be paired either
      m.oneWay = true;
      return m;
    }
    const id = u16(b, idAt);
    m.key = (fromClient ? KeySpace.Client : KeySpace.Broker) | id;
    if (qos === 2 && topic !== undefined && (d.releasing.has(id) || d.releasing.size < MAX_TRACKED)) {
      d.releasing.set(id, topic);
    }
    return m;
  }

  /** PUBACK, PUBREC (answer a PUBLISH) and PUBCOMP (answers a PUBREL). */
  private ack(type: number, b: Uint8Array, remaining: number, fromClient: boolean): L7Message | undefined {
    if (b.length < 2) return undefined;
    if (remaining > 2 && this.level === Level.Unknown) this.level = Level.V5;
    const id = u16(b, 0);
    const m = newMessage("response", this.version());
    const code = remaining > 2 ? (b[2] ?? 0) : 0;
    if (type === PacketType.Pubcomp) m.key = (fromClient ? KeySpace.BrokerRelease : KeySpace.ClientRelease) | id;
    else {
      m.key = (fromClient ? KeySpace.Broker : KeySpace.Client) | id;
      // a refused QoS 2 PUBLISH gets no PUBREL
      if (type === PacketType.Pubrec && code >= 0x80) (fromClient ? this.s2c : this.c2s).releasing.delete(id);
    }
    if (remaining > 2 || this.level === Level.V5) setReason(m, code, CodeTable.V5, reasonString(b, 3));
    else m.status = "ok";
    return m;
  }

  /** PUBREL: the second exchange of a QoS 2 delivery, from the side that sent the PUBLISH. */
  private release(b: Uint8Array, fromClient: boolean): L7Message | undefined {
    if (b.length < 2) return undefined;
    const id = u16(b, 0);
    const d = fromClient ? this.c2s : this.s2c;
    const m = newMessage("request", this.version());
    m.requestType = "PUBREL";
    m.key = (fromClient ? KeySpace.ClientRelease : KeySpace.BrokerRelease) | id;
    setTopic(m, d.releasing.get(id));
    d.releasing.delete(id);
    return m;
  }

  private subscribe(type: number, b: Uint8Array, remaining: number): L7Message | undefined {
    if (b.length < 4) return undefined;
    const m = newMessage("request", undefined);
    m.requestType = type === PacketType.Subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    m.key = KeySpace.Client | u16(b, 0);
    let at = 2;
    if (subscribeHasProperties(b, remaining, this.level)) {
      this.level = Level.V5;
      at = skipProperties(b, at);
    }
    const version = this.version();
    if (version !== undefined) m.version = version;
    if (at >= 0 && at + 2 <= b.length) {
      const end = at + 2 + u16(b, at);
      if (end <= b.length) setTopic(m, utf8Text(b, at + 2, end));
    }
    return m;
  }

  /** SUBACK / UNSUBACK: the first failure code if any, else the first code. */
  private subscribeAck(type: number, b: Uint8Array, remaining: number): L7Message | undefined {
    if (b.length < 2) return undefined;
    const m = newMessage("response", this.version());
    m.key = KeySpace.Client | u16(b, 0);
    const v5 = this.level === Level.V5;
    let at = 2;
    let reason: string | undefined;
    if (v5) {
      reason = reasonString(b, 2);
      at = skipProperties(b, 2);
    }
    if (at < 0 || at >= b.length || (type === PacketType.Unsuback && !v5 && remaining === 2)) {
      m.status = "ok"; // 3.1.1 UNSUBACK has no codes
      return m;
    }
    let code = b[at] as number;
    for (let k = at; k < b.length; k++) {
      if ((b[k] as number) >= 0x80) {
        code = b[k] as number;
        break;
      }
    }
    setReason(m, code, v5 ? CodeTable.V5 : CodeTable.V311Suback, reason);
    return m;
  }

  /** The client's DISCONNECT is one-way; an MQTT 5 broker's DISCONNECT says why it closes. */
  private disconnect(b: Uint8Array, fromClient: boolean): L7Message {
    const code = b[0] ?? 0;
    if (fromClient) {
      const m = newMessage("request", this.version());
      m.requestType = "DISCONNECT";
      m.oneWay = true;
      if (code !== 0) setAttribute(m, "mqtt.reason_code", code);
      return m;
    }
    const m = newMessage("response", this.version());
    m.unsolicited = true;
    m.endpoint = "DISCONNECT";
    setReason(m, code, CodeTable.V5, reasonString(b, 1));
    return m;
  }
}

/** The MQTT 5 Reason String property of the property block at b[at], if captured. */
function reasonString(b: Uint8Array, at: number): string | undefined {
  const length = readVarint(b, at);
  if (length < 0) return undefined;
  const start = at + varint.bytes;
  const value = findProperty(b, start, Math.min(start + length, b.length), Property.ReasonString);
  if (value < 0) return undefined;
  const textEnd = value + 2 + u16(b, value);
  if (textEnd > b.length) return undefined;
  return utf8Text(b, value + 2, Math.min(textEnd, value + 2 + MAX_REASON_STRING)) || undefined;
}
