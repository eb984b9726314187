// Configuration: file < env < flags, and every error names the key, the source and the fix, exits
// with 2, and leaves the kernel alone. The CLI runs under strace (bpf syscalls only): an invalid
// config must make no BPF_PROG_LOAD at all, while the same command with a valid config does.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, freePort, startNginx } from "@kalman/examples";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { OtlpGrpcReceiver } from "../../otlp-bridge/test/support/otlp-receiver.js";
import { exporterEnv } from "../src/commands/run.js";
import { ConfigError, loadConfig, printConfig } from "../src/config/index.js";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), `kalman-config-${process.pid}-`));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** This process's environment without any Kalman or OTel setting, so each test sets exactly what it means. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("OTEL_") && !k.startsWith("KALMAN_")) env[k] = v;
  }
  return { ...env, ...extra };
}

let files = 0;
function yamlFile(text: string): string {
  const f = join(tmp, `c${files++}.yaml`);
  writeFileSync(f, text);
  return f;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** BPF_PROG_LOAD calls the agent made. */
  progLoads: number;
}

let runs = 0;
/** `kalman <args>` under strace, counting the programs it loaded into the kernel. */
function kalman(args: string[], env: Record<string, string> = {}): Run {
  const log = join(tmp, `strace-${runs++}.txt`);
  const r = spawnSync(
    "strace",
    ["-f", "-qq", "--seccomp-bpf", "-e", "trace=bpf", "-o", log, process.execPath, cli, ...args],
    { encoding: "utf8", env: cleanEnv(env), cwd: tmp, timeout: 60_000 },
  );
  if (r.error)
    throw new Error(`cannot run strace (apt-get install strace; scripts/setup installs it): ${r.error.message}`);
  const trace = readFileSync(log, "utf8");
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, progLoads: trace.split("BPF_PROG_LOAD").length - 1 };
}

function expectRejected(r: Run, ...fragments: string[]): void {
  expect(r.stderr).toContain("kalman run: invalid configuration");
  for (const f of fragments) expect(r.stderr).toContain(f);
  expect(r.status).toBe(2);
  expect(r.stderr).not.toContain("attached");
  expect(r.progLoads).toBe(0);
}

describe("kalman run configuration errors: exit 2, the key, the source, the fix, nothing loaded", () => {
  it("a typo in a key: did you mean, with the file and line", () => {
    const f = yamlFile('otlp:\n  startupCheck: off\nselecton:\n  include:\n    - exePath: "*/nginx"\n');
    expectRejected(
      kalman(["run", "--config", f, "--duration", "1"]),
      'selecton: unknown key; did you mean "selection"?',
      `(from ${f}:3) fix: rename it to "selection"`,
    );
    const nested = yamlFile("ebpf:\n  captureByte: 512\n");
    expectRejected(
      kalman(["run", "--config", nested]),
      'ebpf.captureByte: unknown key; did you mean "captureBytes"?',
      `(from ${nested}:2)`,
    );
  });

  it("a wrong type: what was expected, from the file's line", () => {
    const f = yamlFile("ebpf:\n  captureBytes: lots\n");
    expectRejected(
      kalman(["run", "--config", f]),
      "ebpf.captureBytes: expected an integer from 0 to 16384",
      `(from ${f}:2) fix: correct that line of the config file`,
    );
    // the same key from a variable names the variable
    expectRejected(
      kalman(["run"], { KALMAN_CAPTURE_BYTES: "99999" }),
      "ebpf.captureBytes: expected an integer from 0 to 16384",
      "(from env KALMAN_CAPTURE_BYTES) fix: correct or unset KALMAN_CAPTURE_BYTES",
    );
  });

  it("a bad port range in a selection rule", () => {
    const f = yamlFile('selection:\n  include:\n    - ports: "80-"\n');
    expectRejected(
      kalman(["run", "--config", f]),
      'selection.include[0].ports: expected "80" or "8000-8100" (a port, a range, or a comma-separated list of them), got "80-"',
      `(from ${f}:3)`,
    );
  });

  it("an unknown protocol lists the known ones", () => {
    const f = yamlFile("protocols: [http1, gopher]\n");
    expectRejected(
      kalman(["run", "--config", f]),
      "protocols[1]: unknown protocol 'gopher'; known: http1, http2, grpc, dns, redis, mysql, postgresql, kafka, mqtt",
    );
    expectRejected(
      kalman(["run", "--otlp-protocol", "http/json"]),
      'otlp.protocol: unknown OTLP protocol "http/json"; known: grpc, http/protobuf',
      "(from flag --otlp-protocol)",
    );
  });

  it("a malformed endpoint URL, and an unreachable one (startup check)", () => {
    expectRejected(
      kalman(["run"], { OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" }),
      'otlp.endpoint: expected an http:// or https:// URL like http://collector:4317, got "collector:4317"',
      "(from env OTEL_EXPORTER_OTLP_ENDPOINT) fix: correct or unset OTEL_EXPORTER_OTLP_ENDPOINT",
    );
    expectRejected(
      kalman(["run", "--otlp-endpoint", "http://127.0.0.1:1"]),
      "otlp.endpoint: OTLP endpoint http://127.0.0.1:1 is unreachable: cannot connect to 127.0.0.1:1 (ECONNREFUSED)",
      "(from flag --otlp-endpoint) fix: start the Collector/backend or correct the URL",
      "otlp.startupCheck: warn",
    );
  });

  it("a missing config file and broken YAML", () => {
    expectRejected(kalman(["run", "--config", join(tmp, "nope.yaml")]), "cannot read", "(ENOENT)");
    const f = yamlFile("otlp:\n  endpoint: [unclosed\n");
    expectRejected(kalman(["run", "--config", f]), "(config file): not valid YAML", `(from ${f}:`);
  });
});

describePrivileged("kalman run with a valid configuration", receiverPreflight, () => {
  it("loads the tracer (the control for the checks above) and starts despite an unreachable endpoint when told to", async () => {
    const port = await freePort();
    const r = kalman(
      ["run", "--ports", String(port), "--duration", "1", "--quiet", "--otlp-endpoint", `http://127.0.0.1:${port}`],
      { KALMAN_OTLP_STARTUP_CHECK: "warn" },
    );
    expect(r.stderr).toContain(`warning: otlp.endpoint: OTLP endpoint http://127.0.0.1:${port} is unreachable`);
    expect(r.stderr).toMatch(/attached and exporting \d+ ms after start/);
    expect(r.status).toBe(0);
    expect(r.progLoads).toBeGreaterThan(0);
  });
});

describePrivileged("OTLP settings from the YAML file reach the exporters", receiverPreflight, () => {
  it("endpoint, headers and resource attributes from the file; the backend's own side of the exports is not traced", async () => {
    const receiver = await OtlpGrpcReceiver.create();
    const nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
    const nginxPids = [
      nginx.pid,
      ...readFileSync(`/proc/${nginx.pid}/task/${nginx.pid}/children`, "utf8").trim().split(/\s+/),
    ];
    try {
      const f = yamlFile(
        [
          "otlp:",
          `  tracesEndpoint: ${receiver.endpoint}`,
          "  protocol: grpc",
          "  headers:",
          "    x-tenant: team-a",
          "service:",
          "  resourceAttributes:",
          "    deployment.environment: ci",
          "selection:",
          "  include:",
          // nginx, and this process: it hosts the OTLP receiver, whose side of the exports must not come back as spans
          `    - pids: [${[...nginxPids, process.pid].join(", ")}]`,
          "",
        ].join("\n"),
      );
      const agent = spawn(process.execPath, [cli, "run", "--config", f, "--quiet", "--duration", "30"], {
        cwd: tmp,
        env: cleanEnv(),
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      agent.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      for (let i = 0; i < 200 && !stderr.includes("attached and exporting") && agent.exitCode === null; i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(stderr).toContain(`traces → otlp-grpc ${receiver.endpoint}`);
      for (let i = 0; i < 3; i++)
        execFileSync("curl", ["-s", "-o", "/dev/null", `http://127.0.0.1:${nginx.port}/x${i}`]);
      await receiver.waitFor((spans) => spans.filter((sp) => sp.name.startsWith("GET /x")).length >= 3);
      // a few more export rounds, each of which the receiver's side would turn into a span if it were traced
      await new Promise((r) => setTimeout(r, 2500));
      const exited = once(agent, "exit");
      agent.kill("SIGTERM");
      await exited;
      expect(receiver.requests[0]?.headers["x-tenant"]).toBe("team-a");
      const served = receiver.spans.filter((sp) => sp.name.startsWith("GET /x"));
      expect(served.every((sp) => sp.resource["deployment.environment"] === "ci")).toBe(true);
      expect(receiver.spans.filter((sp) => sp.name.includes("TraceService"))).toEqual([]);
      expect(stderr).toMatch(/[1-9]\d* requests to our own OTLP backend/);
    } finally {
      await nginx.stop();
      await receiver.stop();
    }
  });
});

describe("precedence: defaults < file < env < flags", () => {
  const file = () =>
    yamlFile(
      "ebpf:\n  captureBytes: 100\notlp:\n  endpoint: http://file.invalid:4317\n  headers:\n    api-key: s3cret-from-file\n",
    );

  it("--print-config shows the flag's value over the env's over the file's, with sources, secrets redacted", () => {
    const f = file();
    const all = kalman(["run", "--config", f, "--print-config", "--capture-bytes", "300"], {
      KALMAN_CAPTURE_BYTES: "200",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://env.invalid:4318",
    });
    expect(all.status).toBe(0);
    expect(all.progLoads).toBe(0);
    const printed = parse(all.stdout);
    expect(printed.ebpf.captureBytes).toBe(300);
    expect(printed.otlp.endpoint).toBe("http://env.invalid:4318");
    expect(printed.otlp.headers).toEqual({ "api-key": "<redacted>" });
    expect(all.stdout).not.toContain("s3cret");
    expect(all.stdout).toContain("captureBytes: 300 # flag --capture-bytes");
    expect(all.stdout).toContain("endpoint: http://env.invalid:4318 # env OTEL_EXPORTER_OTLP_ENDPOINT");
    // defaults are there too
    expect(printed.packets).toEqual({
      enabled: false,
      interfaces: [],
      netns: [],
      filter: "",
      snapLen: 256,
      l7: true,
      flowLogIntervalSeconds: 60,
    });

    const envOverFile = kalman(["run", "--print-config"], { KALMAN_CONFIG: f, KALMAN_CAPTURE_BYTES: "200" });
    expect(parse(envOverFile.stdout).ebpf.captureBytes).toBe(200);
    expect(envOverFile.stdout).toContain("captureBytes: 200 # env KALMAN_CAPTURE_BYTES");

    const fileOnly = kalman(["run", "--print-config", "--config", f]);
    expect(parse(fileOnly.stdout).ebpf.captureBytes).toBe(100);
    expect(fileOnly.stdout).toContain(`captureBytes: 100 # ${f}:2`);

    const defaults = kalman(["run", "--print-config"]);
    expect(parse(defaults.stdout).ebpf.captureBytes).toBe(1024);
    expect(parse(defaults.stdout).otlp.endpoint).toBeUndefined();
  });

  it("the API: selection flags build one include rule over the file's list; OTel variables map to otlp keys", () => {
    const f = yamlFile('selection:\n  include:\n    - exePath: "*/python3*"\n  exclude:\n    - pids: [1]\n');
    const fromFile = loadConfig({ file: f, env: {} });
    expect(fromFile.config.selection.include).toEqual([{ exePath: "*/python3*" }]);
    const overridden = loadConfig({
      file: f,
      env: { KALMAN_PIDS: "7" },
      flags: { exe: "*/nginx", "open-ports": "80" },
    });
    expect(overridden.config.selection.include).toEqual([{ exePath: "*/nginx", ports: "80" }]);
    expect(overridden.config.selection.exclude).toEqual([{ pids: [1] }]);
    expect(overridden.sources.get("selection.include")).toBe("flag --exe + --open-ports");
    const otel = loadConfig({
      env: {
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/v1/traces",
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc,x-tenant=a",
        OTEL_SERVICE_NAME: "edge-agent",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=prod",
      },
    }).config;
    expect(otel.otlp.tracesEndpoint).toBe("http://t:4318/v1/traces");
    expect(otel.otlp.headers).toEqual({ authorization: "Bearer abc", "x-tenant": "a" });
    expect(otel.service).toEqual({ name: "edge-agent", resourceAttributes: { "deployment.environment": "prod" } });
    const printed = printConfig(loadConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20abc" } }));
    expect(printed).not.toContain("abc");
  });

  it("OTEL_<SIGNAL>_EXPORTER turns a signal off; a value other than otlp or none names the key and the fix", () => {
    const off = loadConfig({ env: { OTEL_TRACES_EXPORTER: "none", OTEL_LOGS_EXPORTER: "otlp" } });
    expect(off.config.otlp.tracesExporter).toBe("none");
    expect(off.config.otlp.logsExporter).toBe("otlp");
    expect(off.config.otlp.metricsExporter).toBe("otlp");
    expect(off.sources.get("otlp.tracesExporter")).toContain("OTEL_TRACES_EXPORTER");
    // the exporters see "none" for a signal turned off, and the user's own value otherwise
    const env = exporterEnv(off.config, { OTEL_LOGS_EXPORTER: "otlp" });
    expect(env.OTEL_TRACES_EXPORTER).toBe("none");
    expect(env.OTEL_LOGS_EXPORTER).toBe("otlp");
    expect(env.OTEL_METRICS_EXPORTER).toBeUndefined();
    // a file's "otlp" wins over nothing and leaves no "none" behind
    const fromFile = loadConfig({ file: yamlFile("otlp:\n  logsExporter: otlp\n"), env: {} }).config;
    expect(exporterEnv(fromFile, { OTEL_LOGS_EXPORTER: "none" }).OTEL_LOGS_EXPORTER).toBeUndefined();
    try {
      loadConfig({ env: { OTEL_METRICS_EXPORTER: "prometheus" } });
      expect.unreachable("prometheus is not an OTLP exporter value here");
    } catch (e) {
      const p = (e as ConfigError).problems[0];
      expect(p?.key).toBe("otlp.metricsExporter");
      expect(String((e as ConfigError).message)).toContain("set prometheus.port (KALMAN_PROMETHEUS_PORT) instead");
    }
  });

  it("memory.heapGrowthPercent: 0 (V8's own) by default, from env or flag, an integer from 0 to 1000", () => {
    expect(loadConfig({ env: {} }).config.memory.heapGrowthPercent).toBe(0);
    expect(loadConfig({ env: { KALMAN_HEAP_GROWTH_PERCENT: "100" } }).config.memory.heapGrowthPercent).toBe(100);
    expect(loadConfig({ env: {}, flags: { "heap-growth-percent": "40" } }).config.memory.heapGrowthPercent).toBe(40);
    try {
      loadConfig({ env: { KALMAN_HEAP_GROWTH_PERCENT: "2.5" } });
      expect.unreachable("not an integer");
    } catch (e) {
      const p = (e as ConfigError).problems[0];
      expect(p?.key).toBe("memory.heapGrowthPercent");
      expect(String((e as ConfigError).message)).toContain("expected an integer from 0 to 1000");
      expect(String((e as ConfigError).message)).toContain("KALMAN_HEAP_GROWTH_PERCENT");
    }
  });

  it("unknown KALMAN_ variables warn with a suggestion; errors are collected, not first-only", () => {
    const warned = loadConfig({ env: { KALMAN_CAPTUR_BYTES: "5" } });
    expect(warned.warnings).toEqual([
      "unknown variable KALMAN_CAPTUR_BYTES ignored; did you mean KALMAN_CAPTURE_BYTES?",
    ]);
    try {
      loadConfig({ env: { KALMAN_CAPTURE_BYTES: "x", KALMAN_STATUS_INTERVAL: "-1" } });
      expect.unreachable("invalid values must throw");
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.key)).toEqual(["ebpf.captureBytes", "status.intervalSeconds"]);
    }
  });
});
