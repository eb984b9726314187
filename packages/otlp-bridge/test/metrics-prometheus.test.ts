import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterEach, describe, expect, it } from "vitest";
import {
  createMetricsPipeline,
  type Logger,
  type MetricsPipeline,
  type MetricsPipelineConfig,
  prometheusName,
  type ServiceOf,
} from "../src/index.js";
import { syntheticRecord as rec } from "./support/otlp-metrics-receiver.js";

const quiet: Logger = { warn() {}, info() {} };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

function pipeline(config: MetricsPipelineConfig): MetricsPipeline {
  const p = createMetricsPipeline({ logger: quiet, env: {}, hostName: "test-host", ...config });
  cleanups.push(() => p.shutdown());
  return p;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (samples only). */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1] as string, labels, value: m[3] === "+Inf" ? Number.POSITIVE_INFINITY : Number(m[3]) });
  }
  return out;
}

function samples(all: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return all.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** a -> b over HTTP, seen at both ends (both observed), plus a -> redis (not observed). */
const A = "10.0.0.1";
const B = "10.0.0.2";
const serviceOf: ServiceOf = (r) => ({
  client: r.clientAddr === A ? "a" : undefined,
  server: r.serverAddr === B ? "b" : undefined,
});

function traffic(): RequestRecord[] {
  const ab = { clientAddr: A, serverAddr: B, serverPort: 8080 };
  return [
    rec({ ...ab, observationPoint: "client", endpoint: "/users/1", ms: 2 }),
    rec({ ...ab, observationPoint: "client", endpoint: "/users/2", ms: 30 }),
    rec({ ...ab, observationPoint: "client", endpoint: "/users/3", code: 500, status: "server_error", ms: 300 }),
    rec({ ...ab, endpoint: "/users/1", ms: 1 }),
    rec({ ...ab, endpoint: "/users/2", ms: 20 }),
    rec({ ...ab, endpoint: "/users/3", code: 500, status: "server_error", ms: 250 }),
    rec({
      protocol: "redis",
      version: "RESP2",
      observationPoint: "client",
      clientAddr: A,
      serverAddr: "10.0.0.3",
      serverPort: 6379,
      requestType: "GET",
      endpoint: "GET",
      code: undefined,
      ms: 1,
    }),
  ];
}

async function freePort(): Promise<number> {
  const srv: Server = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe("prometheusName (OTLP -> Prometheus name translation)", () => {
  it("appends unit suffixes and keeps _total last", () => {
    expect(prometheusName("http.server.request.duration", "s", false)).toBe("http_server_request_duration_seconds");
    expect(prometheusName("traces_service_graph_request_server", "s", false)).toBe(
      "traces_service_graph_request_server_seconds",
    );
    expect(prometheusName("traces_service_graph_request_server_seconds", "s", false)).toBe(
      "traces_service_graph_request_server_seconds",
    );
    expect(prometheusName("traces_service_graph_request_total", "", true)).toBe("traces_service_graph_request_total");
    expect(prometheusName("kalman.metrics.overflow", "{measurement}", true)).toBe("kalman_metrics_overflow_total");
    expect(prometheusName("net.io", "By", true)).toBe("net_io_bytes_total");
    expect(prometheusName("net.rate", "By/s", false)).toBe("net_rate_bytes_per_second");
    expect(prometheusName("cpu.utilization", "1", false)).toBe("cpu_utilization");
  });
});

describe("Prometheus endpoint", () => {
  it("is off by default: no endpoint, no port", async () => {
    const p = pipeline({});
    await p.ready;
    expect(p.kind).toBe("none");
    expect(p.prometheusUrl).toBeUndefined();
  });

  it("serves service graph and RED metrics on 127.0.0.1 with Tempo's names", async () => {
    const p = pipeline({ prometheus: { port: 0 } });
    await p.ready;
    const url = p.prometheusUrl as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    p.record(traffic(), serviceOf);

    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    const all = parseExposition(text);

    expect(text).toMatch(/^traces_service_graph_request_total\{client="a",server="b",connection_type=""[^}]*\} 3$/m);
    expect(text).toMatch(
      /^traces_service_graph_request_failed_total\{client="a",server="b",connection_type=""[^}]*\} 1$/m,
    );
    expect(text).toMatch(
      /^traces_service_graph_request_total\{client="a",server="10\.0\.0\.3:6379",connection_type="database"[^}]*\} 1$/m,
    );
    expect(text).toContain("# TYPE traces_service_graph_request_total counter");
    expect(text).toContain("# TYPE traces_service_graph_request_server_seconds histogram");
    expect(text).toContain("# TYPE http_server_request_duration_seconds histogram");

    const edge = { client: "a", server: "b", connection_type: "" };
    expect(samples(all, "traces_service_graph_request_server_seconds_count", edge)[0]?.value).toBe(3);
    expect(samples(all, "traces_service_graph_request_server_seconds_sum", edge)[0]?.value).toBeCloseTo(0.271, 9);
    expect(samples(all, "traces_service_graph_request_client_seconds_sum", edge)[0]?.value).toBeCloseTo(0.332, 9);
    expect(samples(all, "traces_service_graph_request_client_seconds_bucket", { ...edge, le: "0.025" })[0]?.value).toBe(
      1,
    );
    expect(samples(all, "traces_service_graph_request_client_seconds_bucket", { ...edge, le: "+Inf" })[0]?.value).toBe(
      3,
    );

    // RED: the server side of a -> b, per service, templated route
    const route = { service_name: "b", http_route: "/users/{id}", http_request_method: "GET" };
    const ok = { ...route, http_response_status_code: "200" };
    expect(samples(all, "http_server_request_duration_seconds_count", ok)[0]?.value).toBe(2);
    expect(samples(all, "http_server_request_duration_seconds_bucket", { ...ok, le: "0.005" })[0]?.value).toBe(1);
    expect(samples(all, "http_server_request_duration_seconds_bucket", { ...ok, le: "0.025" })[0]?.value).toBe(2);
    const bounds = samples(all, "http_server_request_duration_seconds_bucket", ok).map((s) => s.labels.le);
    expect(bounds).toEqual([
      "0.005",
      "0.01",
      "0.025",
      "0.05",
      "0.075",
      "0.1",
      "0.25",
      "0.5",
      "0.75",
      "1",
      "2.5",
      "5",
      "7.5",
      "10",
      "+Inf",
    ]);
    const err = samples(all, "http_server_request_duration_seconds_count", { ...route, error_type: "500" });
    expect(err.map((s) => s.value)).toEqual([1]);
    expect(samples(all, "http_client_request_duration_seconds_count", { service_name: "a" })).toHaveLength(2);
    expect(
      samples(all, "db_client_operation_duration_seconds_count", { service_name: "a", db_system_name: "redis" })[0]
        ?.value,
    ).toBe(1);

    // other paths: 404, HEAD
    const base = url.replace(/\/metrics$/, "");
    expect((await fetch(`${base}/other`)).status).toBe(404);
    expect((await fetch(url, { method: "HEAD" })).status).toBe(200);
  });

  it("turns on from OTEL_METRICS_EXPORTER=prometheus, bound to 127.0.0.1", async () => {
    const p = pipeline({ env: { OTEL_METRICS_EXPORTER: "prometheus", OTEL_EXPORTER_PROMETHEUS_PORT: "0" } });
    await p.ready;
    expect(p.kind).toBe("none");
    expect(p.prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  });

  it("logs, does not throw, when the port is taken", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
    const port = (blocker.address() as { port: number }).port;
    const warnings: string[] = [];
    const p = pipeline({ prometheus: { port }, logger: { warn: (m) => warnings.push(m), info() {} } });
    await p.ready;
    expect(p.prometheusUrl).toBeUndefined();
    expect(warnings.some((w) => w.includes("could not listen"))).toBe(true);
    expect(() => p.record(traffic(), serviceOf)).not.toThrow();
  });

  const prometheusBin = spawnSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" }).stdout.trim();

  it.skipIf(!prometheusBin)(
    "is scraped by a real Prometheus (Debian's 2.42): sum by (client, server) of request_total",
    async () => {
      const p = pipeline({ prometheus: { port: 0 } });
      await p.ready;
      p.record(traffic(), serviceOf);
      const target = new URL(p.prometheusUrl as string);

      const dir = mkdtempSync(join(tmpdir(), "kalman-prom-"));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const config = join(dir, "prometheus.yml");
      writeFileSync(
        config,
        [
          "global:",
          "  scrape_interval: 1s",
          "scrape_configs:",
          "  - job_name: kalman",
          "    scrape_interval: 1s",
          `    metrics_path: ${target.pathname}`,
          "    static_configs:",
          `      - targets: ["${target.host}"]`,
          "",
        ].join("\n"),
      );
      const webPort = await freePort();
      let stderr = "";
      const child: ChildProcess = spawn(
        prometheusBin,
        [
          `--config.file=${config}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${webPort}`,
          "--log.level=warn",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      child.stderr?.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const pid = child.pid as number;
      cleanups.push(async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        process.kill(pid, "SIGTERM");
        const timer = setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGKILL");
        }, 5000);
        await exited;
        clearTimeout(timer);
      });

      const api = `http://127.0.0.1:${webPort}/api/v1/query`;
      const query = async (q: string) => {
        const res = await fetch(`${api}?query=${encodeURIComponent(q)}`);
        const body = (await res.json()) as {
          status: string;
          data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
        };
        return body.data?.result ?? [];
      };
      const byEdge = (rows: { metric: Record<string, string>; value: [number, string] }[]) =>
        Object.fromEntries(rows.map((r) => [`${r.metric.client} -> ${r.metric.server}`, Number(r.value[1])]));

      const deadline = Date.now() + 60_000;
      let rows: { metric: Record<string, string>; value: [number, string] }[] = [];
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`);
        try {
          rows = await query("sum by (client, server) (traces_service_graph_request_total)");
          if (rows.length >= 2) break;
        } catch {
          // not up yet
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(byEdge(rows)).toEqual({ "a -> b": 3, "a -> 10.0.0.3:6379": 1 });
      expect(byEdge(await query("sum by (client, server) (traces_service_graph_request_failed_total)"))).toEqual({
        "a -> b": 1,
      });
      const count = await query('sum(http_server_request_duration_seconds_count{service_name="b"})');
      expect(Number(count[0]?.value[1])).toBe(3);
      const le = await query(
        'sum by (le) (traces_service_graph_request_server_seconds_bucket{client="a",server="b",le="0.025"})',
      );
      expect(Number(le[0]?.value[1])).toBe(2);
    },
    90_000,
  );
});
