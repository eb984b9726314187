/** W3C trace context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". */
export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

/** Checks v[from, from+len) is hex; returns -1 if not, else a bit set: 1 = has a non-zero digit, 2 = has upper case. */
function hexRun(v: string, from: number, len: number): number {
  let bits = 0;
  for (let i = from; i < from + len; i++) {
    const c = v.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (c !== 48) bits |= 1;
    } else if (c >= 97 && c <= 102) bits |= 1;
    else if (c >= 65 && c <= 70) bits |= 3;
    else return -1;
  }
  return bits;
}

function hexDigit(c: number): number {
  return c <= 57 ? c - 48 : (c | 0x20) - 87;
}

export function parseTraceparent(value: string): TraceParent | undefined {
  const v = value.length === 55 ? value : value.trim();
  if (v.length < 55 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return undefined;
  const version = hexRun(v, 0, 2);
  const trace = hexRun(v, 3, 32);
  const span = hexRun(v, 36, 16);
  const flags = hexRun(v, 53, 2);
  // ids must be hex and not all zero; version ff is invalid; version 00 has exactly 55 characters
  if (version < 0 || flags < 0 || trace < 0 || span < 0 || !(trace & 1) || !(span & 1)) return undefined;
  if ((v.charCodeAt(0) | 0x20) === 102 && (v.charCodeAt(1) | 0x20) === 102) return undefined;
  if (v.charCodeAt(0) === 48 && v.charCodeAt(1) === 48 && v.length !== 55) return undefined;
  const lower = (trace | span) & 2 ? v.toLowerCase() : v;
  return {
    traceId: lower.slice(3, 35),
    spanId: lower.slice(36, 52),
    sampled: (hexDigit(v.charCodeAt(54)) & 1) === 1,
  };
}
