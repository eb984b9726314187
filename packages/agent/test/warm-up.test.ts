// Pure logic: synthetic traffic in the kernel's layout through throwaway stages.
import { describe, expect, it } from "vitest";
import { warmUp } from "../src/warm-up.js";

describe("warmUp", () => {
  it("runs every synthetic request through the parser at both ends (nothing rejected as unknown)", () => {
    expect(warmUp(300)).toBe(600);
    // again: no state carried over from the first run
    expect(warmUp(300)).toBe(600);
  });
});
