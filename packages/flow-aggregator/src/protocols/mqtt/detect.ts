import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import { packetRun, Sides } from "./packet.js";
import { isProtocolName, PacketType, readVarint, VARINT_SHORT, varint } from "./wire.js";

const SURE_CLIENT: Detection = { confidence: Confidence.Sure, fromClient: true };
const MAYBE_CLIENT: Detection = { confidence: Confidence.Maybe, fromClient: true };
const MAYBE_BROKER: Detection = { confidence: Confidence.Maybe, fromClient: false };
const MAYBE: Detection = { confidence: Confidence.Maybe };

/**
 * A CONNECT naming "MQTT"/"MQIsdp" is sure (the client's); the first bytes of one are likely. Other
 * packets are only likely: the bytes must frame exactly as valid packets that one side may send.
 */
export function detectMqtt(b: Uint8Array, fromClient: boolean | undefined): Detection {
  if (b.length === 0) return NOT_DETECTED;
  if (b[0] === PacketType.Connect << 4) {
    if (fromClient === false) return NOT_DETECTED;
    // brokers (mosquitto) read the fixed header a byte at a time: a lone first byte is a likely start
    const remaining = b.length === 1 ? VARINT_SHORT : readVarint(b, 1);
    if (remaining === VARINT_SHORT) return MAYBE_CLIENT;
    if (remaining >= 12) {
      const body = b.subarray(1 + varint.bytes);
      const nameLength = ((body[0] ?? 0) << 8) | (body[1] ?? 0);
      if (body.length >= 2 + nameLength && isProtocolName(body, nameLength)) return SURE_CLIENT;
      // a CONNECT cut before its protocol name: the bytes seen must start it
      if (body.length < 8 && startsProtocolName(body)) return MAYBE_CLIENT;
    }
    return NOT_DETECTED;
  }
  const sides = packetRun(b, true);
  if (fromClient !== undefined)
    return (sides & (fromClient ? Sides.Client : Sides.Broker)) !== 0 ? MAYBE : NOT_DETECTED;
  if (sides === Sides.Client) return MAYBE_CLIENT;
  if (sides === Sides.Broker) return MAYBE_BROKER;
  return sides === Sides.Either ? MAYBE : NOT_DETECTED;
}

const MQTT = [0, 4, 0x4d, 0x51, 0x54, 0x54];
const MQISDP = [0, 6, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70];

function startsProtocolName(body: Uint8Array): boolean {
  const prefixOf = (name: number[]) => body.every((c, i) => i >= name.length || c === name[i]);
  return prefixOf(MQTT) || prefixOf(MQISDP);
}
