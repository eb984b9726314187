// Process selection by K8s namespace and pod labels: real processes in containerd-like cgroups whose
// paths carry the container ids of the recorded pod list, a real PodWatcher against a local fake API
// server, and `kalman run` tracing only the pods a rule names. Without a cluster such a rule is a
// configuration error.
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, freePort, waitForPort } from "@kalman/examples";
import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterAll, describe, expect, it } from "vitest";
import { PodWatcher } from "../src/k8s/index.js";
import { K8S_SELECTION_NEEDS_CLUSTER, ProcessSelector } from "../src/selection/index.js";
import { FakeK8sApi } from "./support/fake-k8s-api.js";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
// container ids of the fixtures: checkout (shop, app=checkout), postgres-0 (shop, app=postgres),
// and report (batch), which only the watch adds
const CHECKOUT = "c0ffee11".repeat(8);
const POSTGRES = "5eed0002".repeat(8);
const REPORT = "0bad0004".repeat(8);
const cgroupRoot = `/sys/fs/cgroup/pids/kalman-k8s-selection-${process.pid}`;

const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = once(c, "exit");
      c.kill("SIGKILL");
      await exited;
    }
  }
  while (cleanups.length) await cleanups.pop()?.();
  rmCgroups();
});

function rmCgroups(): void {
  let scopes: string[] = [];
  try {
    scopes = spawnSync("ls", [cgroupRoot], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((n) => n.endsWith(".scope"));
  } catch {
    return;
  }
  for (const d of [...scopes.map((s) => join(cgroupRoot, s)), cgroupRoot]) {
    try {
      rmdirSync(d);
    } catch {
      // absent, or a process is still being reaped
    }
  }
}

/** Moves a process into a containerd-like cgroup whose path carries `containerId`. */
function intoContainer(pid: number, containerId: string): void {
  const scope = `${cgroupRoot}/cri-containerd-${containerId}.scope`;
  mkdirSync(scope, { recursive: true });
  writeFileSync(`${scope}/cgroup.procs`, String(pid));
}

/** A sleeping process, in the container when one is given. */
function sleeper(containerId?: string): number {
  const child = spawn("sleep", ["120"], { stdio: "ignore" });
  children.push(child);
  const pid = child.pid as number;
  if (containerId) intoContainer(pid, containerId);
  return pid;
}

async function until(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function watcher(api: FakeK8sApi): Promise<PodWatcher> {
  const server = await api.start();
  cleanups.push(() => api.stop());
  const w = new PodWatcher({ connection: { server, source: "test" }, nodeName: "node-a", retryMs: 50 });
  cleanups.push(() => w.stop());
  await w.start();
  return w;
}

function kalman(args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000, env });
}

describe("K8s selection rules without a cluster", () => {
  const noCluster = {
    ...process.env,
    KUBECONFIG: undefined,
    KUBERNETES_SERVICE_HOST: undefined,
    KALMAN_K8S: undefined,
  };

  it("the selector refuses K8s rules when it has no pod watcher", () => {
    expect(() => new ProcessSelector({ include: [{ k8sNamespace: "shop" }] })).toThrow(K8S_SELECTION_NEEDS_CLUSTER);
    expect(() => new ProcessSelector({ exclude: [{ k8sPodLabels: { app: "x" } }] })).toThrow(/needs a cluster/);
    // other rules do not need one
    expect(new ProcessSelector({ include: [{ exePath: "*/nginx" }] }).describe()).toContain("exe */nginx");
  });

  it("kalman run exits 2 naming the key and the fix, before attaching anything", () => {
    const r = kalman(["run", "--k8s-namespace", "shop", "--duration", "1", "--quiet"], noCluster);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("kalman run: invalid configuration");
    expect(r.stderr).toContain(
      "selection.include[0].k8sNamespace: matching on K8s namespace or pod labels needs a cluster",
    );
    expect(r.stderr).toContain("(from flag --k8s-namespace)");
    expect(r.stderr).toContain("fix: run Kalman in the cluster");
    expect(r.stderr).not.toContain("attached");
  });

  it("a YAML exclude rule on pod labels is an error too when K8s is turned off, even with KUBECONFIG set", () => {
    const dir = mkdtempSync(join(tmpdir(), "kalman-k8s-sel-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "kalman.yaml");
    writeFileSync(file, "selection:\n  exclude:\n    - k8sPodLabels:\n        app: postgres\n");
    new FakeK8sApi([], []).writeKubeconfig(join(dir, "kubeconfig"), "http://127.0.0.1:9");
    const r = kalman(["run", "--config", file, "--duration", "1"], {
      ...noCluster,
      KUBECONFIG: join(dir, "kubeconfig"),
      KALMAN_K8S: "off",
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      "selection.exclude[0].k8sPodLabels: matching on K8s namespace or pod labels needs a cluster",
    );
    expect(r.stderr).toContain(`(from ${file}:2)`);
    // a label map that is not one is named as such
    writeFileSync(file, "selection:\n  include:\n    - k8sPodLabels: [app]\n");
    const bad = kalman(["run", "--config", file], noCluster);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("selection.include[0].k8sPodLabels: expected label: value pairs");
  });
});

describePrivileged("selection by K8s namespace and pod labels", receiverPreflight, () => {
  it("matches processes by their pod's namespace and labels (globs), through the container id of their cgroup", async () => {
    const w = await watcher(new FakeK8sApi(["pods-list.json"], ["hold"]));
    const checkout = sleeper(CHECKOUT);
    const postgres = sleeper(POSTGRES);
    const unknownContainer = sleeper("ab".repeat(32));
    const plain = sleeper();
    const all = { checkout, postgres, unknownContainer, plain };
    const picked = (opts: ConstructorParameters<typeof ProcessSelector>[0]) => {
      const s = new ProcessSelector({ ...opts, pods: w, excludeTelemetryAgents: false });
      return Object.entries(all)
        .filter(([, pid]) => s.decide(pid))
        .map(([name]) => name);
    };
    expect(picked({ include: [{ k8sNamespace: "shop" }] })).toEqual(["checkout", "postgres"]);
    expect(picked({ include: [{ k8sNamespace: "sh*" }] })).toEqual(["checkout", "postgres"]);
    expect(picked({ include: [{ k8sNamespace: "batch" }] })).toEqual([]);
    expect(picked({ include: [{ k8sPodLabels: { app: "check*" } }] })).toEqual(["checkout"]);
    // every label of the rule must be there
    expect(picked({ include: [{ k8sPodLabels: { app: "checkout", "app.kubernetes.io/part-of": "shop" } }] })).toEqual([
      "checkout",
    ]);
    expect(picked({ include: [{ k8sPodLabels: { app: "checkout", tier: "*" } }] })).toEqual([]);
    // fields of one rule combine with AND, rules with OR
    expect(picked({ include: [{ k8sNamespace: "shop", pids: [postgres] }, { pids: [plain] }] })).toEqual([
      "postgres",
      "plain",
    ]);
    expect(picked({ exclude: [{ k8sPodLabels: { app: "postgres" } }] })).toEqual([
      "checkout",
      "unknownContainer",
      "plain",
    ]);
  });

  it("decides again soon when the pod is not known yet, and follows the watch (pods added and deleted)", async () => {
    const api = new FakeK8sApi(["pods-list.json"], ["pods-watch-1.jsonl", "hold"]);
    const release = api.holdEvents();
    const w = await watcher(api);
    const report = sleeper(REPORT);
    const postgres = sleeper(POSTGRES);
    const s = new ProcessSelector({
      include: [{ k8sNamespace: "batch" }, { k8sPodLabels: { app: "postgres" } }],
      pods: w,
      recheckMs: 5000,
      podRetryMs: 200,
    });
    const t0 = 1_000_000;
    s.setNow(t0);
    expect(s.accept(report)).toBe(false); // the report pod is not listed yet
    expect(s.accept(postgres)).toBe(true);
    release(); // the watch: report ADDED, postgres-0 DELETED
    await until("the report pod from the watch", () => w.podOfContainer(REPORT) !== undefined);
    await until("postgres-0 deleted", () => w.podOfContainer(POSTGRES) === undefined);
    s.setNow(t0 + 100);
    expect(s.accept(report)).toBe(false); // still the cached decision
    s.setNow(t0 + 250);
    expect(s.accept(report)).toBe(true); // decided again after podRetryMs: the pod is known now
    // a decision made on a known pod lasts recheckMs
    expect(s.accept(postgres)).toBe(true);
    s.setNow(t0 + 5001);
    expect(s.accept(postgres)).toBe(false); // its pod is gone
    expect(s.stats()).toMatchObject({ processesSelected: 1, processesFiltered: 1 });
  });

  it("kalman run --k8s-namespace --k8s-pod-labels traces only the named pod's process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kalman-k8s-sel-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const api = new FakeK8sApi(["pods-list.json"], ["hold"]);
    const server = await api.start();
    cleanups.push(() => api.stop());
    api.writeKubeconfig(join(dir, "kubeconfig"), server);

    // two real servers: one in the checkout pod's container, one in postgres-0's (same namespace)
    const servers: Record<string, { port: number; pid: number }> = {};
    for (const [name, id] of [
      ["checkout", CHECKOUT],
      ["postgres", POSTGRES],
    ] as const) {
      const port = await freePort();
      const py = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], {
        stdio: "ignore",
      });
      children.push(py);
      intoContainer(py.pid as number, id);
      await waitForPort(port);
      servers[name] = { port, pid: py.pid as number };
    }
    const checkout = servers.checkout as { port: number; pid: number };
    const postgres = servers.postgres as { port: number; pid: number };
    const output = join(dir, "requests.jsonl");
    const agent = spawn(
      process.execPath,
      [
        cli,
        "run",
        "--k8s-namespace",
        "shop",
        "--k8s-pod-labels",
        "app=check*",
        "--ports",
        `${checkout.port},${postgres.port}`,
        "--quiet",
        "--no-tls",
        "--status-interval",
        "0",
        "--duration",
        "8",
        "--output",
        output,
        "--data-dir",
        join(dir, "data"),
      ],
      {
        cwd: dir,
        env: {
          ...process.env,
          KUBECONFIG: join(dir, "kubeconfig"),
          KUBERNETES_SERVICE_HOST: "",
          KALMAN_K8S: undefined,
          NODE_NAME: "node-a",
          OTEL_EXPORTER_OTLP_ENDPOINT: undefined,
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    children.push(agent);
    let stderr = "";
    agent.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = once(agent, "exit");
    await until("the agent to attach", () => stderr.includes("attached and exporting"), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${stderr}`);
    });
    expect(stderr).toContain("processes with K8s namespace shop and pod labels app=check*");
    expect(stderr).toContain("K8s pods → 2 on this node");
    for (let i = 0; i < 3; i++) {
      for (const port of [checkout.port, postgres.port])
        await new Promise((r) =>
          execFile("curl", ["-s", "-o", "/dev/null", "--max-time", "5", `http://127.0.0.1:${port}/`], r),
        );
    }
    const [code] = (await exited) as [number | null];
    expect(code, stderr).toBe(0);
    const records = readFileSync(output, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as RequestRecord);
    // the checkout server's requests, seen at the server; nothing of postgres-0's server, nor of curl
    expect(records.length).toBe(3);
    for (const r of records) {
      expect(r).toMatchObject({ pid: checkout.pid, observationPoint: "server", serverPort: checkout.port });
    }
    expect(stderr).toMatch(/selection filtered [1-9]\d* events of [1-9]\d* processes/);
  }, 60_000);
});
