import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BoundedMap } from "../src/bounded-map.js";

describe("BoundedMap", () => {
  it("evicts the least recently set or touched entry, calling onEvict", () => {
    const evicted: Array<[string, number]> = [];
    const m = new BoundedMap<string, number>(3, (k, v) => evicted.push([k, v]));
    m.set("a", 1).set("b", 2).set("c", 3);
    m.touch("a"); // b is the oldest now
    m.set("d", 4);
    expect(evicted).toEqual([["b", 2]]);
    m.set("c", 30); // set again: newest
    m.set("e", 5);
    expect(evicted).toEqual([
      ["b", 2],
      ["a", 1],
    ]);
    expect([...m.entries()].sort()).toEqual([
      ["c", 30],
      ["d", 4],
      ["e", 5],
    ]);
    expect(m.oldest()).toEqual(["d", 4]);
    expect(m.shift()).toEqual(["d", 4]);
    expect(m.delete("c")).toBe(true);
    expect(m.oldest()).toEqual(["e", 5]);
    expect(m.size).toBe(1);
  });

  it("behaves like an ordered Map under random operations, with its queue bounded", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), key: fc.integer({ min: 0, max: 40 }), value: fc.integer() }),
      fc.record({ kind: fc.constant("touch" as const), key: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant("delete" as const), key: fc.integer({ min: 0, max: 40 }) }),
      fc.record({ kind: fc.constant("shift" as const) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 16 }), fc.array(op, { maxLength: 3000 }), (max, ops) => {
        const evicted: number[] = [];
        const m = new BoundedMap<number, number>(max, (k) => evicted.push(k));
        // the model: a plain Map whose order is recency (delete + set)
        const model = new Map<number, number>();
        const modelEvicted: number[] = [];
        for (const o of ops) {
          if (o.kind === "set") {
            m.set(o.key, o.value);
            model.delete(o.key);
            model.set(o.key, o.value);
            while (model.size > max) {
              const k = model.keys().next().value as number;
              model.delete(k);
              modelEvicted.push(k);
            }
          } else if (o.kind === "touch") {
            m.touch(o.key);
            const v = model.get(o.key);
            if (v !== undefined) {
              model.delete(o.key);
              model.set(o.key, v);
            }
          } else if (o.kind === "delete") expect(m.delete(o.key)).toBe(model.delete(o.key));
          else {
            const first = model.entries().next().value as [number, number] | undefined;
            if (first) model.delete(first[0]);
            expect(m.shift()).toEqual(first);
          }
          expect(m.size).toBe(model.size);
        }
        expect(evicted).toEqual(modelEvicted);
        // the order queue never holds much more than the live entries
        expect((m as unknown as { queueKeys: unknown[] }).queueKeys.length).toBeLessThanOrEqual(2 * max + 1024 + 1);
        const order: number[] = [];
        while (m.size) order.push((m.shift() as [number, number])[0]);
        expect(order).toEqual([...model.keys()]);
      }),
      { numRuns: 200 },
    );
  });

  it("refuses a bound below 1", () => {
    expect(() => new BoundedMap(0)).toThrow(/maxSize must be >= 1/);
  });

  it("the O(size) eviction idiom is left only on maps bounded to a few hundred entries", () => {
    // map.delete(map.keys().next().value) walks every deleted slot again: fine at 256, ~18 µs at 65536
    const small = new Map([
      ["agent/src/selection/selector.ts", "open sockets per netns, 256"],
      ["flow-aggregator/src/pairing.ts", "pending requests of one connection, maxPendingPerConnection"],
      ["flow-aggregator/src/protocols/http2/parser.ts", "streams of one connection, 1024"],
      ["flow-aggregator/src/protocols/kafka/parser.ts", "pending of one connection, 256"],
      ["flow-aggregator/src/protocols/mysql/parser.ts", "prepared statements of one connection, 256"],
      ["flow-aggregator/src/protocols/postgresql/parser.ts", "named statements of one connection, 256"],
      ["flow-aggregator/src/bounded-map.ts", "the comment that explains it"],
    ]);
    const packages = join(import.meta.dirname, "..", "..");
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (e.name.endsWith(".ts") && /\.(keys|values|entries)\(\)\.next\(\)/.test(readFileSync(path, "utf8")))
          found.push(path.slice(packages.length + 1));
      }
    };
    for (const pkg of readdirSync(packages)) {
      try {
        walk(join(packages, pkg, "src"));
      } catch {
        // a package without src/
      }
    }
    expect(found.filter((f) => !small.has(f))).toEqual([]);
  });
});
