import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningServer, startNginx } from "@kalman/examples";
import { afterAll, describe, expect, it } from "vitest";
import { cli, spawnKalman } from "./support/kalman-process.js";

const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";
const tmp = mkdtempSync(join(tmpdir(), "kalman-run-"));
let nginx: RunningServer | undefined;
afterAll(async () => {
  await nginx?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("kalman run", () => {
  it("rejects an unknown protocol and a bad port list, naming the option, before attaching anything", () => {
    const proto = spawnSync(process.execPath, [cli, "run", "--protocols", "gopher", "--duration", "1"], {
      encoding: "utf8",
    });
    expect(proto.status).toBe(2);
    expect(proto.stderr).toContain("protocols[0]: unknown protocol 'gopher'; known: http1, http2, grpc,");
    expect(proto.stderr).toContain("(from flag --protocols)");
    expect(proto.stderr).not.toContain("attached");
    const ports = spawnSync(process.execPath, [cli, "run", "--ports", "80,abc"], { encoding: "utf8" });
    expect(ports.status).toBe(2);
    expect(ports.stderr).toContain('ebpf.ports: expected "80" or "8000-8100"');
    expect(ports.stderr).toContain("(from flag --ports)");
  });

  it.runIf(privileged)("prints one line per request and writes each record as a JSON line", async () => {
    nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
    const out = join(tmp, "requests.jsonl");
    const k = spawnKalman(["run", "--ports", String(nginx.port), "--duration", "4", "--output", out], { cwd: tmp });
    // wait until attached, then send traffic
    await k.waitForStderr("attached");
    expect(k.stderr()).toContain("eBPF programs attached");
    for (const path of ["/one", "/two", "/three"])
      execFileSync("curl", ["-s", "-o", "/dev/null", `http://127.0.0.1:${nginx.port}${path}`]);
    const code = await k.exited;
    const stdout = k.stdout();
    expect(code).toBe(0);
    expect(stdout.match(/^http1 +GET \/(one|two|three) +200 ok .*\[server\]$/gm)).toHaveLength(3);
    expect(stdout.match(/\[client\]$/gm)).toHaveLength(3);
    const records = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(records).toHaveLength(6);
    expect(
      records
        .filter((r) => r.observationPoint === "server")
        .map((r) => r.resource)
        .sort(),
    ).toEqual(["/one", "/three", "/two"]);
    expect(records.every((r) => r.protocol === "http1" && r.code === 200 && r.serverPort === nginx?.port)).toBe(true);
    expect(k.stderr()).toMatch(/stopped\. 6 requests recorded; kernel lost 0/);
    // the same records as OTLP logs (the embedded default: OTLP-JSON lines), linked to their traces
    const logLines = readFileSync(join(tmp, "kalman-data", "logs.jsonl"), "utf8")
      .trim()
      .split("\n");
    const logRecords = logLines.flatMap((l) =>
      JSON.parse(l).resourceLogs.flatMap((rl: { scopeLogs: Array<{ logRecords: unknown[] }> }) =>
        rl.scopeLogs.flatMap((sl) => sl.logRecords),
      ),
    ) as Array<{ body: { stringValue: string }; traceId: string }>;
    expect(logRecords).toHaveLength(6);
    expect(logRecords.map((r) => r.body.stringValue).filter((b) => b.startsWith("GET /one 200"))).toHaveLength(2);
    expect(logRecords.every((r) => /^[0-9a-f]{32}$/.test(r.traceId))).toBe(true);
  });

  it.runIf(privileged)(
    "OTEL_LOGS_EXPORTER=none and OTEL_TRACES_EXPORTER=none turn one signal off and leave the other whole",
    async () => {
      nginx ??= await startNginx(`    location / { return 200 "ok\\n"; }`);
      const port = nginx.port;
      const runWith = async (env: Record<string, string>, dir: string) => {
        const k = spawnKalman(["run", "--ports", String(port), "--quiet", "--duration", "3", "--data-dir", dir], {
          cwd: tmp,
          env: { ...process.env, ...env },
        });
        await k.waitForStderr("attached");
        for (const path of ["/a", "/b"])
          execFileSync("curl", ["-s", "-o", "/dev/null", `http://127.0.0.1:${port}${path}`]);
        expect(await k.exited).toBe(0);
        return k.stderr();
      };
      const lines = (file: string) => readFileSync(file, "utf8").trim().split("\n").filter(Boolean);
      const countOf = (file: string, field: "resourceSpans" | "resourceLogs", leaf: "spans" | "logRecords") =>
        lines(file)
          .flatMap((l) => JSON.parse(l)[field])
          .flatMap((r: { scopeSpans?: unknown[]; scopeLogs?: unknown[] }) => r.scopeSpans ?? r.scopeLogs ?? [])
          .flatMap((s: Record<string, unknown[]>) => s[leaf] ?? []).length;

      const noLogs = join(tmp, "no-logs");
      const stderr1 = await runWith({ OTEL_LOGS_EXPORTER: "none" }, noLogs);
      expect(stderr1).toContain("logs → off (OTEL_LOGS_EXPORTER=none)");
      expect(countOf(join(noLogs, "traces.jsonl"), "resourceSpans", "spans")).toBe(4);
      expect(existsSync(join(noLogs, "logs.jsonl"))).toBe(false);
      expect(stderr1).not.toContain("logs exported");

      const noTraces = join(tmp, "no-traces");
      const stderr2 = await runWith({ OTEL_TRACES_EXPORTER: "none" }, noTraces);
      expect(stderr2).toContain("traces → off (OTEL_TRACES_EXPORTER=none)");
      // the final line accounts for both sinks
      expect(stderr2).toMatch(/logs exported 4, dropped 0; spans exported 0, dropped 0\n/);
      expect(existsSync(join(noTraces, "traces.jsonl"))).toBe(false);
      // the request logs still carry the trace context the correlator decided
      const logs = lines(join(noTraces, "logs.jsonl"))
        .flatMap((l) => JSON.parse(l).resourceLogs)
        .flatMap((r: { scopeLogs: Array<{ logRecords: Array<{ traceId: string }> }> }) => r.scopeLogs)
        .flatMap((s: { logRecords: Array<{ traceId: string }> }) => s.logRecords);
      expect(logs).toHaveLength(4);
      expect(logs.every((r) => /^[0-9a-f]{32}$/.test(r.traceId))).toBe(true);
    },
  );

  it.runIf(privileged)(
    "SIGTERM flushes and detaches; a second SIGTERM exits at once; no program stays loaded",
    async () => {
      const k = spawnKalman(
        ["run", "--ports", "1", "--quiet", "--duration", "60", "--output", join(tmp, "sig.jsonl")],
        {
          cwd: tmp,
        },
      );
      const child = k.child;
      await k.waitForStderr("attached");
      const exited = k.exited;
      const t0 = Date.now();
      child.kill("SIGTERM");
      child.kill("SIGTERM");
      await exited;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(k.stderr()).toContain("flushing and detaching");
      // whatever path it took, the kernel holds no program of a dead agent
      const progs = execFileSync("bpftool", ["prog", "list"], { encoding: "utf8" });
      expect(progs).not.toMatch(new RegExp(`pids node\\(${child.pid}\\)`));
    },
  );
});
