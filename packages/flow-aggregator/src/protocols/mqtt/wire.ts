// MQTT wire format: packet types, fixed-header rules, variable byte integers, v5 properties.

/** Control packet types (fixed header bits 7-4). */
export const PacketType = {
  Connect: 0x1,
  Connack: 0x2,
  Publish: 0x3,
  Puback: 0x4,
  Pubrec: 0x5,
  Pubrel: 0x6,
  Pubcomp: 0x7,
  Subscribe: 0x8,
  Suback: 0x9,
  Unsubscribe: 0xa,
  Unsuback: 0xb,
  Pingreq: 0xc,
  Pingresp: 0xd,
  Disconnect: 0xe,
  Auth: 0xf,
} as const;

/** MQTT 5 property identifiers this parser reads. */
export const Property = {
  TopicAlias: 0x23,
  ReasonString: 0x1f,
} as const;

/** Protocol levels (CONNECT byte after the protocol name). */
export const Level = { Unknown: 0, V31: 0x3, V311: 0x4, V5: 0x5 } as const;

export const VARINT_SHORT = -1;
export const VARINT_BAD = -2;

/** Bytes used by the last readVarint() that returned a value (a scratch field: no allocation). */
export const varint = { bytes: 0 };

/**
 * Variable byte integer at b[at] (at most 4 bytes). Returns the value, VARINT_SHORT when b ends first
 * or VARINT_BAD when a 4th byte still has its continuation bit set.
 */
export function readVarint(b: Uint8Array, at: number, end: number = b.length): number {
  let value = 0;
  let mul = 1;
  for (let k = 0; k < 4; k++) {
    if (at + k >= end) return VARINT_SHORT;
    const c = b[at + k] as number;
    value += (c & 0x7f) * mul;
    if ((c & 0x80) === 0) {
      varint.bytes = k + 1;
      return value;
    }
    mul *= 128;
  }
  return VARINT_BAD;
}

/** Big-endian u16 at b[i] (0 past the end). */
export function u16(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
}

/** Fixed-header flags are those the spec requires for the type (PUBLISH: QoS 3 is invalid). */
export function validTypeAndFlags(type: number, flags: number): boolean {
  switch (type) {
    case 0:
      return false;
    case PacketType.Publish:
      return (flags & 0x6) !== 0x6;
    case PacketType.Pubrel:
    case PacketType.Subscribe:
    case PacketType.Unsubscribe:
      return flags === 0x2;
    default:
      return flags === 0;
  }
}

/** The side that may send a packet type: 1 client only, 2 broker only, 3 both. */
export function senders(type: number): number {
  switch (type) {
    case PacketType.Connect:
    case PacketType.Subscribe:
    case PacketType.Unsubscribe:
    case PacketType.Pingreq:
      return 1;
    case PacketType.Connack:
    case PacketType.Suback:
    case PacketType.Unsuback:
    case PacketType.Pingresp:
      return 2;
    default:
      return 3;
  }
}

export function sentBy(type: number, fromClient: boolean): boolean {
  return (senders(type) & (fromClient ? 1 : 2)) !== 0;
}

/** Smallest remaining length each type can have (any protocol level); PINGs must be empty. */
export function validRemainingLength(type: number, flags: number, remaining: number): boolean {
  switch (type) {
    case PacketType.Connect:
      return remaining >= 12; // 00 04 "MQTT" level flags keep-alive + client id length
    case PacketType.Connack:
      return remaining >= 2;
    case PacketType.Publish:
      return remaining >= ((flags & 0x6) === 0 ? 2 : 4);
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
    case PacketType.Unsuback:
      return remaining >= 2;
    case PacketType.Subscribe:
    case PacketType.Unsubscribe:
      return remaining >= 5;
    case PacketType.Suback:
      return remaining >= 3;
    case PacketType.Pingreq:
    case PacketType.Pingresp:
      return remaining === 0;
    default:
      return true;
  }
}

/**
 * Size of the value of property `id` (after the identifier byte) at b[at], or -1 when unknown or cut.
 */
function propertyValueSize(id: number, b: Uint8Array, at: number, end: number): number {
  switch (id) {
    case 0x01:
    case 0x17:
    case 0x19:
    case 0x24:
    case 0x25:
    case 0x28:
    case 0x29:
    case 0x2a:
      return 1;
    case 0x13:
    case 0x21:
    case 0x22:
    case 0x23:
      return 2;
    case 0x02:
    case 0x11:
    case 0x18:
    case 0x27:
      return 4;
    case 0x0b: {
      const v = readVarint(b, at, end);
      return v < 0 ? -1 : varint.bytes;
    }
    case 0x03:
    case 0x08:
    case 0x09:
    case 0x12:
    case 0x15:
    case 0x16:
    case 0x1a:
    case 0x1c:
    case 0x1f:
      return at + 2 <= end ? 2 + u16(b, at) : -1;
    case 0x26: {
      if (at + 2 > end) return -1;
      const second = at + 2 + u16(b, at);
      return second + 2 <= end ? second + 2 + u16(b, second) - at : -1;
    }
    default:
      return -1;
  }
}

/**
 * Offset of the value of the first property `id` in the property block b[start, end), or -1 when it
 * is absent, the block is cut (capture or buffer limit) or malformed.
 */
export function findProperty(b: Uint8Array, start: number, end: number, id: number): number {
  let at = start;
  while (at < end) {
    const pid = b[at] as number;
    const size = propertyValueSize(pid, b, at + 1, end);
    if (size < 0 || at + 1 + size > end) return -1;
    if (pid === id) return at + 1;
    at += 1 + size;
  }
  return -1;
}

/** "MQTT" (3.1.1, 5.0) or "MQIsdp" (3.1) after its length at b[0..1]. */
export function isProtocolName(b: Uint8Array, length: number): boolean {
  if (length === 4) return b[2] === 0x4d && b[3] === 0x51 && b[4] === 0x54 && b[5] === 0x54;
  if (length === 6) {
    return b[2] === 0x4d && b[3] === 0x51 && b[4] === 0x49 && b[5] === 0x73 && b[6] === 0x64 && b[7] === 0x70;
  }
  return false;
}
