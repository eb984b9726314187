import type { ResponseStatus } from "../../types.js";
import { ascii, utf8Text } from "../bytes.js";
import { nulAt } from "./wire.js";

export const SYSTEM_NAME = "postgresql";
const MAX_EXCEPTION = 1024;

/** SQLSTATE classes that are the client's fault: data, integrity, syntax/access, authorization, catalog. */
const CLIENT_CLASSES = new Set(["22", "23", "42", "28", "3D"]);

/** SQLSTATE -> record status. */
export function sqlStateStatus(sqlState: string): ResponseStatus {
  return CLIENT_CLASSES.has(sqlState.slice(0, 2)) ? "client_error" : "server_error";
}

/** The fields of an ErrorResponse a record keeps. */
export interface ErrorFields {
  sqlState: string;
  message: string;
}

const FIELD_CODE = 0x43; // C
const FIELD_MESSAGE = 0x4d; // M

/** SQLSTATE ('C') and message ('M') of an ErrorResponse body (possibly cut short). */
export function parseErrorFields(b: Uint8Array): ErrorFields {
  const out: ErrorFields = { sqlState: "", message: "" };
  let i = 0;
  while (i < b.length && b[i] !== 0) {
    const field = b[i] as number;
    const nul = nulAt(b, i + 1);
    const end = nul < 0 ? b.length : nul;
    if (field === FIELD_CODE) out.sqlState = ascii(b, i + 1, Math.min(end, i + 6));
    else if (field === FIELD_MESSAGE)
      out.message = utf8Text(b, i + 1, Math.min(end, i + 1 + MAX_EXCEPTION * 4)).slice(0, MAX_EXCEPTION);
    if (nul < 0) break;
    i = nul + 1;
  }
  return out;
}

/** What a CommandComplete tag counts: rows returned (SELECT 3) or affected (INSERT 0 1). */
export enum RowKind {
  None = 0,
  Returned = 1,
  Affected = 2,
  /** COPY n: returned for COPY TO STDOUT, affected for COPY FROM STDIN. */
  Copied = 3,
}

const TAG_WORDS: ReadonlyArray<readonly [Uint8Array, RowKind]> = [
  [Uint8Array.from([0x53, 0x45, 0x4c, 0x45, 0x43, 0x54]), RowKind.Returned], // SELECT
  [Uint8Array.from([0x46, 0x45, 0x54, 0x43, 0x48]), RowKind.Returned], // FETCH
  [Uint8Array.from([0x49, 0x4e, 0x53, 0x45, 0x52, 0x54]), RowKind.Affected], // INSERT
  [Uint8Array.from([0x55, 0x50, 0x44, 0x41, 0x54, 0x45]), RowKind.Affected], // UPDATE
  [Uint8Array.from([0x44, 0x45, 0x4c, 0x45, 0x54, 0x45]), RowKind.Affected], // DELETE
  [Uint8Array.from([0x4d, 0x45, 0x52, 0x47, 0x45]), RowKind.Affected], // MERGE
  [Uint8Array.from([0x43, 0x4f, 0x50, 0x59]), RowKind.Copied], // COPY
];

/** Row count of a CommandComplete tag, written to `into` ([kind, count]); kind None if it has none. */
export function parseTag(b: Uint8Array, into: [RowKind, number]): void {
  into[0] = RowKind.None;
  into[1] = 0;
  let end = nulAt(b, 0);
  if (end < 0) end = b.length;
  let space = -1;
  for (let i = 0; i < end; i++) {
    if (b[i] === 0x20) {
      space = i;
      break;
    }
  }
  if (space <= 0) return;
  let kind = RowKind.None;
  for (const [word, k] of TAG_WORDS) {
    if (word.length !== space) continue;
    let same = true;
    for (let j = 0; j < space; j++) {
      if (b[j] !== word[j]) {
        same = false;
        break;
      }
    }
    if (same) {
      kind = k;
      break;
    }
  }
  if (kind === RowKind.None) return;
  let last = end;
  while (last > space && b[last - 1] !== 0x20) last--;
  if (last === end || end - last > 15) return;
  let count = 0;
  for (let i = last; i < end; i++) {
    const c = b[i] as number;
    if (c < 0x30 || c > 0x39) return;
    count = count * 10 + (c - 0x30);
  }
  into[0] = kind;
  into[1] = count;
}

/** The startup parameters a record needs (user, database), from a StartupMessage body after the code. */
export function startupParams(b: Uint8Array): { user?: string; database?: string } {
  const out: { user?: string; database?: string } = {};
  let i = 0;
  while (i < b.length && b[i] !== 0) {
    const keyEnd = nulAt(b, i);
    const valueEnd = keyEnd < 0 ? -1 : nulAt(b, keyEnd + 1);
    if (valueEnd < 0) break;
    const key = ascii(b, i, keyEnd);
    if (key === "user") out.user = utf8Text(b, keyEnd + 1, valueEnd);
    else if (key === "database") out.database = utf8Text(b, keyEnd + 1, valueEnd);
    i = valueEnd + 1;
  }
  return out;
}
