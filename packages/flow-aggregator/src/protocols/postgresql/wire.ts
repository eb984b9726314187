// PostgreSQL frontend/backend protocol v3: message codes and framing checks.

/** Frontend (client) message types. */
export enum Front {
  Bind = 0x42, // B
  Close = 0x43, // C
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyFail = 0x66, // f
  Describe = 0x44, // D
  Execute = 0x45, // E
  Flush = 0x48, // H
  FunctionCall = 0x46, // F
  Parse = 0x50, // P
  Password = 0x70, // p: also SASL and GSS responses
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
}

/** Backend (server) message types. */
export enum Back {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  CommandComplete = 0x43, // C
  CopyBothResponse = 0x57, // W
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  DataRow = 0x44, // D
  EmptyQueryResponse = 0x49, // I
  ErrorResponse = 0x45, // E
  FunctionCallResponse = 0x56, // V
  NegotiateProtocolVersion = 0x76, // v
  NoData = 0x6e, // n
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterDescription = 0x74, // t
  ParameterStatus = 0x53, // S
  ParseComplete = 0x31, // 1
  PortalSuspended = 0x73, // s
  ReadyForQuery = 0x5a, // Z
  RowDescription = 0x54, // T
}

/** Codes of the untyped packets a client may open with (length + code, no type byte). */
export enum Untyped {
  ProtocolMajor3 = 0x0003,
  CancelRequest = 0x04d2162e, // 80877102
  SslRequest = 0x04d2162f, // 80877103
  GssEncRequest = 0x04d21630, // 80877104
}

/** Single-byte answers to SSLRequest / GSSENCRequest. */
export enum EncryptionReply {
  Gss = 0x47, // G
  No = 0x4e, // N
  Ssl = 0x53, // S
}

/** First byte of a TLS handshake record. */
export const TLS_HANDSHAKE = 0x16;

/** Largest message length accepted (the server's own limit is 1 GB). */
export const MAX_MESSAGE = 0x40000000;
/** Largest startup packet the server accepts. */
export const MAX_STARTUP = 10000;

// Length bounds (the Int32 after the type byte, which counts itself) per type; 0 = not a type of that side.
const frontMin = new Uint32Array(256);
const frontMax = new Uint32Array(256);
const backMin = new Uint32Array(256);
const backMax = new Uint32Array(256);

function bound(min: Uint32Array, max: Uint32Array, type: number, lo: number, hi = MAX_MESSAGE): void {
  min[type] = lo;
  max[type] = hi;
}

bound(frontMin, frontMax, Front.Bind, 12);
bound(frontMin, frontMax, Front.Close, 6);
bound(frontMin, frontMax, Front.CopyData, 4);
bound(frontMin, frontMax, Front.CopyDone, 4, 4);
bound(frontMin, frontMax, Front.CopyFail, 5);
bound(frontMin, frontMax, Front.Describe, 6);
bound(frontMin, frontMax, Front.Execute, 9);
bound(frontMin, frontMax, Front.Flush, 4, 4);
bound(frontMin, frontMax, Front.FunctionCall, 14);
bound(frontMin, frontMax, Front.Parse, 8);
bound(frontMin, frontMax, Front.Password, 5);
bound(frontMin, frontMax, Front.Query, 5);
bound(frontMin, frontMax, Front.Sync, 4, 4);
bound(frontMin, frontMax, Front.Terminate, 4, 4);

bound(backMin, backMax, Back.Authentication, 8);
bound(backMin, backMax, Back.BackendKeyData, 12, 264);
bound(backMin, backMax, Back.BindComplete, 4, 4);
bound(backMin, backMax, Back.CloseComplete, 4, 4);
bound(backMin, backMax, Back.CommandComplete, 5);
bound(backMin, backMax, Back.CopyBothResponse, 7);
bound(backMin, backMax, Back.CopyData, 4);
bound(backMin, backMax, Back.CopyDone, 4, 4);
bound(backMin, backMax, Back.CopyInResponse, 7);
bound(backMin, backMax, Back.CopyOutResponse, 7);
bound(backMin, backMax, Back.DataRow, 6);
bound(backMin, backMax, Back.EmptyQueryResponse, 4, 4);
bound(backMin, backMax, Back.ErrorResponse, 5);
bound(backMin, backMax, Back.FunctionCallResponse, 8);
bound(backMin, backMax, Back.NegotiateProtocolVersion, 12);
bound(backMin, backMax, Back.NoData, 4, 4);
bound(backMin, backMax, Back.NoticeResponse, 5);
bound(backMin, backMax, Back.NotificationResponse, 10);
bound(backMin, backMax, Back.ParameterDescription, 6);
bound(backMin, backMax, Back.ParameterStatus, 6);
bound(backMin, backMax, Back.ParseComplete, 4, 4);
bound(backMin, backMax, Back.PortalSuspended, 4, 4);
bound(backMin, backMax, Back.ReadyForQuery, 5, 5);
bound(backMin, backMax, Back.RowDescription, 6);

/** Whether `len` is a valid length for a typed message `type` sent by that side. */
export function typedLengthOk(type: number, len: number, fromClient: boolean): boolean {
  const lo = (fromClient ? frontMin : backMin)[type] ?? 0;
  return lo !== 0 && len >= lo && len <= ((fromClient ? frontMax : backMax)[type] ?? 0);
}

/** Whether an untyped packet (length, code) is one a client sends first. */
export function untypedOk(len: number, code: number): boolean {
  if (code === Untyped.SslRequest || code === Untyped.GssEncRequest) return len === 8;
  if (code === Untyped.CancelRequest) return len === 16;
  return code >>> 16 === Untyped.ProtocolMajor3 && (code & 0xffff) < 0x100 && len >= 9 && len <= MAX_STARTUP;
}

/** Big-endian Int32 at `at` (as unsigned). */
export function be32(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) | ((b[at + 1] ?? 0) << 16) | ((b[at + 2] ?? 0) << 8) | (b[at + 3] ?? 0)) >>> 0;
}

/** Index of the first NUL in b[from, end), or -1. */
export function nulAt(b: Uint8Array, from: number, end = b.length): number {
  for (let i = from; i < end; i++) if (b[i] === 0) return i;
  return -1;
}
