import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createSpanSink, type Logger, OtlpJsonFileSink } from "../src/index.js";
import { makeSpan, manySpans, service } from "./support/spans.js";

const quiet: Logger = { warn() {}, info() {} };
const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "kalman-otlp-file-"));
  dirs.push(d);
  return d;
}

interface JsonLine {
  resourceSpans: {
    resource: { attributes: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: {
      scope: { name: string; version?: string };
      spans: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string | number;
        endTimeUnixNano: string | number;
        status: { code: number; message?: string };
        attributes: { key: string; value: Record<string, unknown> }[];
      }[];
    }[];
  }[];
}

function readLines(path: string): JsonLine[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as JsonLine);
}

function spanIdsIn(lines: JsonLine[]): string[] {
  return lines.flatMap((l) =>
    l.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.spanId))),
  );
}

describe("OtlpJsonFileSink", () => {
  it("writes one OTLP-JSON ExportTraceServiceRequest per line, with hex ids and a resource per service", async () => {
    const dir = tmp();
    const sink = new OtlpJsonFileSink({ dir, logger: quiet });
    expect(sink.kind).toBe("file");
    expect(sink.target).toBe(join(dir, "traces.jsonl"));
    const web = service("web", { "process.pid": 7 });
    const db = service("db");
    const root = makeSpan({ service: web, name: "GET /", attributes: { "http.response.status_code": 200 } });
    const child = makeSpan({
      service: db,
      traceId: root.traceId,
      parentSpanId: root.spanId,
      name: "SELECT",
      kind: "server",
      status: { code: "error", message: "deadlock" },
    });
    const cli = makeSpan({ service: web, traceId: root.traceId, parentSpanId: root.spanId, kind: "client" });
    sink.add([root, child, cli]);
    await sink.flush();
    await sink.shutdown();

    const lines = readLines(sink.target);
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(line.resourceSpans).toHaveLength(2);
    const names = line.resourceSpans.map(
      (rs) => rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue,
    );
    expect(names.sort()).toEqual(["db", "web"]);
    const all = line.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    expect(all).toHaveLength(3);
    for (const s of all) {
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(s.traceId).toBe(root.traceId);
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
    }
    const c = all.find((s) => s.spanId === child.spanId)!;
    expect(c.parentSpanId).toBe(root.spanId);
    expect(c.kind).toBe(2); // SPAN_KIND_SERVER
    expect(c.status).toEqual({ code: 2, message: "deadlock" });
    expect(all.find((s) => s.spanId === cli.spanId)!.kind).toBe(3); // SPAN_KIND_CLIENT
    const r = all.find((s) => s.spanId === root.spanId)!;
    expect(r.parentSpanId).toBeUndefined();
    expect(String(r.startTimeUnixNano)).toBe(`${root.start[0]}${String(root.start[1]).padStart(9, "0")}`);
    expect(r.attributes).toContainEqual({ key: "http.response.status_code", value: { intValue: 200 } });
    expect(line.resourceSpans[0]!.scopeSpans[0]!.scope.name).toBe("kalman");
    expect(sink.stats()).toMatchObject({ exported: 3, dropped: 0, queued: 0 });
  });

  it("appends batches as separate lines", async () => {
    const dir = tmp();
    const sink = new OtlpJsonFileSink({ dir, logger: quiet, maxBatchSize: 10 });
    const spans = manySpans(35, service("lines"));
    sink.add(spans);
    await sink.flush();
    await sink.shutdown();
    const lines = readLines(sink.target);
    expect(lines).toHaveLength(4);
    expect(spanIdsIn(lines)).toEqual(spans.map((s) => s.spanId));
  });

  it("rotates before exceeding maxBytes and keeps only maxFiles rotated files", async () => {
    const dir = tmp();
    const maxBytes = 8 * 1024;
    const sink = new OtlpJsonFileSink({ dir, logger: quiet, maxBytes, maxFiles: 2, maxBatchSize: 5 });
    const spans = manySpans(400, service("rotate", { "process.command_line": "x".repeat(200) }));
    for (let i = 0; i < spans.length; i += 20) {
      sink.add(spans.slice(i, i + 20));
      await sink.flush();
    }
    await sink.shutdown();

    const files = readdirSync(dir).sort();
    expect(files).toEqual(["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"]);
    for (const f of files) {
      const size = statSync(join(dir, f)).size;
      expect(size).toBeGreaterThan(0);
      expect(size).toBeLessThanOrEqual(maxBytes);
    }
    // the current file holds the newest spans, .2 older ones; the oldest were rotated away
    const current = spanIdsIn(readLines(join(dir, "traces.jsonl")));
    const one = spanIdsIn(readLines(join(dir, "traces.jsonl.1")));
    const two = spanIdsIn(readLines(join(dir, "traces.jsonl.2")));
    expect(current).toContain(spans.at(-1)!.spanId);
    const order = new Map(spans.map((s, i) => [s.spanId, i]));
    expect(order.get(two.at(-1)!)! + 1).toBe(order.get(one[0]!));
    expect(order.get(one.at(-1)!)! + 1).toBe(order.get(current[0]!));
    const kept = new Set([...current, ...one, ...two]);
    expect(kept.has(spans[0]!.spanId)).toBe(false);
    expect(kept.size).toBeLessThan(spans.length);
    expect(sink.stats()).toMatchObject({ exported: 400, dropped: 0 });
  });

  it("continues an existing file (size counted) and creates the directory", async () => {
    const dir = join(tmp(), "nested", "data");
    const a = new OtlpJsonFileSink({ dir, logger: quiet });
    a.add([makeSpan({ service: service("one") })]);
    await a.shutdown();
    const b = new OtlpJsonFileSink({ dir, logger: quiet, maxBytes: 1 });
    b.add([makeSpan({ service: service("two") })]);
    await b.shutdown();
    // the second sink saw a non-empty file over maxBytes and rotated it away first
    expect(readLines(join(dir, "traces.jsonl"))).toHaveLength(1);
    expect(readLines(join(dir, "traces.jsonl.1"))).toHaveLength(1);
  });

  it("is what createSpanSink picks when no endpoint is configured", async () => {
    const dir = tmp();
    const sink = createSpanSink({ dir, env: {}, logger: quiet });
    expect(sink.kind).toBe("file");
    sink.add([makeSpan({ service: service("default") })]);
    await sink.shutdown();
    expect(existsSync(join(dir, "traces.jsonl"))).toBe(true);
  });
});
