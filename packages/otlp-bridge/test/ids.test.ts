import { describe, expect, it } from "vitest";
import { isSpanId, isTraceId } from "../src/ids.js";

describe("W3C id checks", () => {
  it("accept lowercase hex of the right length, not all zero", () => {
    expect(isTraceId("4bf92f3577b34da6a3ce929d0e0e4736")).toBe(true);
    expect(isTraceId("00000000000000000000000000000001")).toBe(true);
    expect(isSpanId("00f067aa0ba902b7")).toBe(true);
  });

  it("reject all-zero, uppercase, non-hex and wrong lengths", () => {
    for (const bad of [
      "0".repeat(32),
      "4BF92F3577B34DA6A3CE929D0E0E4736",
      `${"a".repeat(31)}g`,
      "a".repeat(31),
      "a".repeat(33),
      "",
    ])
      expect(isTraceId(bad), bad).toBe(false);
    for (const bad of ["0".repeat(16), "00F067AA0BA902B7", "00f067aa0ba902b:", "a".repeat(15), "a".repeat(32)])
      expect(isSpanId(bad), bad).toBe(false);
    // every byte value at every position: only [0-9a-f] pass
    for (let c = 0; c < 256; c++) {
      const id = `1${String.fromCharCode(c)}${"0".repeat(14)}`;
      expect(isSpanId(id)).toBe(/^[0-9a-f]$/.test(String.fromCharCode(c)));
    }
  });
});
