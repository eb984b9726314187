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

  constructor(options: EndpointTemplaterOptions = {}) {
    this.maxPerService = Math.max(1, Math.floor(options.maxTemplatesPerService ?? 1000));
    this.maxServices = Math.max(1, Math.floor(options.maxServices ?? 256));
    this.maxTotal = Math.max(1, Math.floor(options.maxTotalTemplates ?? 20_000));
    this.maxSegments = Math.max(1, Math.floor(options.maxSegments ?? 16));
    this.maxLength = Math.max(16, Math.floor(options.maxLength ?? 256));
  }

  /** The template of `endpoint` for `service`, or "_other" past the caps. Never throws. */
  template(service: string, endpoint: string): string {
    return this.admit(service, this.templateOf(endpoint));
  }

  /** The template of an endpoint, before any cap (the same for every service). */
  templateOf(endpoint: string): string {
    return templatePath(endpoint, this.maxSegments, this.maxLength);
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
