// K8s enrichment against a local HTTP server answering the pods API from recorded responses:
// list, watch (ADDED / MODIFIED / DELETED / BOOKMARK), 410 Gone -> relist; then `kalman run` with a
// real process in a container-like cgroup: its pod, process and OTEL_RESOURCE_ATTRIBUTES tags land on
// the spans and the metrics it exports.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForPort } from "@kalman/examples";
import { ServiceResolver } from "@kalman/span-correlator";
import { afterAll, describe, expect, it } from "vitest";
import { OtlpMetricsGrpcReceiver } from "../../otlp-bridge/test/support/otlp-metrics-receiver.js";
import { OtlpGrpcReceiver } from "../../otlp-bridge/test/support/otlp-receiver.js";
import { fromKubeconfig, PodWatcher, workloadOf } from "../src/k8s/index.js";
import { FakeK8sApi } from "./support/fake-k8s-api.js";

const CHECKOUT_CONTAINER = "c0ffee11".repeat(8);

async function until(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

describe("kubeconfig", () => {
  it("reads the current context's server, token and CA from a YAML kubeconfig", () => {
    const c = fromKubeconfig(
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- cluster:",
        "    certificate-authority-data: aGVsbG8=",
        "    server: https://192.168.49.2:8443",
        "  name: minikube",
        "- cluster:",
        "    server: https://other:6443",
        "  name: other",
        "contexts:",
        "- context:",
        "    cluster: minikube",
        "    namespace: default",
        "    user: minikube",
        "  name: minikube",
        "current-context: minikube",
        "preferences: {}",
        "users:",
        "- name: minikube",
        "  user:",
        '    token: "abc.def"',
      ].join("\n"),
    );
    expect(c.server).toBe("https://192.168.49.2:8443");
    expect(c.token).toBe("abc.def");
    expect(c.ca?.toString()).toBe("hello");
    expect(() => fromKubeconfig('{"clusters":[],"contexts":[],"users":[],"current-context":"x"}')).toThrow(
      /no context named "x"/,
    );
  });

  it("names the workload from the controller owner", () => {
    expect(workloadOf([{ kind: "ReplicaSet", name: "api-5d8f9c7b6d", controller: true }], {})).toMatchObject({
      "k8s.deployment.name": "api",
      "k8s.replicaset.name": "api-5d8f9c7b6d",
    });
    expect(workloadOf([{ kind: "Job", name: "report-28573920", controller: true }], {})).toEqual({
      "k8s.job.name": "report-28573920",
      "k8s.cronjob.name": "report",
    });
    expect(workloadOf([{ kind: "DaemonSet", name: "kalman", controller: true }], {})).toEqual({
      "k8s.daemonset.name": "kalman",
    });
    expect(workloadOf([], {})).toEqual({});
  });
});

describe("PodWatcher against a local API server", () => {
  it("lists the node's pods, follows ADDED / MODIFIED / DELETED, and relists after 410 Gone", async () => {
    const api = new FakeK8sApi(
      ["pods-list.json", "pods-relist.json"],
      ["pods-watch-1.jsonl", "pods-watch-gone.jsonl", "hold-silent"],
    );
    const server = await api.start();
    cleanups.push(() => api.stop());
    const w = new PodWatcher({ connection: { server, source: "test" }, nodeName: "node-a", retryMs: 50 });
    cleanups.push(() => w.stop());
    await w.start();
    // after the list: checkout and postgres
    expect(w.synced).toBe(true);
    const checkout = w.podOfContainer(CHECKOUT_CONTAINER);
    expect(checkout?.name).toBe("checkout-7d9f8b6c5d-x2x4q");
    expect(checkout?.workload["k8s.deployment.name"]).toBe("checkout");

    // watch 1: report added, checkout relabelled, postgres deleted; watch 2: 410 -> relist
    await until("the relist after 410", () => w.stats().lists === 2);
    await until("the third watch request", () => api.requests.filter((r) => r.includes("watch=1")).length === 3);
    const s = w.stats();
    expect(s.gone).toBe(1);
    expect(s.events).toBeGreaterThanOrEqual(5);
    // the relist is the truth: postgres is back, the finished report pod is gone
    expect(w.podOfContainer("5eed0002".repeat(8))?.name).toBe("postgres-0");
    expect(w.podOfContainer("0bad0004".repeat(8))).toBeUndefined();
    expect(w.podOfContainer(CHECKOUT_CONTAINER)?.labels.version).toBe("v2");
    expect(s.pods).toBe(2);

    const pods = api.requests.filter((r) => r.startsWith("/api/v1/pods"));
    for (const r of pods) expect(r).toContain("fieldSelector=spec.nodeName%3Dnode-a");
    const watches = pods.filter((r) => r.includes("watch=1"));
    // each watch resumes from the last resourceVersion seen: the list's, the bookmark's, the relist's
    expect(watches.map((r) => new URLSearchParams(r.split("?")[1]).get("resourceVersion"))).toEqual([
      "1005",
      "1013",
      "1600",
    ]);
  });

  it("sees the intermediate states of the watch (ADDED then DELETED by a later relist)", async () => {
    const api = new FakeK8sApi(["pods-list.json"], ["pods-watch-1.jsonl", "hold-silent"]);
    const server = await api.start();
    cleanups.push(() => api.stop());
    const w = new PodWatcher({ connection: { server, source: "test" }, nodeName: "node-a", retryMs: 50 });
    cleanups.push(() => w.stop());
    await w.start();
    await until("the second watch", () => w.stats().watches === 2);
    const report = w.podOfContainer("0bad0004".repeat(8));
    expect(report?.workload).toMatchObject({ "k8s.job.name": "report-28573920", "k8s.cronjob.name": "report" });
    expect(report?.namespace).toBe("batch");
    expect(w.podOfContainer("5eed0002".repeat(8))).toBeUndefined(); // DELETED
    expect(w.podOfContainer(CHECKOUT_CONTAINER)?.labels.version).toBe("v2"); // MODIFIED
    // the enricher: k8s.* attributes and the workload as service.name
    const e = w.enricher()(1, { "container.id": CHECKOUT_CONTAINER });
    expect(e?.serviceName).toBe("checkout");
    expect(e?.attributes).toMatchObject({
      "k8s.pod.name": "checkout-7d9f8b6c5d-x2x4q",
      "k8s.pod.uid": "6f1e2d3c-0001-4a5b-8c9d-000000000001",
      "k8s.namespace.name": "shop",
      "k8s.node.name": "node-a",
      "k8s.deployment.name": "checkout",
      "k8s.container.name": "checkout",
      "k8s.pod.label.app": "checkout",
      "k8s.pod.label.version": "v2",
    });
    expect(w.enricher()(1, { "container.id": "ab".repeat(32) })).toEqual({ incomplete: true });
    expect(w.enricher()(1, {})).toBeUndefined();
  });

  it("stop() aborts a watch still waiting for its response headers", async () => {
    const api = new FakeK8sApi(["pods-list.json"], ["hold-silent"]);
    const server = await api.start();
    cleanups.push(() => api.stop());
    const w = new PodWatcher({ connection: { server, source: "test" }, nodeName: "node-a", retryMs: 50 });
    cleanups.push(() => w.stop());
    await w.start();
    await until("the watch request", () => api.requests.some((r) => r.includes("watch=1")));
    expect(api.heldClosed).toBe(0);
    w.stop();
    // the client side closes the connection: nothing of the watcher keeps `kalman run` from exiting
    await until("the held watch to be closed by the client", () => api.heldClosed === 1);
    expect(w.stats().watches).toBe(1);
  });
});

const cgroupDir = `/sys/fs/cgroup/pids/kalman-k8s-test-${process.pid}`;
const scope = `${cgroupDir}/cri-containerd-${CHECKOUT_CONTAINER}.scope`;

// The pod watch stays pending (the fake server holds it without answering): the agent must still exit.
describe("tags on real spans and metrics", () => {
  it("a python3 server in a pod's container cgroup: process, custom and K8s tags on its span and metric resources", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kalman-k8s-"));
    const children: ChildProcess[] = [];
    // one cleanup, in order: the processes must be gone before their cgroup can be removed
    cleanups.push(async () => {
      for (const c of children) {
        if (c.exitCode !== null || c.signalCode !== null) continue;
        const exited = new Promise((r) => c.once("exit", r));
        c.kill("SIGKILL");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      for (const d of [scope, cgroupDir])
        for (let attempt = 0; existsSync(d) && attempt < 50; attempt++)
          try {
            rmdirSync(d);
          } catch {
            // the kernel still counts the killed process in the cgroup for a moment
            await new Promise((r) => setTimeout(r, 20));
          }
      rmSync(dir, { recursive: true, force: true });
    });
    const api = new FakeK8sApi(["pods-list.json"], ["hold-silent"]);
    const server = await api.start();
    cleanups.push(() => api.stop());
    writeFileSync(
      join(dir, "kubeconfig"),
      JSON.stringify({
        clusters: [{ name: "test", cluster: { server } }],
        contexts: [{ name: "test", context: { cluster: "test", user: "test" } }],
        users: [{ name: "test", user: { token: "t" } }],
        "current-context": "test",
      }),
    );
    const traces = await OtlpGrpcReceiver.create();
    const metrics = await OtlpMetricsGrpcReceiver.create();
    cleanups.push(() => traces.stop());
    cleanups.push(() => metrics.stop());

    // the observed process: in a containerd-like cgroup with the checkout pod's container id
    mkdirSync(scope, { recursive: true });
    const port = await freePort();
    const py = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir], {
      env: { PATH: process.env.PATH, OTEL_RESOURCE_ATTRIBUTES: "team=payments,deployment.environment=prod" },
      stdio: "ignore",
    });
    children.push(py);
    writeFileSync(`${scope}/cgroup.procs`, String(py.pid));
    await waitForPort(port);
    // sanity: the resolver alone sees the container id the pod list maps
    expect(new ServiceResolver().resolve(py.pid ?? 0, "python3").attributes["container.id"]).toBe(CHECKOUT_CONTAINER);

    const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
    const agent = spawn(
      process.execPath,
      [cli, "run", "--ports", String(port), "--quiet", "--duration", "15", "--output", join(dir, "r.jsonl")],
      {
        cwd: dir,
        env: {
          ...process.env,
          KUBECONFIG: join(dir, "kubeconfig"),
          KUBERNETES_SERVICE_HOST: "",
          NODE_NAME: "node-a",
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: traces.endpoint,
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: metrics.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
          OTEL_METRIC_EXPORT_INTERVAL: "1000",
          OTEL_SERVICE_NAME: "",
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    children.push(agent);
    let stderr = "";
    agent.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    await until("the agent to attach", () => stderr.includes("attached"), 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${stderr}`);
    });
    expect(stderr).toContain("K8s pods → 2 on this node");
    expect(api.requests.some((r) => r.includes("fieldSelector=spec.nodeName%3Dnode-a"))).toBe(true);
    for (let i = 0; i < 5; i++)
      await new Promise((r) =>
        execFile("curl", ["-s", "-o", "/dev/null", "--max-time", "5", `http://127.0.0.1:${port}/`], r),
      );

    await traces
      .waitFor((spans) => spans.some((s) => s.serviceName === "checkout"), 20_000, "checkout spans")
      .catch((e) => {
        throw new Error(
          `${(e as Error).message}; agent: ${stderr}; got ${traces.spans.map((s) => s.serviceName).join(",")}`,
        );
      });
    const span = traces.spans.find((s) => s.serviceName === "checkout");
    const bootS = Number(/^btime\s+(\d+)/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
    expect(span?.resource).toMatchObject({
      "service.name": "checkout", // the Deployment: the process sets no OTEL_SERVICE_NAME
      team: "payments",
      "deployment.environment": "prod",
      "process.pid": py.pid,
      "process.owner": "root",
      "process.executable.name": "python3",
      "container.id": CHECKOUT_CONTAINER,
      "container.runtime": "containerd",
      "k8s.pod.name": "checkout-7d9f8b6c5d-x2x4q",
      "k8s.namespace.name": "shop",
      "k8s.deployment.name": "checkout",
      "k8s.node.name": "node-a",
      "k8s.pod.label.app": "checkout",
    });
    expect(String(span?.resource["process.executable.path"])).toMatch(/\/python3(\.\d+)?$/);
    expect(String(span?.resource["process.command_line"])).toContain("http.server");
    const created = Date.parse(String(span?.resource["process.creation.time"]));
    // the creation time comes from /proc/<pid>/stat ticks after boot: after boot, not in the future
    expect(created).toBeGreaterThan(bootS * 1000);
    expect(created).toBeLessThanOrEqual(Date.now());

    await metrics.waitFor(
      (points) => points.some((p) => p.name === "http.server.request.duration" && p.serviceName === "checkout"),
      20_000,
      "checkout RED metrics",
    );
    const point = metrics.find("http.server.request.duration", {}, "checkout")[0];
    expect(point?.resource).toMatchObject({
      "service.name": "checkout",
      team: "payments",
      "process.pid": py.pid,
      "k8s.pod.name": "checkout-7d9f8b6c5d-x2x4q",
      "k8s.deployment.name": "checkout",
      "container.id": CHECKOUT_CONTAINER,
    });
    // the agent flushes and exits on SIGINT even though its pod watch is still pending
    const exited = new Promise<number | null>((r) => agent.on("exit", (code) => r(code)));
    agent.kill("SIGINT");
    await until("the agent to exit after SIGINT", () => agent.exitCode !== null, 20_000).catch((e) => {
      throw new Error(`${(e as Error).message}: ${stderr}`);
    });
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/kalman run: stopped\. [1-9]\d* requests recorded/);
  }, 60_000);
});
