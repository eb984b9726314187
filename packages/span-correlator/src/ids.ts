import { randomFillSync } from "node:crypto";

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const pool = new Uint8Array(8192);
let at = pool.length;

function hexBytes(n: number): string {
  if (at + n > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  let s = "";
  for (let i = 0; i < n; i++) s += HEX[pool[at++] as number];
  return s;
}

/** Random W3C trace id (32 hex), never all zero. */
export function newTraceId(): string {
  const id = hexBytes(16);
  return id === "00000000000000000000000000000000" ? newTraceId() : id;
}

/** Random W3C span id (16 hex), never all zero. */
export function newSpanId(): string {
  const id = hexBytes(8);
  return id === "0000000000000000" ? newSpanId() : id;
}
