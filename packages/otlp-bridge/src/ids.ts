/** True for `length` lowercase hex digits, not all zero: a valid W3C trace id (32) or span id (16). */
function isHexId(id: string, length: number): boolean {
  if (id.length !== length) return false;
  let nonZero = false;
  for (let i = 0; i < length; i++) {
    const c = id.charCodeAt(i);
    if (c === 48) continue;
    if (!((c > 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    nonZero = true;
  }
  return nonZero;
}

/** A valid W3C trace id: 32 lowercase hex digits, not all zero. */
export function isTraceId(id: string): boolean {
  return isHexId(id, 32);
}

/** A valid W3C span id: 16 lowercase hex digits, not all zero. */
export function isSpanId(id: string): boolean {
  return isHexId(id, 16);
}
