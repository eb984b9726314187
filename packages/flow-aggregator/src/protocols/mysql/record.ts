import type { AttributeValue, ResponseStatus } from "../../types.js";
import { utf8Text } from "../bytes.js";

export const DB_SYSTEM = "mysql";

/** Attributes every MySQL message carries. */
export function baseAttributes(): Record<string, AttributeValue> {
  return { "db.system.name": DB_SYSTEM };
}

/** SQLSTATE classes that blame the statement or the client: data, constraint, syntax/access, auth, catalog. */
const CLIENT_CLASSES = new Set(["22", "23", "42", "28", "3D"]);

/** Record status of an ERR packet from its SQLSTATE (5 chars, may be empty). */
export function errorStatus(sqlState: string): ResponseStatus {
  return CLIENT_CLASSES.has(sqlState.slice(0, 2).toUpperCase()) ? "client_error" : "server_error";
}

export interface ErrPacket {
  code: number;
  sqlState: string;
  message: string;
}

const MAX_MESSAGE = 512;

/** ERR packet: 0xff, code (2), ['#' + SQLSTATE (5)], message. `p` may be cut short. */
export function parseErr(p: Uint8Array): ErrPacket {
  const code = p.length >= 3 ? (p[1] as number) | ((p[2] as number) << 8) : 0;
  let at = 3;
  let sqlState = "";
  if (p[3] === 0x23 && p.length >= 9) {
    sqlState = utf8Text(p, 4, 9);
    at = 9;
  }
  const message = at < p.length ? utf8Text(p, at, Math.min(p.length, at + MAX_MESSAGE)) : "";
  return { code, sqlState, message };
}

/** Length-encoded integer at `at`: value and size in bytes; size 0 when cut short or invalid (0xfb, 0xff). */
export interface Lenenc {
  value: number;
  size: number;
}

export function readLenenc(p: Uint8Array, at: number, out: Lenenc): Lenenc {
  const c = p[at];
  out.value = 0;
  out.size = 0;
  if (c === undefined) return out;
  if (c < 0xfb) {
    out.value = c;
    out.size = 1;
  } else if (c === 0xfc && at + 2 < p.length) {
    out.value = (p[at + 1] as number) | ((p[at + 2] as number) << 8);
    out.size = 3;
  } else if (c === 0xfd && at + 3 < p.length) {
    out.value = (p[at + 1] as number) | ((p[at + 2] as number) << 8) | ((p[at + 3] as number) << 16);
    out.size = 4;
  } else if (c === 0xfe && at + 8 < p.length) {
    let v = 0;
    for (let i = 8; i >= 1; i--) v = v * 256 + (p[at + i] as number);
    out.value = v;
    out.size = 9;
  }
  return out;
}
