// Packet-level checks shared by detect() and the session: framing runs and field extents.
import {
  Level,
  PacketType,
  readVarint,
  senders,
  u16,
  VARINT_BAD,
  VARINT_SHORT,
  validRemainingLength,
  validTypeAndFlags,
  varint,
} from "./wire.js";

/** Sides that may send a packet: bit 1 the client, bit 2 the broker. */
export const Sides = { None: 0, Client: 1, Broker: 2, Either: 3 } as const;

/**
 * Walks whole packets from b[0] and returns the sides that could have sent all of them (Sides.None
 * when the bytes do not look like MQTT). `exact`: the bytes must end on a packet boundary; otherwise
 * the last packet may run past the end (cut by the capture or continued in the next write).
 */
export function packetRun(b: Uint8Array, exact: boolean, maxPackets = 16): number {
  let at = 0;
  let sides: number = Sides.Either;
  for (let n = 0; n < maxPackets && at < b.length; n++) {
    const first = b[at] as number;
    const type = first >> 4;
    const flags = first & 0xf;
    if (!validTypeAndFlags(type, flags)) return Sides.None;
    const remaining = readVarint(b, at + 1);
    if (remaining === VARINT_BAD) return Sides.None;
    if (remaining === VARINT_SHORT) return exact ? Sides.None : sides;
    if (!validRemainingLength(type, flags, remaining)) return Sides.None;
    sides &= senders(type);
    if (sides === Sides.None) return Sides.None;
    const body = at + 1 + varint.bytes;
    // a PUBLISH topic must fit in the packet
    if (type === PacketType.Publish && body + 2 <= b.length && 2 + u16(b, body) > remaining) return Sides.None;
    at = body + remaining;
  }
  if (at > b.length && exact) return Sides.None;
  return sides;
}

/**
 * Position after an MQTT 5 property block (length varint + properties) starting at b[at]. May be
 * past b.length: the caller needs that many bytes. -1 when the length is malformed.
 */
export function skipProperties(b: Uint8Array, at: number): number {
  const length = readVarint(b, at);
  if (length === VARINT_SHORT) return b.length + 1;
  if (length === VARINT_BAD) return -1;
  return at + varint.bytes + length;
}

/**
 * Whether a SUBSCRIBE/UNSUBSCRIBE body (at least 4 bytes) has MQTT 5 properties: known from the
 * level, else guessed when the 3.1.1 reading gives an empty or oversized first filter.
 */
export function subscribeHasProperties(b: Uint8Array, remaining: number, level: number): boolean {
  if (level === Level.V5) return true;
  if (level !== Level.Unknown) return false;
  const filterLength = u16(b, 2);
  return filterLength === 0 || 4 + filterLength > remaining;
}

/**
 * Body bytes needed to read every field records use (the payload and anything after the fields is
 * skipped by length). Computed from the `b` available so far: when the result exceeds b.length,
 * wait for that many and ask again. -1 when the body is malformed.
 */
export function fieldsLength(type: number, flags: number, b: Uint8Array, remaining: number, level: number): number {
  switch (type) {
    case PacketType.Connect: {
      if (b.length < 2) return 2;
      const nameEnd = 2 + u16(b, 0);
      if (nameEnd > 8) return -1; // "MQTT" or "MQIsdp"
      let at = nameEnd + 4; // level, connect flags, keep-alive
      if (b.length < at) return at;
      if (b[nameEnd] === Level.V5) {
        if (b.length < at + 1) return at + 1;
        at = skipProperties(b, at);
        if (at < 0 || at > b.length) return at;
      }
      if (b.length < at + 2) return at + 2;
      return at + 2 + u16(b, at);
    }
    case PacketType.Publish: {
      if (b.length < 2) return 2;
      const at = 2 + u16(b, 0) + ((flags & 0x6) === 0 ? 0 : 2);
      if (level !== Level.V5 || at >= remaining) return at;
      if (b.length < at + 1) return at + 1;
      return skipProperties(b, at);
    }
    case PacketType.Subscribe:
    case PacketType.Unsubscribe: {
      if (b.length < 4) return 4;
      let at = 2;
      if (subscribeHasProperties(b, remaining, level)) {
        at = skipProperties(b, at);
        if (at < 0 || at > b.length) return at;
      }
      if (b.length < at + 2) return at + 2;
      return at + 2 + u16(b, at);
    }
    case PacketType.Auth:
      return 0;
    default:
      return remaining;
  }
}
