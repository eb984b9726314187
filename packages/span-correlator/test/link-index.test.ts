import { describe, expect, it } from "vitest";
import { LocalLinkIndex, wireKey } from "../src/link-index.js";

const target = (n: number) => ({ traceId: `t${n}`, spanId: `s${n}` });

describe("LocalLinkIndex", () => {
  it("finds a published key until its TTL passes, then forgets it", () => {
    const index = new LocalLinkIndex(16, 1000);
    index.publish(wireKey(1, 10), target(1), 0);
    expect(index.lookup(wireKey(1, 10), 1000)?.spanId).toBe("s1");
    expect(index.lookup(wireKey(1, 11), 500)).toBeUndefined();
    expect(index.lookup(wireKey(1, 10), 1001)).toBeUndefined();
    // the expired entry leaves the map at the next publication
    index.publish(wireKey(2, 10), target(2), 1500);
    expect(index.size).toBe(1);
  });

  it("holds at most maxEntries, evicting the oldest and counting them", () => {
    const index = new LocalLinkIndex(4, 1e12);
    for (let i = 0; i < 10; i++) index.publish(wireKey(i, 1), target(i), i);
    expect(index.size).toBe(4);
    expect(index.evicted).toBe(6);
    expect(index.lookup(wireKey(5, 1), 10)).toBeUndefined();
    expect([6, 7, 8, 9].map((i) => index.lookup(wireKey(i, 1), 10)?.spanId)).toEqual(["s6", "s7", "s8", "s9"]);
  });

  it("a key published again keeps its newest target when the older publication expires", () => {
    const index = new LocalLinkIndex(8, 100);
    index.publish(wireKey(7, 1), target(1), 0);
    index.publish(wireKey(7, 1), target(2), 80);
    index.publish(wireKey(8, 1), target(3), 150); // the first publication of 7:1 expires here
    expect(index.lookup(wireKey(7, 1), 150)?.spanId).toBe("s2");
    index.publish(wireKey(9, 1), target(4), 181); // now the second one
    expect(index.lookup(wireKey(7, 1), 181)).toBeUndefined();
    expect(index.size).toBe(2);
  });

  it("stays bounded over a long stream of publications", () => {
    const index = new LocalLinkIndex(1000, 1e6);
    for (let i = 0; i < 50_000; i++) index.publish(wireKey(i, 76), target(i), i * 100);
    expect(index.size).toBeLessThanOrEqual(1000);
    expect(index.lookup(wireKey(49_999, 76), 50_000 * 100)?.spanId).toBe("s49999");
  });
});
