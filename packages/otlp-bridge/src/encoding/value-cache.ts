/**
 * An attribute key's last string value with its encoded KeyValue: method, route, status and
 * addresses repeat from span to span, so the encoders copy bytes instead of encoding them again.
 */
export interface ValueCache {
  value: string | undefined;
  bytes: Uint8Array | undefined;
  hits: number;
  misses: number;
}

/** Longest string value whose encoding is kept. */
const MAX_CACHED_VALUE = 64;

/**
 * The cached encoding of `value`, else encode()'s, kept in its place. Undefined (write it out) for a
 * long value, and for a key whose values keep changing (paths, ids): not worth the copy.
 */
export function cachedEncoding<C extends ValueCache>(
  c: C,
  value: string,
  encode: (c: C, value: string) => Uint8Array | undefined,
): Uint8Array | undefined {
  if (value === c.value) {
    c.hits++;
    return c.bytes;
  }
  if (value.length > MAX_CACHED_VALUE || c.misses > 2 * c.hits + 16) return undefined;
  c.misses++;
  const bytes = encode(c, value);
  if (bytes) {
    c.value = value;
    c.bytes = bytes;
  }
  return bytes;
}
