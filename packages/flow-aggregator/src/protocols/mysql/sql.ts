// SQL text -> verb, normalised text (literals as `?`) and a low-cardinality endpoint.

/** Longest resource kept, in characters. */
export const MAX_SQL_CHARS = 1024;

export interface SqlSummary {
  /** First keyword, upper case ("SELECT"); "QUERY" when there is none. */
  verb: string;
  /** Comments dropped, whitespace collapsed, literals as `?` when redacting; ≤ MAX_SQL_CHARS. */
  text: string;
  /** Verb and first table ("SELECT users") when easy to tell, else the verb. */
  endpoint: string;
  /** traceparent from a sqlcommenter comment (traceparent='00-...'). */
  traceparent?: string;
}

enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  DoubleQuote = 0x22,
  Hash = 0x23,
  Dollar = 0x24,
  Quote = 0x27,
  LeftParen = 0x28,
  Star = 0x2a,
  Plus = 0x2b,
  Minus = 0x2d,
  Dot = 0x2e,
  Slash = 0x2f,
  Zero = 0x30,
  Nine = 0x39,
  Bang = 0x21,
  Backslash = 0x5c,
  Underscore = 0x5f,
  Backtick = 0x60,
}

const isSpace = (c: number) => c === Ch.Space || (c >= Ch.Tab && c <= Ch.Cr);
const isDigit = (c: number) => c >= Ch.Zero && c <= Ch.Nine;
const isLetter = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isWordChar = (c: number) => isLetter(c) || isDigit(c) || c === Ch.Underscore || c === Ch.Dollar || c >= 0x80;
const isHexDigit = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** End (exclusive) of a quoted run starting at `from` (the opening quote); backslash and doubled quotes escape. */
function quotedEnd(s: string, from: number, quote: number): number {
  const n = s.length;
  for (let j = from + 1; j < n; j++) {
    const c = s.charCodeAt(j);
    if (c === Ch.Backslash && quote !== Ch.Backtick) j++;
    else if (c === quote) {
      if (s.charCodeAt(j + 1) === quote) j++;
      else return j + 1;
    }
  }
  return n;
}

/** End (exclusive) of a numeric literal at `from`, or -1 when the digits start an identifier (`1st`). */
function numberEnd(s: string, from: number): number {
  const n = s.length;
  let j = from;
  const c1 = s.charCodeAt(j + 1) | 0x20;
  if (s.charCodeAt(j) === Ch.Zero && (c1 === 0x78 || c1 === 0x62) && isHexDigit(s.charCodeAt(j + 2))) {
    j += 2; // 0x1F, 0b101
    while (j < n && isHexDigit(s.charCodeAt(j))) j++;
  } else {
    while (j < n && isDigit(s.charCodeAt(j))) j++;
    if (s.charCodeAt(j) === Ch.Dot) {
      j++;
      while (j < n && isDigit(s.charCodeAt(j))) j++;
    }
    const e = s.charCodeAt(j) | 0x20;
    if (e === 0x65) {
      const sign = s.charCodeAt(j + 1);
      const k = sign === Ch.Plus || sign === Ch.Minus ? j + 2 : j + 1;
      if (isDigit(s.charCodeAt(k))) {
        j = k;
        while (j < n && isDigit(s.charCodeAt(j))) j++;
      }
    }
  }
  return j < n && isWordChar(s.charCodeAt(j)) ? -1 : j;
}

/** A traceparent value inside a comment body (sqlcommenter: traceparent='00-…-…-01'). */
function traceparentIn(comment: string): string | undefined {
  const at = comment.indexOf("traceparent=");
  if (at < 0) return undefined;
  let from = at + 12;
  const q = comment.charCodeAt(from);
  if (q === Ch.Quote || q === Ch.DoubleQuote) from++;
  const value = comment.slice(from, from + 55);
  return value.length === 55 ? value : undefined;
}

/**
 * Normalises SQL: comments dropped (MySQL `/*! … *\/` bodies kept), whitespace collapsed, string and
 * numeric literals replaced by `?` when `redact`. A text cut short (capture limit) is fine: an
 * unterminated literal becomes `?`.
 */
export function summarizeSql(sql: string, redact: boolean): SqlSummary {
  const n = sql.length;
  let out = "";
  let space = false;
  let execComments = 0;
  let traceparent: string | undefined;
  let i = 0;
  while (i < n && out.length < MAX_SQL_CHARS) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      space = out.length > 0;
      i++;
      continue;
    }
    const next = sql.charCodeAt(i + 1);
    // comments: -- (followed by a space or the end), #, /* */
    if ((c === Ch.Minus && next === Ch.Minus && (i + 2 >= n || isSpace(sql.charCodeAt(i + 2)))) || c === Ch.Hash) {
      const eol = sql.indexOf("\n", i);
      i = eol < 0 ? n : eol + 1;
      space = out.length > 0;
      continue;
    }
    if (c === Ch.Slash && next === Ch.Star) {
      if (sql.charCodeAt(i + 2) === Ch.Bang) {
        // executable comment: its body is SQL
        i += 3;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        execComments++;
      } else {
        const end = sql.indexOf("*/", i + 2);
        const stop = end < 0 ? n : end;
        traceparent ??= traceparentIn(sql.slice(i + 2, Math.min(stop, i + 512)));
        i = end < 0 ? n : end + 2;
      }
      space = out.length > 0;
      continue;
    }
    if (c === Ch.Star && next === Ch.Slash && execComments > 0) {
      execComments--;
      i += 2;
      space = out.length > 0;
      continue;
    }
    if (space) {
      out += " ";
      space = false;
    }
    if (c === Ch.Quote || c === Ch.DoubleQuote) {
      const end = quotedEnd(sql, i, c);
      out += redact ? "?" : sql.slice(i, end);
      i = end;
    } else if (c === Ch.Backtick) {
      const end = quotedEnd(sql, i, c);
      out += sql.slice(i, end);
      i = end;
    } else if (isDigit(c) || (c === Ch.Dot && isDigit(next) && !isWordChar(out.charCodeAt(out.length - 1)))) {
      const end = numberEnd(sql, i);
      if (end >= 0) {
        out += redact ? "?" : sql.slice(i, end);
        i = end;
      } else {
        let j = i;
        while (j < n && isWordChar(sql.charCodeAt(j))) j++;
        out += sql.slice(i, j);
        i = j;
      }
    } else if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      // introducers: X'ff', B'01', N'text', _utf8mb4'text'
      const w0 = c | 0x20;
      const introducer = j - i === 1 ? w0 === 0x78 || w0 === 0x62 || w0 === 0x6e : c === Ch.Underscore;
      if (introducer && sql.charCodeAt(j) === Ch.Quote) {
        const end = quotedEnd(sql, j, Ch.Quote);
        out += redact ? "?" : sql.slice(i, end);
        i = end;
      } else {
        out += sql.slice(i, j);
        i = j;
      }
    } else {
      out += sql[i];
      i++;
    }
  }
  if (out.length > MAX_SQL_CHARS) out = out.slice(0, MAX_SQL_CHARS);
  const verb = verbOf(out);
  const summary: SqlSummary = { verb, text: out, endpoint: endpointOf(verb, out) };
  if (traceparent !== undefined) summary.traceparent = traceparent;
  return summary;
}

const VERB = /^[\s(]*([A-Za-z]{1,32})(?![\w$])/;

/** First keyword of normalised SQL, upper case; "QUERY" when it starts otherwise. */
function verbOf(text: string): string {
  const m = VERB.exec(text);
  return m ? (m[1] as string).toUpperCase() : "QUERY";
}

const NAME = "(`(?:[^`]|``){1,64}`|[\\w$\\u0080-\\uffff]{1,64})";
const TABLE = `${NAME}(?:\\.${NAME})?`;
const TABLE_AFTER: Record<string, RegExp> = {
  SELECT: new RegExp(`\\bFROM ${TABLE}`, "i"),
  DELETE: new RegExp(`\\bFROM ${TABLE}`, "i"),
  INSERT: new RegExp(`^[\\s(]*INSERT (?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE|INTO) )*${TABLE}`, "i"),
  REPLACE: new RegExp(`^[\\s(]*REPLACE (?:(?:LOW_PRIORITY|DELAYED|INTO) )*${TABLE}`, "i"),
  UPDATE: new RegExp(`^[\\s(]*UPDATE (?:(?:LOW_PRIORITY|IGNORE) )*${TABLE}`, "i"),
  CREATE: new RegExp(`^[\\s(]*CREATE (?:(?:OR REPLACE|TEMPORARY) )*TABLE (?:IF NOT EXISTS )?${TABLE}`, "i"),
  DROP: new RegExp(`^[\\s(]*DROP (?:TEMPORARY )?TABLE (?:IF EXISTS )?${TABLE}`, "i"),
  ALTER: new RegExp(`^[\\s(]*ALTER (?:(?:ONLINE|IGNORE) )*TABLE ${TABLE}`, "i"),
  TRUNCATE: new RegExp(`^[\\s(]*TRUNCATE (?:TABLE )?${TABLE}`, "i"),
};

const unquote = (name: string) => (name.charCodeAt(0) === Ch.Backtick ? name.slice(1, -1).replaceAll("``", "`") : name);

/** "VERB table" when the statement names its first table plainly, else "VERB". */
function endpointOf(verb: string, text: string): string {
  const re = TABLE_AFTER[verb];
  const m = re?.exec(text);
  if (!m) return verb;
  const first = unquote(m[1] as string);
  return m[2] === undefined ? `${verb} ${first}` : `${verb} ${first}.${unquote(m[2])}`;
}

/** Database named by `USE db` (normalised text), or undefined. */
export function useTarget(text: string): string | undefined {
  const m = /^USE (`(?:[^`]|``){1,64}`|[\w$\u0080-\uffff]{1,64})\s*;?$/i.exec(text);
  return m ? unquote(m[1] as string) : undefined;
}

const SQL_START = new Set([
  "ALTER",
  "ANALYZE",
  "BEGIN",
  "BINLOG",
  "CALL",
  "CHANGE",
  "CHECK",
  "CHECKSUM",
  "COMMIT",
  "CREATE",
  "DEALLOCATE",
  "DELETE",
  "DESC",
  "DESCRIBE",
  "DO",
  "DROP",
  "EXECUTE",
  "EXPLAIN",
  "FLUSH",
  "GRANT",
  "HANDLER",
  "HELP",
  "INSERT",
  "INSTALL",
  "KILL",
  "LOAD",
  "LOCK",
  "OPTIMIZE",
  "PREPARE",
  "PURGE",
  "RELEASE",
  "RENAME",
  "REPAIR",
  "REPLACE",
  "RESET",
  "REVOKE",
  "ROLLBACK",
  "SAVEPOINT",
  "SELECT",
  "SET",
  "SHOW",
  "SIGNAL",
  "START",
  "TABLE",
  "TRUNCATE",
  "UNINSTALL",
  "UNLOCK",
  "UPDATE",
  "USE",
  "VALUES",
  "WITH",
  "XA",
]);

/** Whether bytes [from, end) start with an SQL statement keyword (after spaces, `(` and comments). */
export function looksLikeSql(b: Uint8Array, from: number, end: number): boolean {
  let i = from;
  const stop = Math.min(end, from + 256);
  for (;;) {
    while (i < stop && (isSpace(b[i] as number) || b[i] === Ch.LeftParen)) i++;
    if (b[i] === Ch.Slash && b[i + 1] === Ch.Star && b[i + 2] !== Ch.Bang) {
      let j = i + 2;
      while (j + 1 < stop && !(b[j] === Ch.Star && b[j + 1] === Ch.Slash)) j++;
      if (j + 1 >= stop) return false;
      i = j + 2;
      continue;
    }
    if (b[i] === Ch.Slash && b[i + 1] === Ch.Star && b[i + 2] === Ch.Bang) {
      i += 3;
      while (i < stop && isDigit(b[i] as number)) i++;
      continue;
    }
    break;
  }
  let word = "";
  while (i < stop && isLetter(b[i] as number) && word.length < 12)
    word += String.fromCharCode((b[i++] as number) & 0xdf);
  if (word.length === 0 || !SQL_START.has(word)) return false;
  return i >= end || !isWordChar(b[i] as number);
}
