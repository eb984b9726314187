import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import { Capability, COMMAND_NAMES, Command, Header } from "./constants.js";
import { looksLikeSql } from "./sql.js";

/** Payload length of the packet header at `at` (3 bytes little endian). */
export const packetLength = (b: Uint8Array, at: number): number =>
  (b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16);

const isPrintable = (c: number | undefined) => c !== undefined && c >= 0x20 && c < 0x7f;

/** Whether a client command packet of `len` payload bytes has a plausible size for its command. */
export function plausibleCommand(command: number, len: number): boolean {
  if (COMMAND_NAMES[command] === undefined || len < 1) return false;
  switch (command) {
    case Command.Quit:
    case Command.Ping:
    case Command.Statistics:
    case Command.ProcessInfo:
    case Command.Debug:
    case Command.ResetConnection:
      return len === 1;
    case Command.StmtClose:
    case Command.StmtReset:
    case Command.ProcessKill:
      return len === 5;
    case Command.StmtFetch:
      return len === 9;
    case Command.StmtExecute:
      return len >= 10;
    case Command.SetOption:
      return len === 3;
    case Command.InitDb:
    case Command.CreateDb:
    case Command.DropDb:
      return len >= 2 && len <= 257;
    case Command.Query:
    case Command.StmtPrepare:
      return len >= 2;
    default:
      return true;
  }
}

/** Server greeting: protocol version 10, then a NUL-terminated printable server version. */
function looksLikeGreeting(b: Uint8Array, len: number): boolean {
  if (len < 30 || len > 1024) return false;
  const end = Math.min(b.length, 5 + 64);
  let i = 5;
  while (i < end && isPrintable(b[i])) i++;
  if (i >= b.length) return i - 5 >= 3; // cut by the capture
  return b[i] === 0 && i - 5 >= 3;
}

/** HandshakeResponse41: CLIENT_PROTOCOL_41 set and 19 zero filler bytes (MariaDB uses the last 4). */
export function looksLikeHandshakeResponse(p: Uint8Array, from: number, len: number): boolean {
  if (len < 32 || p.length - from < 32) return false;
  const caps = (p[from] as number) | ((p[from + 1] as number) << 8);
  if ((caps & Capability.Protocol41) === 0) return false;
  for (let i = from + 9; i < from + 28; i++) if (p[i] !== 0) return false;
  return true;
}

/**
 * Server side: the greeting (Sure). Client side: a command with sequence id 0 (Maybe; Sure when a
 * COM_QUERY or COM_STMT_PREPARE carries SQL), or a handshake response (Maybe).
 */
export function detectMysql(b: Uint8Array, fromClient: boolean | undefined): Detection {
  if (b.length < 5) return NOT_DETECTED;
  const len = packetLength(b, 0);
  const seq = b[3];
  const first = b[4] as number;
  if (seq === 0 && first === Header.HandshakeV10 && fromClient !== true && looksLikeGreeting(b, len)) {
    return { confidence: Confidence.Sure, fromClient: false };
  }
  if (fromClient === false) return NOT_DETECTED;
  if (seq === 0 && plausibleCommand(first, len)) {
    if (first === Command.InitDb && !isPrintable(b[5])) return NOT_DETECTED;
    if ((first === Command.Query || first === Command.StmtPrepare) && b.length > 5) {
      const c = b[5] as number;
      if (c < 0x09 || (c > 0x0d && c < 0x20) || c === 0x7f) return NOT_DETECTED; // SQL is text
      if (looksLikeSql(b, 5, Math.min(b.length, 4 + len))) return { confidence: Confidence.Sure, fromClient: true };
      if (first === Command.StmtPrepare) return NOT_DETECTED;
    }
    return { confidence: Confidence.Maybe, fromClient: true };
  }
  if (seq === 1 && looksLikeHandshakeResponse(b, 4, len)) return { confidence: Confidence.Maybe, fromClient: true };
  return NOT_DETECTED;
}
