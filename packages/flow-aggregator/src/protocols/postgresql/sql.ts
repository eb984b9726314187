// SQL text -> verb, normalised resource (literals -> ?) and a low-cardinality endpoint.

/** What a record needs from one SQL statement. */
export interface SqlInfo {
  /** First keyword, upper case (SELECT, INSERT, BEGIN); undefined for empty text. */
  readonly requestType: string | undefined;
  /** Normalised text: whitespace collapsed, comments dropped, literals -> ? when redacting. */
  readonly resource: string;
  /** Verb plus the first table when easy ("SELECT t"), else the verb. */
  readonly endpoint: string | undefined;
}

export const MAX_RESOURCE = 1024;

export function summarizeSql(sql: string, redact: boolean): SqlInfo {
  const resource = normalizeSql(sql, redact);
  const requestType = verbOf(resource);
  if (requestType === undefined) return { requestType, resource, endpoint: undefined };
  const table = firstTable(resource, requestType);
  return { requestType, resource, endpoint: table === undefined ? requestType : `${requestType} ${table}` };
}

enum Ch {
  Tab = 0x09,
  Lf = 0x0a,
  Cr = 0x0d,
  Space = 0x20,
  DoubleQuote = 0x22,
  Dollar = 0x24,
  Ampersand = 0x26,
  Quote = 0x27,
  OpenParen = 0x28,
  CloseParen = 0x29,
  Plus = 0x2b,
  Minus = 0x2d,
  Dot = 0x2e,
  Slash = 0x2f,
  Star = 0x2a,
  Zero = 0x30,
  Nine = 0x39,
  Semicolon = 0x3b,
  Backslash = 0x5c,
  Underscore = 0x5f,
}

const isSpace = (c: number) => c === Ch.Space || (c >= Ch.Tab && c <= Ch.Cr);
const isDigit = (c: number) => c >= Ch.Zero && c <= Ch.Nine;
const isLetter = (c: number) => (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a;
const isIdentStart = (c: number) => isLetter(c) || c === Ch.Underscore || c >= 0x80;
const isIdentChar = (c: number) => isIdentStart(c) || isDigit(c) || c === Ch.Dollar;
const isHexDigit = (c: number) => isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
/** Characters that start something other than plain punctuation. */
const isSpecial = (c: number) =>
  isSpace(c) ||
  isIdentStart(c) ||
  isDigit(c) ||
  c === Ch.Quote ||
  c === Ch.DoubleQuote ||
  c === Ch.Dollar ||
  c === Ch.Minus ||
  c === Ch.Slash ||
  c === Ch.Dot;

/**
 * Collapses whitespace and drops comments; with `redact`, string, dollar-quoted and numeric
 * literals become `?` ($1 parameters stay). Output capped at MAX_RESOURCE characters.
 */
export function normalizeSql(sql: string, redact: boolean): string {
  const n = sql.length;
  let out = "";
  let space = false;
  let i = 0;
  const put = (s: string) => {
    if (space && out.length > 0) out += " ";
    space = false;
    out += s;
  };
  const literal = (start: number, end: number) => put(redact ? "?" : sql.slice(start, end));
  while (i < n && out.length < MAX_RESOURCE) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      space = true;
      i++;
    } else if (c === Ch.Minus && sql.charCodeAt(i + 1) === Ch.Minus) {
      const eol = sql.indexOf("\n", i);
      i = eol < 0 ? n : eol + 1;
      space = true;
    } else if (c === Ch.Slash && sql.charCodeAt(i + 1) === Ch.Star) {
      i = endOfComment(sql, i);
      space = true;
    } else if (c === Ch.Quote) {
      const end = endOfString(sql, i, false);
      literal(i, end);
      i = end;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql.charCodeAt(j))) j++;
      const next = sql.charCodeAt(j);
      const lower = c | 0x20;
      if (j === i + 1 && next === Ch.Quote && (lower === 0x65 || lower === 0x62 || lower === 0x78 || lower === 0x6e)) {
        // E'..', B'..', X'..', N'..'
        const end = endOfString(sql, j, lower === 0x65);
        literal(i, end);
        i = end;
      } else if (j === i + 1 && lower === 0x75 && next === Ch.Ampersand && sql.charCodeAt(j + 1) === Ch.Quote) {
        // U&'..'
        const end = endOfString(sql, j + 1, false);
        literal(i, end);
        i = end;
      } else {
        put(sql.slice(i, j));
        i = j;
      }
    } else if (c === Ch.DoubleQuote) {
      const end = endOfQuotedIdent(sql, i);
      put(sql.slice(i, end));
      i = end;
    } else if (c === Ch.Dollar) {
      i = dollar(sql, i, put, literal);
    } else if (isDigit(c) || (c === Ch.Dot && isDigit(sql.charCodeAt(i + 1)))) {
      const end = endOfNumber(sql, i);
      literal(i, end);
      i = end;
    } else {
      let j = i + 1;
      while (j < n && !isSpecial(sql.charCodeAt(j))) j++;
      put(sql.slice(i, j));
      i = j;
    }
  }
  if (out.length > MAX_RESOURCE) out = out.slice(0, MAX_RESOURCE);
  let end = out.length;
  while (end > 0 && (out.charCodeAt(end - 1) === Ch.Semicolon || out.charCodeAt(end - 1) === Ch.Space)) end--;
  return end === out.length ? out : out.slice(0, end);
}

/** `$1` parameters, `$tag$...$tag$` strings, or a lone `$`. Returns the index after it. */
function dollar(sql: string, i: number, put: (s: string) => void, literal: (a: number, b: number) => void): number {
  const n = sql.length;
  let j = i + 1;
  if (isDigit(sql.charCodeAt(j))) {
    while (j < n && isDigit(sql.charCodeAt(j))) j++;
    put(sql.slice(i, j));
    return j;
  }
  while (j < n && (isIdentStart(sql.charCodeAt(j)) || (j > i + 1 && isDigit(sql.charCodeAt(j))))) j++;
  if (sql.charCodeAt(j) !== Ch.Dollar) {
    put("$");
    return i + 1;
  }
  const tag = sql.slice(i, j + 1);
  const close = sql.indexOf(tag, j + 1);
  const end = close < 0 ? n : close + tag.length;
  literal(i, end);
  return end;
}

/** Index after a '...' literal starting at `i` ('' escapes; backslash escapes in E'..'). */
function endOfString(sql: string, i: number, backslash: boolean): number {
  const n = sql.length;
  let j = i + 1;
  while (j < n) {
    const c = sql.charCodeAt(j);
    if (backslash && c === Ch.Backslash) j += 2;
    else if (c === Ch.Quote) {
      if (sql.charCodeAt(j + 1) !== Ch.Quote) return j + 1;
      j += 2;
    } else j++;
  }
  return n;
}

function endOfQuotedIdent(sql: string, i: number): number {
  let j = i + 1;
  while (j < sql.length) {
    if (sql.charCodeAt(j) === Ch.DoubleQuote) {
      if (sql.charCodeAt(j + 1) !== Ch.DoubleQuote) return j + 1;
      j += 2;
    } else j++;
  }
  return sql.length;
}

/** Index after a (nested) block comment starting at `i`. */
function endOfComment(sql: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (c === Ch.Slash && sql.charCodeAt(j + 1) === Ch.Star) {
      depth++;
      j += 2;
    } else if (c === Ch.Star && sql.charCodeAt(j + 1) === Ch.Slash) {
      j += 2;
      if (--depth === 0) return j;
    } else j++;
  }
  return sql.length;
}

/** Index after a numeric literal: 42, 4.2, .5, 1e-3, 1_000, 0x1F. */
function endOfNumber(sql: string, i: number): number {
  const n = sql.length;
  let j = i;
  const radix = sql.charCodeAt(i + 1) | 0x20;
  if (sql.charCodeAt(i) === Ch.Zero && (radix === 0x78 || radix === 0x6f || radix === 0x62)) {
    j = i + 2;
    while (j < n && (isHexDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === Ch.Underscore)) j++;
    return j;
  }
  while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === Ch.Underscore)) j++;
  if (sql.charCodeAt(j) === Ch.Dot && sql.charCodeAt(j + 1) !== Ch.Dot) {
    j++;
    while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === Ch.Underscore)) j++;
  }
  if ((sql.charCodeAt(j) | 0x20) === 0x65) {
    const s = sql.charCodeAt(j + 1);
    const k = s === Ch.Plus || s === Ch.Minus ? j + 2 : j + 1;
    if (isDigit(sql.charCodeAt(k))) {
      j = k;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
    }
  }
  return j;
}

/** First keyword of normalised text, upper case (leading parentheses skipped). */
function verbOf(norm: string): string | undefined {
  let i = 0;
  while (i < norm.length && (norm.charCodeAt(i) === Ch.OpenParen || norm.charCodeAt(i) === Ch.Space)) i++;
  let j = i;
  while (j < norm.length && isLetter(norm.charCodeAt(j))) j++;
  return j > i ? norm.slice(i, j).toUpperCase() : undefined;
}

/** Splits normalised text into words, quoted identifiers and single punctuation characters. */
class Tokens {
  private at = 0;
  depth = 0;

  constructor(private readonly s: string) {}

  /** The next token (words lower-cased unless quoted), or undefined at the end. */
  next(): string | undefined {
    const s = this.s;
    while (this.at < s.length && s.charCodeAt(this.at) === Ch.Space) this.at++;
    if (this.at >= s.length) return undefined;
    const start = this.at;
    const c = s.charCodeAt(start);
    if (c === Ch.DoubleQuote) {
      this.at = endOfQuotedIdent(s, start);
      return s.slice(start, this.at);
    }
    if (isIdentChar(c)) {
      while (this.at < s.length && isIdentChar(s.charCodeAt(this.at))) this.at++;
      return s.slice(start, this.at).toLowerCase();
    }
    this.at++;
    if (c === Ch.OpenParen) this.depth++;
    else if (c === Ch.CloseParen) this.depth--;
    return s[start];
  }

  /** A (possibly schema-qualified) table name at the cursor, or undefined. */
  name(): string | undefined {
    let t = this.next();
    while (t === "only" || t === "if" || t === "not" || t === "exists") t = this.next();
    if (t === undefined || !isNameToken(t)) return undefined;
    let name = t;
    const s = this.s;
    while (s.charCodeAt(this.at) === Ch.Dot) {
      this.at++;
      const part = this.next();
      if (part === undefined || !isNameToken(part)) break;
      name += `.${part}`;
    }
    return name;
  }

  /** Advances past the next `word` at parenthesis depth 0; false if there is none. */
  skipTo(word: string, limit = 256): boolean {
    for (let k = 0; k < limit; k++) {
      const t = this.next();
      if (t === undefined) return false;
      if (t === word && this.depth === 0) return true;
    }
    return false;
  }
}

const isNameToken = (t: string) => {
  const c = t.charCodeAt(0);
  return c === Ch.DoubleQuote || isIdentStart(c);
};

/** The first table a statement names, when it is easy to tell. */
function firstTable(norm: string, verb: string): string | undefined {
  const t = new Tokens(norm);
  t.next(); // the verb
  switch (verb) {
    case "SELECT":
      return t.skipTo("from") ? t.name() : undefined;
    case "INSERT":
    case "MERGE":
      return t.skipTo("into", 4) ? t.name() : undefined;
    case "DELETE":
      return t.skipTo("from", 4) ? t.name() : undefined;
    case "UPDATE":
    case "COPY":
      return t.name();
    case "TRUNCATE": {
      const first = t.name();
      return first === "table" ? t.name() : first;
    }
    case "CREATE":
    case "DROP":
    case "ALTER":
      return t.skipTo("table", 4) ? t.name() : undefined;
    default:
      return undefined;
  }
}
