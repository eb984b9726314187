import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import { lookupCommand, MAX_COMMAND_LENGTH } from "./commands.js";

/** Whether bytes start a message: yes, no, or too few bytes to tell. */
export const Verdict = { No: 0, Yes: 1, More: 2 } as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

const CR = 0x0d;
const LF = 0x0a;
/** Cursor results below zero. */
const NO = -1;
const MORE = -2;

const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;
const isAlpha = (c: number | undefined) => c !== undefined && ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a));

/** Offset past "<digits>\r\n" at `at` ("-1" too when allowed), NO, or MORE when b ends first. */
function digitsLine(b: Uint8Array, at: number, allowMinusOne: boolean, maxDigits = 11): number {
  let i = at;
  if (b[i] === 0x2d && allowMinusOne) {
    if (i + 1 >= b.length) return MORE;
    if (b[i + 1] !== 0x31) return NO;
    i += 2;
    return lineEnd(b, i);
  }
  const start = i;
  while (i < b.length && isDigit(b[i]) && i - start < maxDigits) i++;
  if (i >= b.length) return MORE;
  if (i === start) return NO;
  return lineEnd(b, i);
}

function lineEnd(b: Uint8Array, i: number): number {
  if (i >= b.length) return MORE;
  if (b[i] !== CR) return NO;
  if (i + 1 >= b.length) return MORE;
  return b[i + 1] === LF ? i + 2 : NO;
}

const verdictOf = (at: number): Verdict => (at === MORE ? Verdict.More : at === NO ? Verdict.No : Verdict.Yes);

/** "*<n>\r\n$<len>\r\n<letter>": a command sent as an array of bulk strings. */
export function multibulkVerdict(b: Uint8Array): Verdict {
  if (b.length === 0) return Verdict.More;
  if (b[0] !== 0x2a) return Verdict.No;
  if (b[1] === 0x30) return Verdict.No;
  const at = digitsLine(b, 1, false);
  if (at < 0) return verdictOf(at);
  if (at >= b.length) return Verdict.More;
  if (b[at] !== 0x24) return Verdict.No;
  const body = digitsLine(b, at + 1, false);
  if (body < 0) return verdictOf(body);
  if (body >= b.length) return Verdict.More;
  return isAlpha(b[body]) ? Verdict.Yes : Verdict.No;
}

/** A known command name then a space or line end ("PING\r\n"), and not an HTTP request line. */
export function inlineVerdict(b: Uint8Array): Verdict {
  const limit = Math.min(b.length, MAX_COMMAND_LENGTH + 1);
  for (let i = 0; i < limit; i++) {
    const c = b[i];
    if (c === 0x20 || c === CR || c === LF) {
      return i > 0 && lookupCommand(b, 0, i) !== undefined && !isHttpLine(b, i) ? Verdict.Yes : Verdict.No;
    }
    if (!isAlpha(c) && c !== 0x5f && c !== 0x2d) return Verdict.No;
  }
  return b.length <= MAX_COMMAND_LENGTH ? Verdict.More : Verdict.No;
}

const HTTP_VERSION = Uint8Array.from(" HTTP/1.", (c) => c.charCodeAt(0));

/** The first line (from `from`) carries " HTTP/1.": "GET / HTTP/1.1" is not an inline GET. */
function isHttpLine(b: Uint8Array, from: number): boolean {
  const eol = b.indexOf(LF, from);
  const end = (eol < 0 ? Math.min(b.length, 8192) : eol) - HTTP_VERSION.length;
  outer: for (let i = from; i <= end; i++) {
    for (let j = 0; j < HTTP_VERSION.length; j++) if (b[i + j] !== HTTP_VERSION[j]) continue outer;
    return true;
  }
  return false;
}

export function requestVerdict(b: Uint8Array): Verdict {
  const v = multibulkVerdict(b);
  return v === Verdict.No ? inlineVerdict(b) : v;
}

/** The first line of a RESP2/RESP3 reply: type byte, a well-formed header, CRLF. */
export function replyVerdict(b: Uint8Array): Verdict {
  if (b.length < 2) return b.length === 0 || isReplyType(b[0]) ? Verdict.More : Verdict.No;
  switch (b[0]) {
    case 0x2b: // + simple string: text up to CRLF
      for (let i = 1; i < b.length; i++) {
        const c = b[i] as number;
        if (c === CR) return i + 1 === b.length ? Verdict.More : b[i + 1] === LF ? Verdict.Yes : Verdict.No;
        if (c < 0x20 && c !== 0x09) return Verdict.No;
      }
      return Verdict.Yes;
    case 0x2d: {
      // - error: an upper-case code ("ERR", "WRONGTYPE") then a space or CRLF
      let i = 1;
      for (; i < b.length && b[i] !== 0x20 && b[i] !== CR; i++) {
        const c = b[i] as number;
        if (!(c >= 0x41 && c <= 0x5a) && c !== 0x5f && c !== 0x2d) return Verdict.No;
        if (i > 32) return Verdict.No;
      }
      if (i >= b.length) return Verdict.More;
      return i > 1 ? Verdict.Yes : Verdict.No;
    }
    case 0x3a: // : integer
      return verdictOf(digitsLine(b, b[1] === 0x2d ? 2 : 1, false, 20));
    case 0x28: // ( big number
      return verdictOf(digitsLine(b, b[1] === 0x2d ? 2 : 1, false, 4096));
    case 0x24: // $ bulk string
    case 0x2a: // * array
      return verdictOf(digitsLine(b, 1, true));
    case 0x25: // % map
    case 0x7e: // ~ set
    case 0x3e: // > push
    case 0x7c: // | attribute
    case 0x3d: // = verbatim string
    case 0x21: // ! blob error
      return verdictOf(digitsLine(b, 1, false));
    case 0x5f: // _ null
      return verdictOf(lineEnd(b, 1));
    case 0x23: // # boolean
      return b[1] === 0x74 || b[1] === 0x66 ? verdictOf(lineEnd(b, 2)) : Verdict.No;
    case 0x2c: {
      // , double: a short token
      let i = 1;
      while (i < b.length && i < 40 && b[i] !== CR && b[i] !== LF) i++;
      if (i >= 40) return Verdict.No;
      return i === 1 ? Verdict.No : verdictOf(lineEnd(b, i));
    }
    default:
      return Verdict.No;
  }
}

function isReplyType(c: number | undefined): boolean {
  switch (c) {
    case 0x2b:
    case 0x2d:
    case 0x3a:
    case 0x28:
    case 0x24:
    case 0x2a:
    case 0x25:
    case 0x7e:
    case 0x3e:
    case 0x7c:
    case 0x3d:
    case 0x21:
    case 0x5f:
    case 0x23:
    case 0x2c:
      return true;
    default:
      return false;
  }
}

/**
 * Requests ("*2\r\n$3\r\nGET\r\n...") are Sure; inline commands and replies are only Maybe
 * (text protocols share command words, and "+OK" says little).
 */
export function detectRedis(b: Uint8Array, fromClient: boolean | undefined): Detection {
  if (fromClient !== false) {
    if (multibulkVerdict(b) === Verdict.Yes) return { confidence: Confidence.Sure, fromClient: true };
    if (inlineVerdict(b) === Verdict.Yes) return { confidence: Confidence.Maybe, fromClient: true };
  }
  if (fromClient !== true && replyVerdict(b) === Verdict.Yes)
    return { confidence: Confidence.Maybe, fromClient: false };
  return NOT_DETECTED;
}
