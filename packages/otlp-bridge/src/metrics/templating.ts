// Endpoint templates with bounded cardinality: /users/123/orders/9f1c2e4b... -> /users/{id}/orders/{id},
// and at most N distinct templates per service (then "_other").

/** Placeholder for an id-like path segment. */
export const ID_PLACEHOLDER = "{id}";
/** Endpoint of every request past a service's template cap (the overflow bucket). */
export const OVERFLOW_ENDPOINT = "_other";
/** Placeholder for segments cut off past `maxSegments` or `maxLength`. */
export const REST_PLACEHOLDER = "{...}";

export interface EndpointTemplaterOptions {
  /** Distinct templates kept per service; past it a new template becomes "_other" (counted). Default 1000. */
  maxTemplatesPerService?: number;
  /** Distinct services tracked; past it, new services share one overflow set. Default 256. */
  maxServices?: number;
  /** Distinct templates over all services; past it, new templates become "_other". Default 20000. */
  maxTotalTemplates?: number;
  /** Path segments kept; the rest becomes "{...}". Default 16. */
  maxSegments?: number;
  /** Longest template in characters (cut at a segment boundary, then "{...}"). Default 256. */
  maxLength?: number;
}

export interface EndpointTemplaterStats {
  /** Services with a template set (at most maxServices, plus the shared overflow set). */
  services: number;
  /** Distinct templates held over all services (at most maxTotalTemplates). */
  templates: number;
  /** Endpoints that went to "_other" because a cap was reached. */
  overflowed: number;
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]+$/i;
/** Digits with separators: dates, versions, decimals, ranges, phone numbers. */
const NUMERIC_ISH = /^[0-9][0-9\-_.:,+~]*$/;
/** A token from an alphabet ids are made of (base64url, base32, slugs with ids). */
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Longest segment kept as is. */
const MAX_SEGMENT = 64;

/**
 * Whether a path segment looks like an identifier rather than a route word:
 * - all digits (`123`), or digits with separators (`2024-01-31`, `1.2.3`)
 * - a UUID, with or without dashes
 * - hex of 8+ characters with a digit (hashes, ObjectIds, `9f1c2e4b`), or any hex of 16+
 * - 5+ digits anywhere (`order12345`, `v20231201`)
 * - a 16+ character token with 2+ digits, or a 20+ character mixed-case token with a digit
 *   (base64url / ULID / API tokens)
 * - an e-mail address, or anything longer than 64 characters
 * Words like `v1`, `api`, `x86_64`, `oauth2` or `my-post-title` stay.
 */
export function isIdSegment(segment: string): boolean {
  const n = segment.length;
  if (n === 0) return false;
  if (n > MAX_SEGMENT) return true;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = segment.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
  }
  if (digits === n) return true;
  if (digits > 0 && NUMERIC_ISH.test(segment)) return true;
  if (n >= 32 && UUID.test(segment)) return true;
  if (n >= 8 && HEX.test(segment) && (digits > 0 || n >= 16)) return true;
  if (digits >= 5) return true;
  if (n >= 16 && digits >= 2 && TOKEN.test(segment)) return true;
  if (n >= 20 && digits >= 1 && TOKEN.test(segment) && /[a-z]/.test(segment) && /[A-Z]/.test(segment)) return true;
  return segment.includes("@");
}

/**
 * A path -> its template: query, fragment and matrix parameters dropped, empty segments dropped
 * (so `//a/b/` -> `/a/b`), id-like segments -> `{id}`, at most `maxSegments` segments and
 * `maxLength` characters (the rest -> `{...}`). A string that is not a path (`*`, a method
 * name) is templated as one segment.
 */
export function templatePath(path: string, maxSegments = 16, maxLength = 256): string {
  let p = path;
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  if (p.startsWith("http://") || p.startsWith("https://")) {
    const slash = p.indexOf("/", p.indexOf("//") + 2);
    p = slash < 0 ? "/" : p.slice(slash);
  }
  const absolute = p.startsWith("/");
  let out = "";
  let kept = 0;
  let start = absolute ? 1 : 0;
  while (start <= p.length) {
    let end = p.indexOf("/", start);
    if (end < 0) end = p.length;
    let seg = p.slice(start, end);
    start = end + 1;
    const semi = seg.indexOf(";");
    if (semi >= 0) seg = seg.slice(0, semi);
    if (seg === "") continue;
    if (kept === maxSegments) {
      out += `/${REST_PLACEHOLDER}`;
      break;
    }
    const part = isIdSegment(seg) ? ID_PLACEHOLDER : seg;
    if (out.length + part.length + 1 > maxLength - REST_PLACEHOLDER.length - 1) {
      out += `/${REST_PLACEHOLDER}`;
      break;
    }
    out += kept === 0 && !absolute ? part : `/${part}`;
    kept++;
  }
  if (out === "") return absolute || p === "" ? "/" : p;
  return out;
}

/** Templates a TemplateIndex holds before it starts over. */
const INDEX_TEMPLATES = 16_384;
/** Longest endpoint the index scans (longer ones go through templatePath): bounds an entry's size. */
const INDEX_MAX_LENGTH = 256;
/** Hash seeds of an {id} segment and of a segment separator in the index. */
const ID_MARK = 0x7b69647d;
const SEPARATOR = 0x2f;

/** A template the index knows: its segments (null for {id}) to check a scanned endpoint against. */
interface IndexedTemplate {
  template: string;
  absolute: boolean;
  parts: (string | null)[];
  /** The next template with the same hash. */
  next: IndexedTemplate | undefined;
}

/**
 * endpoint -> templatePath(endpoint) without a string-keyed cache of raw endpoints (those are
 * mostly distinct: each id makes a new one, and looking each up costs more than templating it).
 * One pass over the characters splits and classifies the segments (no slicing) and hashes the
 * template they make; the template is then found among those seen before (few, so they stay in
 * the CPU cache) and checked segment by segment. Endpoints of another shape (query, fragment,
 * matrix parameters, absolute URLs, a segment or length cap reached, no segment) go through
 * templatePath. The answer is always templatePath's, as one string object per template.
 */
export class TemplateIndex {
  private readonly byHash = new Map<number, IndexedTemplate>();
  /** One string per template: what the slow path made, shared. */
  private readonly canonical = new Map<string, string>();
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  private readonly idFlags: Uint8Array;
  /** Endpoints templated by templatePath (new templates, and endpoints of another shape). */
  slowCalls = 0;

  constructor(
    private readonly maxSegments = 16,
    private readonly maxLength = 256,
  ) {
    this.starts = new Int32Array(maxSegments);
    this.ends = new Int32Array(maxSegments);
    this.idFlags = new Uint8Array(maxSegments);
  }

  /** templatePath(endpoint, maxSegments, maxLength). */
  templateOf(p: string): string {
    const n = p.length;
    if (n === 0 || n > INDEX_MAX_LENGTH) return this.slow(p);
    const absolute = p.charCodeAt(0) === 47;
    if (!absolute && (p.startsWith("http://") || p.startsWith("https://"))) return this.slow(p);
    const limit = this.maxLength - REST_PLACEHOLDER.length - 1;
    let h = absolute ? 0x811c9dc5 : 0x01000193;
    let kept = 0;
    let length = 0;
    let i = absolute ? 1 : 0;
    while (i <= n) {
      const start = i;
      let digits = 0;
      let numericIsh = true;
      let hex = true;
      let at = false;
      let segHash = 0;
      for (; i < n; i++) {
        const c = p.charCodeAt(i);
        if (c === 47) break; // '/'
        if (c === 63 || c === 35 || c === 59) return this.slow(p); // '?', '#', ';'
        segHash = Math.imul(segHash ^ c, 0x01000193);
        if (c >= 48 && c <= 57) digits++;
        else {
          // NUMERIC_ISH after its first digit: - _ . : , + ~
          if (i === start || !(c === 45 || c === 95 || c === 46 || c === 58 || c === 44 || c === 43 || c === 126))
            numericIsh = false;
          if (!((c >= 97 && c <= 102) || (c >= 65 && c <= 70))) hex = false;
          if (c === 64) at = true;
        }
      }
      const end = i;
      i++;
      const len = end - start;
      if (len === 0) continue;
      if (kept === this.maxSegments) return this.slow(p);
      // isIdSegment: below 16 characters only these rules can apply (UUID and token rules need more)
      const id =
        len >= 16
          ? isIdSegment(p.slice(start, end))
          : digits === len || (digits > 0 && numericIsh) || (len >= 8 && hex && digits > 0) || digits >= 5 || at;
      const partLength = id ? ID_PLACEHOLDER.length : len;
      if (length + partLength + 1 > limit) return this.slow(p);
      length += kept === 0 && !absolute ? partLength : partLength + 1;
      this.starts[kept] = start;
      this.ends[kept] = end;
      this.idFlags[kept] = id ? 1 : 0;
      h = Math.imul(h ^ SEPARATOR, 0x01000193);
      h = Math.imul(h ^ (id ? ID_MARK : segHash), 0x01000193);
      kept++;
    }
    if (kept === 0) return this.slow(p);
    h = (h ^ kept) | 0;
    for (let t = this.byHash.get(h); t !== undefined; t = t.next)
      if (this.matches(t, p, absolute, kept)) return t.template;
    return this.add(h, p, absolute, kept);
  }

  private matches(t: IndexedTemplate, p: string, absolute: boolean, kept: number): boolean {
    const parts = t.parts;
    if (t.absolute !== absolute || parts.length !== kept) return false;
    for (let k = 0; k < kept; k++) {
      const part = parts[k] as string | null;
      const id = this.idFlags[k] === 1;
      if (part === null) {
        if (!id) return false;
        continue;
      }
      const start = this.starts[k] as number;
      if (id || (this.ends[k] as number) - start !== part.length || !p.startsWith(part, start)) return false;
    }
    return true;
  }

  /** A new template: made by templatePath, indexed with the segments just scanned. */
  private add(h: number, p: string, absolute: boolean, kept: number): string {
    const template = this.slow(p);
    const parts: (string | null)[] = [];
    for (let k = 0; k < kept; k++)
      parts.push(this.idFlags[k] === 1 ? null : p.slice(this.starts[k] as number, this.ends[k] as number));
    // the segments must make the same template, else this endpoint is not indexed (templatePath decides)
    let made = "";
    for (let k = 0; k < kept; k++) {
      const part = parts[k] ?? ID_PLACEHOLDER;
      made += k === 0 && !absolute ? part : `/${part}`;
    }
    if (made !== template) return template;
    if (this.byHash.size >= INDEX_TEMPLATES) this.byHash.clear();
    this.byHash.set(h, { template, absolute, parts, next: this.byHash.get(h) });
    return template;
  }

  private slow(p: string): string {
    this.slowCalls++;
    const made = templatePath(p, this.maxSegments, this.maxLength);
    const known = this.canonical.get(made);
    if (known !== undefined) return known;
    if (this.canonical.size >= INDEX_TEMPLATES) this.canonical.clear();
    this.canonical.set(made, made);
    return made;
  }
}

/**
 * Endpoint -> template, with a cap on distinct templates per service (default 1000): once a service
 * has that many, any new template is reported as "_other" and counted. Memory is bounded by
 * maxServices x maxTemplatesPerService, and by maxTotalTemplates overall.
 */
export class EndpointTemplater {
  private readonly maxPerService: number;
  private readonly maxServices: number;
  private readonly maxTotal: number;
  private readonly maxSegments: number;
  private readonly maxLength: number;
  private readonly byService = new Map<string, Set<string>>();
  /** Shared by services past maxServices. */
  private readonly overflowServices = new Set<string>();
  private total = 0;
  private overflowed = 0;
  private readonly index: TemplateIndex;

  constructor(options: EndpointTemplaterOptions = {}) {
    this.maxPerService = Math.max(1, Math.floor(options.maxTemplatesPerService ?? 1000));
    this.maxServices = Math.max(1, Math.floor(options.maxServices ?? 256));
    this.maxTotal = Math.max(1, Math.floor(options.maxTotalTemplates ?? 20_000));
    this.maxSegments = Math.max(1, Math.floor(options.maxSegments ?? 16));
    this.maxLength = Math.max(16, Math.floor(options.maxLength ?? 256));
    this.index = new TemplateIndex(this.maxSegments, this.maxLength);
  }

  /** The template of `endpoint` for `service`, or "_other" past the caps. Never throws. */
  template(service: string, endpoint: string): string {
    return this.admit(service, this.templateOf(endpoint));
  }

  /** The template of an endpoint, before any cap (the same for every service): templatePath's, one string per template. */
  templateOf(endpoint: string): string {
    return this.index.templateOf(endpoint);
  }

  /** `t` (a templateOf() result) if `service` may have it, else "_other" (counted). */
  admit(service: string, t: string): string {
    let set = this.byService.get(service);
    if (!set) {
      if (this.byService.size < this.maxServices) {
        set = new Set();
        this.byService.set(service, set);
      } else set = this.overflowServices;
    }
    if (set.has(t)) return t;
    if (set.size >= this.maxPerService || this.total >= this.maxTotal) {
      this.overflowed++;
      return OVERFLOW_ENDPOINT;
    }
    set.add(t);
    this.total++;
    return t;
  }

  stats(): EndpointTemplaterStats {
    return {
      services: this.byService.size + (this.overflowServices.size > 0 ? 1 : 0),
      templates: this.total,
      overflowed: this.overflowed,
    };
  }
}
