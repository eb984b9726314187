import { describe, expect, it } from "vitest";
import { setHeapGrowth } from "../src/heap.js";

describe("setHeapGrowth", () => {
  it("sets V8's heap growth, unless node itself was given one", () => {
    expect(setHeapGrowth(100, ["--max-old-space-size=512", "--heap-growing-percent=50"])).toBe(false);
    expect(setHeapGrowth(100, ["--max-old-space-size=512"])).toBe(true);
  });
});
