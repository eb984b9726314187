// The trace ring behind `kalman traces`, on hand-made spans (pure logic: grouping, completion,
// bounds). The live command against real servers is in traces.test.ts.
import type { Span } from "@kalman/span-correlator";
import { describe, expect, it } from "vitest";
import { TracesModel } from "../src/traces/model.js";
import { renderTraceDetail, renderTraceList, traceRow } from "../src/traces/render.js";

const T0 = 1_700_000_000;
let nextId = 1;

function span(
  traceId: string,
  service: string,
  name: string,
  startUs: number,
  durUs: number,
  opts: { parent?: string; error?: boolean; kind?: "server" | "client"; id?: string } = {},
): Span {
  const start = startUs * 1000;
  const end = start + durUs * 1000;
  return {
    traceId,
    spanId: opts.id ?? (nextId++).toString(16).padStart(16, "0"),
    parentSpanId: opts.parent,
    name,
    kind: opts.kind ?? "server",
    start: [T0 + Math.floor(start / 1e9), start % 1e9],
    end: [T0 + Math.floor(end / 1e9), end % 1e9],
    durationNs: end - start,
    status: opts.error ? { code: "error", message: "server_error" } : { code: "unset" },
    attributes: {},
    service: { serviceName: service, attributes: {} },
  };
}

const info = { eventsPerSec: 0, lost: 0, tracesPerSec: 0, width: 160 };

describe("TracesModel", () => {
  it("groups spans by trace, completes a trace once it is quiet, and summarizes root, services, duration, error", () => {
    const m = new TracesModel({ settleMs: 500 });
    const a = "a".repeat(32);
    // children arrive before their parents, as eBPF sees them (the callee answers first)
    m.add([span(a, "api", "GET /price", 300, 100, { parent: "00000000000000c1", id: "00000000000000a1" })], 1000);
    m.add(
      [
        span(a, "frontend", "GET /price", 250, 200, {
          parent: "00000000000000f1",
          kind: "client",
          id: "00000000000000c1",
        }),
        span(a, "frontend", "GET /checkout", 200, 400, { id: "00000000000000f1", error: true }),
      ],
      1200,
    );
    m.tick(1600); // quiet for 400 ms only
    expect(m.recent()).toHaveLength(0);
    expect(m.find("aaaa")?.complete).toBe(false);
    m.tick(1700);
    const [t] = m.recent();
    expect(t).toBeDefined();
    const row = traceRow(t as NonNullable<typeof t>);
    expect(row).toMatchObject({ traceId: a, spans: 3, error: true, root: "frontend: GET /checkout" });
    expect(row.services).toBe("frontend, api");
    expect(row.durationMs).toBeCloseTo(0.4, 6);
    expect(m.find("aaaa")).toMatchObject({ complete: true });
    expect(renderTraceList(m, info)).toMatch(/a{32}\s+0\.40\s+3 ERR\s+frontend: GET \/checkout\s+frontend, api/);
    const detail = renderTraceDetail(m, info, { traceId: "aaaa" });
    // the waterfall nests by parent id: checkout > price (client) > price (server)
    expect(detail).toMatch(
      /\n▶ frontend: GET \/checkout[^\n]*\n {2}◀ frontend: GET \/price[^\n]*\n {4}▶ api: GET \/price/,
    );
  });

  it("takes a span whose parent was never seen as the root (a caller's traceparent), and lists newest first", () => {
    const m = new TracesModel({ settleMs: 0 });
    const ids = ["1".repeat(32), "2".repeat(32)];
    m.add([span(ids[0] as string, "curl", "GET /a", 0, 10, { parent: "ffffffffffffffff", kind: "client" })], 0);
    m.tick(0);
    m.add([span(ids[1] as string, "curl", "GET /b", 20, 10, { kind: "client" })], 1);
    m.tick(1);
    expect(m.recent().map((t) => t.traceId)).toEqual([ids[1], ids[0]]);
    expect(m.recent()[1]?.root?.name).toBe("GET /a");
    expect(renderTraceDetail(m, info, "last")).toContain(`trace ${ids[1]}`);
  });

  it("keeps at most maxTraces completed traces and maxSpansPerTrace spans each, counting the rest", () => {
    const m = new TracesModel({ maxTraces: 3, maxSpansPerTrace: 5, settleMs: 0 });
    for (let i = 0; i < 10; i++) {
      const id = i.toString(16).padStart(32, "0");
      m.add(
        Array.from({ length: 8 }, (_, k) => span(id, `svc${k % 2}`, `op${k}`, i * 100 + k, 5)),
        i,
      );
      m.tick(i);
    }
    const recent = m.recent();
    expect(recent.map((t) => Number.parseInt(t.traceId, 16))).toEqual([9, 8, 7]);
    for (const t of recent) {
      expect(t.spans).toHaveLength(5);
      expect(t.spanCount).toBe(8);
    }
    expect(m.stats()).toMatchObject({ spans: 80, completed: 10, spansNotKept: 30, open: 0 });
    // forgotten traces are not found any more
    expect(m.find("0".repeat(32))).toBeUndefined();
    expect(renderTraceDetail(m, info, { traceId: recent[0]?.traceId as string })).toContain("(3 more spans not kept)");
  });

  it("bounds the traces being assembled: past maxOpen the oldest is completed early", () => {
    const m = new TracesModel({ maxOpen: 4, settleMs: 10_000 });
    for (let i = 0; i < 10; i++) m.add([span(i.toString(16).padStart(32, "0"), "s", "op", i, 1)], i);
    expect(m.stats()).toMatchObject({ open: 4, closedEarly: 6, completed: 6 });
    // ...and a trace open longer than maxOpenMs completes even when spans keep coming
    const slow = new TracesModel({ settleMs: 1000, maxOpenMs: 5000 });
    const id = "5".repeat(32);
    for (let t = 0; t <= 6000; t += 500) {
      slow.add([span(id, "s", "op", t, 1)], t);
      slow.tick(t);
    }
    expect(slow.recent()[0]?.traceId).toBe(id);
  });

  it("with `only`, keeps that trace and skips the others", () => {
    const m = new TracesModel({ only: "abcd", settleMs: 0 });
    m.add([span(`abcd${"0".repeat(28)}`, "s", "mine", 0, 1), span("f".repeat(32), "s", "other", 0, 1)], 0);
    m.tick(0);
    expect(m.recent().map((t) => t.root?.name)).toEqual(["mine"]);
    expect(m.stats().skipped).toBe(1);
  });
});
