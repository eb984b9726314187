import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createLogSink,
  createSpanSink,
  httpTracesUrl,
  type Logger,
  OtlpSpanExporter,
  resolveProtocol,
} from "../src/index.js";
import { OtlpGrpcReceiver, OtlpHttpReceiver } from "./support/otlp-receiver.js";
import { makeSpan, service } from "./support/spans.js";

const quiet: Logger = { warn() {}, info() {} };
const child = fileURLToPath(new URL("./fixtures/env-child.ts", import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

interface ChildResult {
  kind: string;
  target: string;
  spanId: string;
  stats: { exported: number; dropped: number; failedExports: number };
}

/** Runs the child with a clean OTEL_* environment plus `env` (async: the receivers live in this process). */
function runChild(env: Record<string, string>, cwd: string): Promise<ChildResult> {
  const base: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("OTEL_")) base[k] = v;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", tsxLoader, child], { cwd, env: { ...base, ...env } });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.stderr.on("data", (d) => {
      err += d;
    });
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else {
        try {
          resolve(JSON.parse(out.trim().split("\n").at(-1)!) as ChildResult);
        } catch (e) {
          reject(new Error(`bad child output ${JSON.stringify(out)} ${err}: ${e}`));
        }
      }
    });
  });
}

let grpcRx: OtlpGrpcReceiver;
let httpRx: OtlpHttpReceiver;
let cwd: string;
beforeAll(async () => {
  grpcRx = await OtlpGrpcReceiver.create();
  httpRx = await OtlpHttpReceiver.create();
  cwd = mkdtempSync(join(tmpdir(), "kalman-otlp-env-"));
});
afterAll(async () => {
  await grpcRx.stop();
  await httpRx.stop();
  rmSync(cwd, { recursive: true, force: true });
});

describe("OTEL_EXPORTER_OTLP_* in a child process", () => {
  it("OTEL_EXPORTER_OTLP_ENDPOINT + OTEL_EXPORTER_OTLP_PROTOCOL=grpc -> the gRPC receiver", async () => {
    const r = await runChild(
      { OTEL_EXPORTER_OTLP_ENDPOINT: grpcRx.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
      cwd,
    );
    expect(r.kind).toBe("otlp-grpc");
    expect(r.stats.exported).toBe(1);
    expect(grpcRx.spans.some((s) => s.spanId === r.spanId && s.serviceName === "env-child")).toBe(true);
    expect(httpRx.spans.some((s) => s.spanId === r.spanId)).toBe(false);
  });

  it("OTEL_EXPORTER_OTLP_ENDPOINT + OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf -> the HTTP receiver at /v1/traces", async () => {
    const r = await runChild(
      { OTEL_EXPORTER_OTLP_ENDPOINT: httpRx.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" },
      cwd,
    );
    expect(r.kind).toBe("otlp-http");
    expect(r.target).toBe(httpRx.tracesUrl);
    expect(httpRx.spans.some((s) => s.spanId === r.spanId)).toBe(true);
    expect(grpcRx.spans.some((s) => s.spanId === r.spanId)).toBe(false);
  });

  it("the TRACES_ variables win over the general ones", async () => {
    const r = await runChild(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", // nothing listens on the discard port
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpRx.tracesUrl,
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
      },
      cwd,
    );
    expect(r.kind).toBe("otlp-http");
    expect(r.stats.exported).toBe(1);
    expect(httpRx.spans.some((s) => s.spanId === r.spanId)).toBe(true);
  });

  it("OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES reach the backend", async () => {
    const r = await runChild(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: grpcRx.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
        OTEL_EXPORTER_OTLP_HEADERS: "x-kalman-env=yes",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=test,service.name=ignored",
      },
      cwd,
    );
    const req = grpcRx.requests.find((q) => grpcRx.spans.some((s) => s.spanId === r.spanId && s.request === q.index));
    expect(req?.headers["x-kalman-env"]).toBe("yes");
    const span = grpcRx.spans.find((s) => s.spanId === r.spanId)!;
    expect(span.resource["deployment.environment.name"]).toBe("test");
    expect(span.serviceName).toBe("env-child");
  });

  it("no endpoint at all -> OTLP-JSON lines in ./kalman-data/traces.jsonl", async () => {
    const r = await runChild({}, cwd);
    expect(r.kind).toBe("file");
    expect(r.target).toBe(join(cwd, "kalman-data", "traces.jsonl"));
    expect(readFileSync(r.target, "utf8")).toContain(r.spanId);
  });
});

describe("configuration by injection", () => {
  it("resolveProtocol: config > TRACES_PROTOCOL > PROTOCOL > port 4317 > http/protobuf", () => {
    expect(resolveProtocol({ protocol: "grpc" }, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" })).toBe("grpc");
    expect(
      resolveProtocol({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" }),
    ).toBe("grpc");
    expect(resolveProtocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf" })).toBe("http/protobuf");
    expect(resolveProtocol({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317" })).toBe("grpc");
    expect(resolveProtocol({ endpoint: "collector:4317" }, {})).toBe("grpc");
    expect(resolveProtocol({}, { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe("http/protobuf");
    expect(resolveProtocol({}, {})).toBe("http/protobuf");
    const warned: string[] = [];
    expect(resolveProtocol({}, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, (m) => warned.push(m))).toBe(
      "http/protobuf",
    );
    expect(warned).toHaveLength(1);
  });

  it("httpTracesUrl appends /v1/traces to a base URL only", () => {
    expect(httpTracesUrl("http://h:4318")).toBe("http://h:4318/v1/traces");
    expect(httpTracesUrl("http://h:4318/")).toBe("http://h:4318/v1/traces");
    expect(httpTracesUrl("http://h:4318/custom/path")).toBe("http://h:4318/custom/path");
  });

  it("createSpanSink with an injected env exports to that env's endpoint", async () => {
    const sink = createSpanSink({
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: grpcRx.endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc" },
      logger: quiet,
    });
    expect(sink).toBeInstanceOf(OtlpSpanExporter);
    expect(sink.target).toBe(grpcRx.endpoint);
    const span = makeSpan({ service: service("injected") });
    sink.add([span]);
    await sink.flush();
    await sink.shutdown();
    expect(grpcRx.spans.some((s) => s.spanId === span.spanId)).toBe(true);
  });

  it("createSpanSink: OTEL_TRACES_EXPORTER=otlp or sink: 'otlp' select OTLP without an endpoint; sink: 'file' forces the file", async () => {
    const a = createSpanSink({ env: { OTEL_TRACES_EXPORTER: "otlp" }, logger: quiet });
    const b = createSpanSink({ sink: "otlp", env: {}, logger: quiet });
    const c = createSpanSink({ sink: "file", endpoint: grpcRx.endpoint, dir: join(cwd, "forced"), logger: quiet });
    expect([a.kind, b.kind, c.kind]).toEqual(["otlp-http", "otlp-http", "file"]);
    expect(a.target).toBe("http://localhost:4318/v1/traces");
    await Promise.all([a.shutdown(), b.shutdown(), c.shutdown()]);
  });

  it("OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER=none: a sink that takes nothing, even with an endpoint set", async () => {
    const env = {
      OTEL_TRACES_EXPORTER: "none",
      OTEL_LOGS_EXPORTER: "none",
      OTEL_EXPORTER_OTLP_ENDPOINT: grpcRx.endpoint,
    };
    const spans = createSpanSink({ env, logger: quiet });
    const logs = createLogSink({ env, logger: quiet });
    expect([spans.kind, logs.kind]).toEqual(["none", "none"]);
    expect(logs.target).toBe("(OTEL_LOGS_EXPORTER=none)");
    const before = grpcRx.spans.length;
    spans.add([makeSpan({ service: service("off") })]);
    await spans.flush();
    expect(spans.stats()).toMatchObject({ exported: 0, dropped: 0, queued: 0 });
    expect(grpcRx.spans.length).toBe(before);
    // explicitly asked for: the option wins over the variable
    const forced = createSpanSink({ sink: "file", env, dir: join(cwd, "forced-none"), logger: quiet });
    expect(forced.kind).toBe("file");
    await Promise.all([spans.shutdown(), logs.shutdown(), forced.shutdown()]);
  });
});
