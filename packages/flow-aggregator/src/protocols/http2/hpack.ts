// HPACK (RFC 7541) header block decoder keeping only the fields records need. The dynamic table
// tracks what it knows: a capture that starts mid-connection (or loses a header block) leaves older
// entries unknown, and references to them are reported unresolved instead of guessed.
import { ascii } from "../bytes.js";
import { huffmanDecode, huffmanMaxDecoded } from "./huffman.js";

/** Header fields records use; anything else is Other. */
enum Field {
  Unknown = -1,
  Other = 0,
  Method = 1,
  Path = 2,
  Authority = 3,
  Host = 4,
  Status = 5,
  ContentType = 6,
  GrpcStatus = 7,
  GrpcMessage = 8,
  Traceparent = 9,
  XRequestId = 10,
}

const FIELD_NAMES: ReadonlyArray<readonly [string, Field]> = [
  [":method", Field.Method],
  [":path", Field.Path],
  [":authority", Field.Authority],
  ["host", Field.Host],
  [":status", Field.Status],
  ["content-type", Field.ContentType],
  ["grpc-status", Field.GrpcStatus],
  ["grpc-message", Field.GrpcMessage],
  ["traceparent", Field.Traceparent],
  ["x-request-id", Field.XRequestId],
];
const FIELD_BYTES = FIELD_NAMES.map(([name, field]) => ({
  bytes: Uint8Array.from(name, (c) => c.charCodeAt(0)),
  field,
}));

/** The field a header name (bytes) is; Other when records do not use it. */
function fieldOf(b: Uint8Array, start: number, end: number): Field {
  const length = end - start;
  outer: for (const f of FIELD_BYTES) {
    if (f.bytes.length !== length) continue;
    for (let i = 0; i < length; i++) if (b[start + i] !== f.bytes[i]) continue outer;
    return f.field;
  }
  return Field.Other;
}

interface StaticEntry {
  field: Field;
  nameLength: number;
  value: string;
}

/** RFC 7541 Appendix A, index 1..61 (values only where records may use them). */
const STATIC_TABLE: StaticEntry[] = (
  [
    [":authority", ""],
    [":method", "GET"],
    [":method", "POST"],
    [":path", "/"],
    [":path", "/index.html"],
    [":scheme", ""],
    [":scheme", ""],
    [":status", "200"],
    [":status", "204"],
    [":status", "206"],
    [":status", "304"],
    [":status", "400"],
    [":status", "404"],
    [":status", "500"],
    ...[
      "accept-charset",
      "accept-encoding",
      "accept-language",
      "accept-ranges",
      "accept",
      "access-control-allow-origin",
      "age",
      "allow",
      "authorization",
      "cache-control",
      "content-disposition",
      "content-encoding",
      "content-language",
      "content-length",
      "content-location",
      "content-range",
      "content-type",
      "cookie",
      "date",
      "etag",
      "expect",
      "expires",
      "from",
      "host",
      "if-match",
      "if-modified-since",
      "if-none-match",
      "if-range",
      "if-unmodified-since",
      "last-modified",
      "link",
      "location",
      "max-forwards",
      "proxy-authenticate",
      "proxy-authorization",
      "range",
      "referer",
      "refresh",
      "retry-after",
      "server",
      "set-cookie",
      "strict-transport-security",
      "transfer-encoding",
      "user-agent",
      "vary",
      "via",
      "www-authenticate",
    ].map((name) => [name, ""]),
  ] as Array<[string, string]>
).map(([name, value]) => {
  const bytes = Uint8Array.from(name, (c) => c.charCodeAt(0));
  return { field: fieldOf(bytes, 0, bytes.length), nameLength: bytes.length, value };
});
const STATIC_COUNT = 61;
// index 16 "accept-encoding: gzip, deflate" has a value, but no record uses it

/** A dynamic table entry: its value is kept only for fields records use. */
interface Entry {
  field: Field;
  nameLength: number;
  value: string | undefined;
  /** RFC 7541 §4.1 size; a lower bound when the name is unknown. */
  size: number;
}

/** Fields found in one header block. */
export class HeaderFields {
  method: string | undefined;
  path: string | undefined;
  authority: string | undefined;
  host: string | undefined;
  status: string | undefined;
  contentType: string | undefined;
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  traceparent: string | undefined;
  xRequestId: string | undefined;
  /** Dynamic table references that could not be resolved (entries from before the capture). */
  unresolved = 0;

  reset(): void {
    this.method = this.path = this.authority = this.host = this.status = undefined;
    this.contentType = this.grpcStatus = this.grpcMessage = this.traceparent = this.xRequestId = undefined;
    this.unresolved = 0;
  }
}

/** Keeps the first value of each field records use. */
function setField(out: HeaderFields, field: Field, value: string): void {
  switch (field) {
    case Field.Method:
      out.method ??= value;
      break;
    case Field.Path:
      out.path ??= value;
      break;
    case Field.Authority:
      out.authority ??= value;
      break;
    case Field.Host:
      out.host ??= value;
      break;
    case Field.Status:
      out.status ??= value;
      break;
    case Field.ContentType:
      out.contentType ??= value;
      break;
    case Field.GrpcStatus:
      out.grpcStatus ??= value;
      break;
    case Field.GrpcMessage:
      out.grpcMessage ??= value;
      break;
    case Field.Traceparent:
      out.traceparent ??= value;
      break;
    case Field.XRequestId:
      out.xRequestId ??= value;
      break;
  }
}

export const DecodeResult = {
  Ok: 0,
  /** The block ends inside a representation (cut by the capture). */
  Truncated: 1,
  Malformed: 2,
} as const;
export type DecodeResult = (typeof DecodeResult)[keyof typeof DecodeResult];

/** Default SETTINGS_HEADER_TABLE_SIZE. */
export const DEFAULT_TABLE_SIZE = 4096;
/** Largest table tracked (memory bound); bigger tables make older references unresolved. */
export const MAX_TRACKED_TABLE_SIZE = 65536;
/** Longest header value kept for a record. */
const MAX_VALUE_CHARS = 2048;
const ENTRY_OVERHEAD = 32;

// Decoder scratch (the decoder is synchronous and not re-entrant).
let huffmanOut = new Uint8Array(1024);
/** Result of readInt / readString: the value, and where the string's bytes are. */
let intValue = 0;
let strBytes: Uint8Array = huffmanOut;
let strStart = 0;
let strEnd = 0;
/** Result of resolve(): the entry's field, name length and value. */
let refField: Field = Field.Other;
let refNameLength = 0;
let refValue: string | undefined;

const TRUNCATED = -1;
const MALFORMED = -2;

/** Reads an HPACK integer with an n-bit prefix at b[i]; returns the next offset (or TRUNCATED/MALFORMED). */
function readInt(b: Uint8Array, i: number, end: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  let value = (b[i] as number) & max;
  let at = i + 1;
  if (value === max) {
    let factor = 1;
    for (;;) {
      if (at >= end) return TRUNCATED;
      const c = b[at++] as number;
      value += (c & 127) * factor;
      factor *= 128;
      if ((c & 128) === 0) break;
      if (factor > 2 ** 28) return MALFORMED;
    }
  }
  intValue = value;
  return at;
}

/** Reads a string literal at b[i] (Huffman-decoded when flagged); returns the next offset (or an error). */
function readString(b: Uint8Array, i: number, end: number): number {
  if (i >= end) return TRUNCATED;
  const huffman = ((b[i] as number) & 128) !== 0;
  const at = readInt(b, i, end, 7);
  if (at < 0) return at;
  const length = intValue;
  if (length > end - at) return TRUNCATED;
  if (!huffman) {
    strBytes = b;
    strStart = at;
    strEnd = at + length;
    return at + length;
  }
  const need = huffmanMaxDecoded(length);
  if (huffmanOut.length < need) huffmanOut = new Uint8Array(Math.max(need, huffmanOut.length * 2));
  const n = huffmanDecode(b, at, at + length, huffmanOut);
  if (n < 0) return MALFORMED;
  strBytes = huffmanOut;
  strStart = 0;
  strEnd = n;
  return at + length;
}

const valueText = (): string => ascii(strBytes, strStart, Math.min(strEnd, strStart + MAX_VALUE_CHARS));

/**
 * One direction's HPACK decoding context. Entries are kept newest last. `partial` means older
 * entries we never saw may sit past the known ones: a reference beyond them is unresolved, not an error.
 */
export class HpackDecoder {
  private entries: Array<Entry | undefined> = [];
  private oldest = 0;
  private size = 0;
  /** Table size in use: the last size update, else the limit (mid-connection: an upper bound). */
  private maxSize = MAX_TRACKED_TABLE_SIZE;
  /** SETTINGS_HEADER_TABLE_SIZE of the decoding side, when seen. */
  private settingsLimit: number | undefined;
  /** Upper bound for size updates: the setting, the default from a seen start, else the tracking bound. */
  private limit = MAX_TRACKED_TABLE_SIZE;
  private partial = true;

  /** The connection start was seen: the table is empty and fully known. */
  start(): void {
    this.clear();
    this.partial = false;
    this.maxSize = DEFAULT_TABLE_SIZE;
    this.limit = Math.min(Math.max(this.settingsLimit ?? 0, DEFAULT_TABLE_SIZE), MAX_TRACKED_TABLE_SIZE);
  }

  /** Header blocks were lost: nothing in the table can be trusted any more. */
  lose(): void {
    this.clear();
    this.partial = true;
    this.maxSize = this.limit;
  }

  /** SETTINGS_HEADER_TABLE_SIZE from the decoding side. */
  setLimit(value: number): void {
    this.settingsLimit = value;
    // the encoder may keep the default until it sees the setting
    this.limit = Math.min(Math.max(value, DEFAULT_TABLE_SIZE), MAX_TRACKED_TABLE_SIZE);
  }

  get knownEntries(): number {
    return this.entries.length - this.oldest;
  }

  /** Sum of the known entries' sizes (RFC 7541 §4.1). */
  get tableSize(): number {
    return this.size;
  }

  get isPartial(): boolean {
    return this.partial;
  }

  /** Decodes the block b[start, end) into `out`. Malformed or truncated blocks leave the table lost. */
  decode(b: Uint8Array, start: number, end: number, out: HeaderFields): DecodeResult {
    let i = start;
    while (i < end) {
      const c = b[i] as number;
      if (c & 128) {
        // indexed field
        i = readInt(b, i, end, 7);
        if (i < 0) return this.fail(i);
        const r = this.resolve(intValue);
        if (r < 0) return this.fail(MALFORMED);
        if (r === 0) out.unresolved++;
        else if (refField !== Field.Other && refValue !== undefined) setField(out, refField, refValue);
        continue;
      }
      if ((c & 224) === 32) {
        // dynamic table size update
        i = readInt(b, i, end, 5);
        if (i < 0) return this.fail(i);
        if (!this.resize(intValue)) return this.fail(MALFORMED);
        continue;
      }
      const indexing = (c & 64) !== 0;
      i = readInt(b, i, end, indexing ? 6 : 4);
      if (i < 0) return this.fail(i);
      let field: Field;
      let nameLength: number;
      if (intValue === 0) {
        i = readString(b, i, end);
        if (i < 0) return this.fail(i);
        field = fieldOf(strBytes, strStart, strEnd);
        nameLength = strEnd - strStart;
      } else {
        const r = this.resolve(intValue);
        if (r < 0) return this.fail(MALFORMED);
        field = r === 0 ? Field.Unknown : refField;
        nameLength = r === 0 ? 0 : refNameLength;
      }
      i = readString(b, i, end);
      if (i < 0) return this.fail(i);
      const valueLength = strEnd - strStart;
      const value = field > Field.Other ? valueText() : undefined;
      if (field === Field.Unknown) out.unresolved++;
      else if (value !== undefined) setField(out, field, value);
      if (indexing) this.insert(field, nameLength, value, valueLength);
    }
    return DecodeResult.Ok;
  }

  private fail(code: number): DecodeResult {
    this.lose();
    return code === TRUNCATED ? DecodeResult.Truncated : DecodeResult.Malformed;
  }

  /** 1 and ref* set when resolved, 0 when the entry is unknown, -1 when the index is invalid. */
  private resolve(index: number): number {
    if (index === 0) return -1;
    if (index <= STATIC_COUNT) {
      const e = STATIC_TABLE[index - 1] as StaticEntry;
      refField = e.field;
      refNameLength = e.nameLength;
      refValue = e.value;
      return 1;
    }
    const d = index - STATIC_COUNT - 1;
    const known = this.entries.length - this.oldest;
    if (d >= known) return this.partial ? 0 : -1;
    const e = this.entries[this.entries.length - 1 - d] as Entry;
    if (e.field === Field.Unknown) return 0;
    refField = e.field;
    refNameLength = e.nameLength;
    refValue = e.value;
    return 1;
  }

  private insert(field: Field, nameLength: number, value: string | undefined, valueLength: number): void {
    const size = ENTRY_OVERHEAD + nameLength + valueLength;
    this.evictTo(this.maxSize - size);
    if (size > this.maxSize) {
      // an entry larger than the table empties it (RFC 7541 §4.4)
      this.clear();
      this.partial = false;
      return;
    }
    this.entries.push({ field, nameLength, value, size });
    this.size += size;
    this.settle();
  }

  private resize(newMax: number): boolean {
    let ok = true;
    let max = newMax;
    if (max > this.limit) {
      ok = this.partial; // the limit is a guess when settings were not seen
      max = this.limit;
      this.partial = true;
    }
    this.maxSize = max;
    this.evictTo(max);
    this.settle();
    return ok;
  }

  /** Evicts oldest entries until size ≤ target. */
  private evictTo(target: number): void {
    while (this.size > target && this.oldest < this.entries.length) {
      this.size -= (this.entries[this.oldest] as Entry).size;
      this.entries[this.oldest++] = undefined;
    }
    if (this.oldest === this.entries.length) this.clear();
    else if (this.oldest > 32 && this.oldest * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.oldest);
      this.oldest = 0;
    }
  }

  /** Unknown older entries (each ≥ 32 bytes) cannot still fit once the known ones fill the table. */
  private settle(): void {
    if (this.partial && this.size + ENTRY_OVERHEAD > this.maxSize) this.partial = false;
  }

  private clear(): void {
    this.entries = [];
    this.oldest = 0;
    this.size = 0;
  }
}
