/** W3C trace context: "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". */
export interface TraceParent {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

function hexRun(v: string, from: number, len: number): boolean {
  let nonZero = false;
  for (let i = from; i < from + len; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    if (c !== 48) nonZero = true;
  }
  return nonZero || len === 2; // all-zero ids are invalid; flags may be 00
}

export function parseTraceparent(value: string): TraceParent | undefined {
  const v = value.length === 55 ? value : value.trim();
  if (v.length < 55 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return undefined;
  const lower = v.toLowerCase();
  if (
    lower.startsWith("ff") ||
    !hexRun(lower, 0, 2) ||
    !hexRun(lower, 3, 32) ||
    !hexRun(lower, 36, 16) ||
    !hexRun(lower, 53, 2)
  ) {
    return undefined;
  }
  if (lower.startsWith("00") && v.length !== 55) return undefined;
  return {
    traceId: lower.slice(3, 35),
    spanId: lower.slice(36, 52),
    sampled: (Number.parseInt(lower.slice(53, 55), 16) & 1) === 1,
  };
}
