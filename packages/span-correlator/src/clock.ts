import type { HrTime } from "./types.js";

/**
 * Converts the kernel's monotonic ns (bpf_ktime_get_ns, CLOCK_MONOTONIC) to wall-clock HrTime
 * with an offset measured once at start; integer arithmetic keeps ns exact.
 */
export class MonotonicClock {
  private readonly offsetSec: number;
  private readonly offsetNs: number;

  constructor() {
    const mono = process.hrtime.bigint();
    const wallNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    const offset = wallNs - mono;
    this.offsetSec = Number(offset / 1_000_000_000n);
    this.offsetNs = Number(offset % 1_000_000_000n);
  }

  toHrTime(monoNs: number): HrTime {
    let sec = this.offsetSec + Math.floor(monoNs / 1e9);
    let ns = this.offsetNs + (monoNs % 1e9);
    if (ns >= 1e9) {
      sec += 1;
      ns -= 1e9;
    }
    return [sec, Math.round(ns)];
  }
}
