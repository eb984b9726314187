import { setFlagsFromString } from "node:v8";

const FLAG = "--heap-growing-percent";

/**
 * Sets how far V8's heap may grow past what is live before a full collection (memory.heapGrowthPercent).
 * V8 lets a fast-allocating heap grow to 4×; the agent allocates about 6 KB per record and keeps little
 * (about 45 MB live at 10k req/s), so 100 (2×) took peak RSS at 20k req/s from 330–375 MB to
 * 245–280 MB, for 4–8% more CPU (docs/performance.md). Opt-in: with it, committed memory also settled
 * later under a long backend outage. A --heap-growing-percent given to node wins.
 */
export function setHeapGrowth(percent: number, execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a.startsWith(FLAG))) return false;
  setFlagsFromString(`${FLAG}=${percent}`);
  return true;
}
