import { describe, expect, it } from "vitest";
import { LocalLinkIndex, wireKey } from "../src/link-index.js";

const target = (n: number) => ({ traceId: `t${n}`, spanId: `s${n}` });

describe("wireKey", () => {
  it("is exact: distinct (seq, size) pairs never share a key, up to the largest seq and past 2 MiB", () => {
    const pairs: Array<[number, number]> = [
      [0, 0],
      [0, 1],
      [1, 0],
      [0xffffffff, 0],
      [0xffffffff, 2 ** 21 - 1],
      [0xfffffffe, 2 ** 21 - 1],
      [5, 2 ** 21],
      [5, 2 ** 21 + 1],
      [6, 0],
      [5, 2 ** 21 * 2],
      [4, 2 ** 22],
    ];
    const keys = pairs.map(([seq, bytes]) => wireKey(seq, bytes));
    expect(new Set(keys).size).toBe(pairs.length);
    // the same pair, the same key (on the client's write and the server's read)
    expect(pairs.map(([seq, bytes]) => wireKey(seq, bytes))).toEqual(keys);
    for (const k of keys) if (typeof k === "number") expect(Number.isSafeInteger(k)).toBe(true);
    expect(typeof wireKey(1, 2 ** 21)).toBe("string");
  });
});

describe("LocalLinkIndex", () => {
  it("finds a published key for at least ttl/2 and forgets it by 1.5 × ttl", () => {
    const ttl = 1000;
    for (const publishedAt of [0, 100, 499]) {
      const index = new LocalLinkIndex(1024, ttl);
      index.publish(wireKey(9, 1), target(0), 0); // starts the first generation at 0
      index.publish(wireKey(1, 10), target(1), publishedAt);
      for (let t = publishedAt; t <= publishedAt + ttl / 2; t += 50) {
        expect(index.lookup(wireKey(1, 10), t)?.spanId).toBe("s1");
        index.publish(wireKey(1000 + t, 1), target(2), t); // traffic goes on meanwhile: generations rotate
      }
      expect(index.lookup(wireKey(1, 11), publishedAt)).toBeUndefined();
      // silence or traffic, it is gone 1.5 × ttl after publication
      expect(index.lookup(wireKey(1, 10), publishedAt + 1.5 * ttl)).toBeUndefined();
      index.publish(wireKey(77, 1), target(3), publishedAt + 1.5 * ttl);
      expect(index.lookup(wireKey(1, 10), publishedAt + 1.5 * ttl)).toBeUndefined();
    }
  });

  it("holds at most maxEntries, dropping the older generation and counting what it held", () => {
    const index = new LocalLinkIndex(8, 1e12);
    for (let i = 0; i < 20; i++) index.publish(wireKey(i, 1), target(i), i);
    expect(index.size).toBeLessThanOrEqual(8);
    expect(index.evicted).toBe(20 - index.size);
    // the newest are there, the oldest gone
    expect(index.lookup(wireKey(19, 1), 20)?.spanId).toBe("s19");
    expect(index.lookup(wireKey(15, 1), 20)?.spanId).toBe("s15");
    expect(index.lookup(wireKey(0, 1), 20)).toBeUndefined();
  });

  it("does not count as dropped early what a server span already found", () => {
    const index = new LocalLinkIndex(8, 1e12);
    // each request is read by its server right after the client wrote it: nothing is lost by rotation
    for (let i = 0; i < 40; i++) {
      index.publish(wireKey(i, 1), target(i), i);
      expect(index.lookup(wireKey(i, 1), i)?.spanId).toBe(`s${i}`);
    }
    expect(index.evicted).toBe(0);
    // two of the next eight (42 and 45) are never read: only they count once their generation is dropped early
    for (let i = 40; i < 48; i++) {
      index.publish(wireKey(i, 1), target(i), i);
      if (i % 3 !== 0) index.lookup(wireKey(i, 1), i);
    }
    for (let i = 48; i < 56; i++) index.publish(wireKey(i, 1), target(i), i);
    expect(index.evicted).toBe(2);
  });

  it("a key published again is found with its newest target", () => {
    const index = new LocalLinkIndex(64, 100);
    index.publish(wireKey(7, 1), target(1), 0);
    index.publish(wireKey(7, 1), target(2), 10);
    expect(index.lookup(wireKey(7, 1), 20)?.spanId).toBe("s2");
    index.publish(wireKey(8, 1), target(3), 60); // rotation: 7:1 is in the old generation now
    index.publish(wireKey(7, 1), target(4), 61);
    expect(index.lookup(wireKey(7, 1), 62)?.spanId).toBe("s4");
  });

  it("stays bounded over a long stream of publications", () => {
    const index = new LocalLinkIndex(1000, 1e6);
    for (let i = 0; i < 50_000; i++) index.publish(wireKey(i, 76), target(i), i * 100);
    expect(index.size).toBeLessThanOrEqual(1000);
    expect(index.lookup(wireKey(49_999, 76), 50_000 * 100)?.spanId).toBe("s49999");
  });
});
