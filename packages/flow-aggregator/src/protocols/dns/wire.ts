// DNS wire format (RFC 1035): header checks, bounded name decoding, the OPT record's extended RCODE.
import { ascii } from "../bytes.js";

export const HEADER_BYTES = 12;
/** Header plus the smallest question (root name, QTYPE, QCLASS). */
export const MIN_QUERY_BYTES = HEADER_BYTES + 5;
/** Smallest resource record: root name, TYPE, CLASS, TTL, RDLENGTH. */
const MIN_RR_BYTES = 11;
const MAX_NAME_WIRE = 255;
const MAX_POINTER_JUMPS = 127;

export enum Flag {
  QR = 0x8000,
  TC = 0x0200,
  Z = 0x0040,
}

export enum Opcode {
  Query = 0x0,
  Notify = 0x4,
  Update = 0x5,
}

enum RRType {
  OPT = 0x29,
}

enum Label {
  Pointer = 0xc0,
  Normal = 0x00,
}

/** decodeName() results that are not offsets. */
export const NAME_MALFORMED = -1;
/** The name runs past the captured bytes. */
export const NAME_CUT = -2;

export const u16 = (b: Uint8Array, at: number): number => ((b[at] as number) << 8) | (b[at + 1] as number);

/**
 * Whether the 12 bytes at `at` are a plausible DNS header for a message of `wireLength` bytes.
 * Strict (for detect): a standard QUERY with one question, and a query's sections empty but for EDNS/TSIG.
 * Lenient (for parsing): QUERY, NOTIFY and UPDATE; a response may carry no question.
 */
export function headerPlausible(b: Uint8Array, at: number, wireLength: number, strict: boolean): boolean {
  if (b.length - at < HEADER_BYTES) return false;
  const flags = u16(b, at + 2);
  if ((flags & Flag.Z) !== 0) return false;
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== Opcode.Query && (strict || (opcode !== Opcode.Notify && opcode !== Opcode.Update))) return false;
  const qd = u16(b, at + 4);
  const an = u16(b, at + 6);
  const ns = u16(b, at + 8);
  const ar = u16(b, at + 10);
  const response = (flags & Flag.QR) !== 0;
  if (qd > 1 || (qd === 0 && (strict || !response))) return false;
  if (!response) {
    if ((flags & 0xf) !== 0) return false; // a query carries no RCODE
    if (opcode === Opcode.Query && (an !== 0 || ns !== 0 || ar > 2)) return false;
    if (strict && (flags & Flag.TC) !== 0) return false;
  }
  // every record takes at least 11 bytes
  return HEADER_BYTES + qd * 5 + (an + ns + ar) * MIN_RR_BYTES <= wireLength;
}

const scratch = new Uint8Array(MAX_NAME_WIRE + 1);

/** Output of decodeName(): the name in lower case without the trailing dot ("." for the root). */
export interface NameOut {
  name: string;
}

/**
 * Decodes the name at `at` in message `b` (offsets relative to the message start), following
 * compression pointers. Pointers must point backwards, jumps and length are capped, so it always ends.
 * Returns the offset just past the name where it is written, NAME_MALFORMED or NAME_CUT.
 */
export function decodeName(b: Uint8Array, at: number, out: NameOut): number {
  let pos = at;
  let after = -1;
  let jumps = 0;
  let wire = 1; // the root label
  let len = 0;
  for (;;) {
    if (pos >= b.length) return NAME_CUT;
    const c = b[pos] as number;
    if (c === 0) {
      if (after < 0) after = pos + 1;
      break;
    }
    const kind = c & 0xc0;
    if (kind === Label.Pointer) {
      if (pos + 1 >= b.length) return NAME_CUT;
      const target = ((c & 0x3f) << 8) | (b[pos + 1] as number);
      if (target >= pos || ++jumps > MAX_POINTER_JUMPS) return NAME_MALFORMED;
      if (after < 0) after = pos + 2;
      pos = target;
      continue;
    }
    if (kind !== Label.Normal) return NAME_MALFORMED; // extended label types are obsolete
    wire += c + 1;
    if (wire > MAX_NAME_WIRE) return NAME_MALFORMED;
    if (pos + 1 + c > b.length) return NAME_CUT;
    if (len > 0) scratch[len++] = 0x2e;
    for (let i = pos + 1; i <= pos + c; i++) {
      const ch = b[i] as number;
      scratch[len++] = ch >= 0x41 && ch <= 0x5a ? ch + 0x20 : ch;
    }
    pos += 1 + c;
  }
  out.name = len === 0 ? "." : ascii(scratch, 0, len);
  return after;
}

/** Offset just past the name at `at` without decoding it; NAME_MALFORMED or NAME_CUT otherwise. */
export function skipName(b: Uint8Array, at: number): number {
  let pos = at;
  let wire = 1;
  for (;;) {
    if (pos >= b.length) return NAME_CUT;
    const c = b[pos] as number;
    if (c === 0) return pos + 1;
    const kind = c & 0xc0;
    if (kind === Label.Pointer) return pos + 2 <= b.length ? pos + 2 : NAME_CUT;
    if (kind !== Label.Normal) return NAME_MALFORMED;
    wire += c + 1;
    if (wire > MAX_NAME_WIRE) return NAME_MALFORMED;
    pos += 1 + c;
  }
}

/** What a record needs from one message. */
export interface DnsInfo extends NameOut {
  id: number;
  response: boolean;
  opcode: number;
  /** RCODE, extended by the OPT record's upper bits when the OPT record was captured. */
  rcode: number;
  qdcount: number;
  ancount: number;
  /** -1 when the question was not captured (or there is none). */
  qtype: number;
  /** The question name was decoded into `name`. */
  hasName: boolean;
  /** The captured bytes end before the message does. */
  cut: boolean;
}

export const newInfo = (): DnsInfo => ({
  name: "",
  id: 0,
  response: false,
  opcode: 0,
  rcode: 0,
  qdcount: 0,
  ancount: 0,
  qtype: -1,
  hasName: false,
  cut: false,
});

/**
 * Parses message `b` (captured bytes from the header on) of `wireLength` bytes into `out`.
 * Returns false when it is not a well-formed DNS message as far as it was captured.
 */
export function parseMessage(b: Uint8Array, wireLength: number, out: DnsInfo): boolean {
  if (!headerPlausible(b, 0, wireLength, false)) return false;
  const flags = u16(b, 2);
  out.id = u16(b, 0);
  out.response = (flags & Flag.QR) !== 0;
  out.opcode = (flags >> 11) & 0xf;
  out.rcode = flags & 0xf;
  out.qdcount = u16(b, 4);
  out.ancount = u16(b, 6);
  out.qtype = -1;
  out.hasName = false;
  out.cut = b.length < wireLength;
  if (out.qdcount === 0) return true;
  const end = decodeName(b, HEADER_BYTES, out);
  if (end === NAME_MALFORMED) return false;
  if (end === NAME_CUT) {
    out.cut = true;
    return true;
  }
  out.hasName = true;
  if (end + 4 > b.length) {
    out.cut = true;
    return true;
  }
  out.qtype = u16(b, end);
  if (out.response && u16(b, 10) > 0) findExtendedRcode(b, end + 4, out);
  return true;
}

/** Walks the answer, authority and additional sections (as far as captured) for the OPT record. */
function findExtendedRcode(b: Uint8Array, from: number, out: DnsInfo): void {
  const records = u16(b, 6) + u16(b, 8) + u16(b, 10);
  let pos = from;
  for (let i = 0; i < records; i++) {
    const rdata = skipName(b, pos) + 10;
    if (rdata < 10 || rdata > b.length) return;
    if (u16(b, rdata - 10) === RRType.OPT) {
      out.rcode |= (b[rdata - 6] as number) << 4;
      return;
    }
    pos = rdata + u16(b, rdata - 2);
  }
}
