// Process selection: rules by open port, executable glob, pid and container, decided from /proc for
// real servers (two python3 http.server, one nginx), then end to end through `kalman run`.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, freePort, type RunningServer, startNginx, stop, waitForPort } from "@kalman/examples";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePortSpec } from "../src/config/schema.js";
import { globToRegExp, isTelemetryAgent, ProcessSelector } from "../src/selection/index.js";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), `kalman-selection-${process.pid}-`));

describe("selection rules (pure)", () => {
  it("globs: * any characters, ?, classes; anchored", () => {
    expect(globToRegExp("*/nginx").test("/usr/sbin/nginx")).toBe(true); // * crosses /
    expect(globToRegExp("*/nginx").test("/usr/sbin/nginx-debug")).toBe(false); // anchored
    expect(globToRegExp("/usr/*/nginx").test("/opt/sbin/nginx")).toBe(false);
    expect(globToRegExp("*/bin/python3*").test("/usr/bin/python3.11")).toBe(true);
    expect(globToRegExp("/bin/[a-c]at").test("/bin/cat")).toBe(true);
    expect(globToRegExp("/bin/[!a-c]at").test("/bin/cat")).toBe(false);
    expect(globToRegExp("a.b?").test("a.bc")).toBe(true);
    expect(globToRegExp("a.b?").test("axbc")).toBe(false); // the dot is literal
    expect(globToRegExp("abc123*").test("abc123deadbeef")).toBe(true);
  });

  it("port specs: a port, a range, a list, or a list of those; anything else is an error text", () => {
    expect(parsePortSpec(80)).toEqual([[80, 80]]);
    expect(parsePortSpec("80, 8000-8100")).toEqual([
      [80, 80],
      [8000, 8100],
    ]);
    expect(parsePortSpec([443, "9000-9001"])).toEqual([
      [443, 443],
      [9000, 9001],
    ]);
    for (const bad of ["80-", "0", "70000", "90-80", "http", "", [true]]) {
      expect(parsePortSpec(bad)).toMatch(/^expected "80" or "8000-8100"/);
    }
  });

  it("only pid-only include rules go into the kernel", () => {
    expect(new ProcessSelector({ include: [{ pids: [3, 4] }, { pids: [4, 5] }] }).kernelPids()).toEqual([3, 4, 5]);
    expect(new ProcessSelector({ include: [{ pids: [3] }, { exePath: "*" }] }).kernelPids()).toBeUndefined();
    expect(new ProcessSelector({ include: [{ pids: [3], ports: "80" }] }).kernelPids()).toBeUndefined();
    expect(new ProcessSelector({}).kernelPids()).toBeUndefined();
    expect(new ProcessSelector({ excludeTelemetryAgents: false }).selectsAll).toBe(true);
    expect(new ProcessSelector({}).selectsAll).toBe(false);
  });

  it("telemetry agents and other Kalman agents are recognised", () => {
    expect(isTelemetryAgent({ pid: 1, exe: "/usr/bin/otelcol-contrib", argv: ["otelcol-contrib"] })).toBe(true);
    expect(isTelemetryAgent({ pid: 1, exe: "/opt/beyla/beyla", argv: [] })).toBe(true);
    expect(
      isTelemetryAgent({
        pid: 1,
        exe: "/usr/bin/node",
        argv: ["node", "/work/main/packages/agent/dist/src/cli.js", "run"],
      }),
    ).toBe(true);
    expect(isTelemetryAgent({ pid: 1, exe: "/usr/bin/python3.11", argv: ["python3", "app.py"] })).toBe(false);
  });

  it("the decision cache is bounded and counts what it filtered", () => {
    // pid 1 is init: not our self pid; rule by pid keeps /proc out of it
    const s = new ProcessSelector({ include: [{ pids: [1] }], maxEntries: 8, selfPid: -1 });
    s.setNow(1000);
    let accepted = 0;
    for (let pid = 1; pid <= 100; pid++) if (s.accept(pid)) accepted++;
    expect(accepted).toBe(1);
    const st = s.stats();
    expect(st.decisions).toBe(100);
    expect(st.evictions).toBe(92);
    expect(st.processesSelected + st.processesFiltered).toBe(8);
    expect(st.eventsFiltered).toBe(99);
    // cached: no new decision within recheckMs, a new one after
    s.accept(100);
    expect(s.stats().decisions).toBe(100);
    s.setNow(1000 + 5000);
    s.accept(100);
    expect(s.stats().decisions).toBe(101);
  });
});

interface Servers {
  pyA: { port: number; pid: number };
  pyB: { port: number; pid: number };
  nginx: RunningServer;
  nginxPids: number[];
}
let servers: Servers | undefined;
const children: ChildProcess[] = [];

async function startPython(): Promise<{ port: number; pid: number }> {
  const port = await freePort();
  const child = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", tmp], {
    stdio: "ignore",
  });
  children.push(child);
  await waitForPort(port);
  return { port, pid: child.pid ?? 0 };
}

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
}

beforeAll(async () => {
  const pyA = await startPython();
  const pyB = await startPython();
  const nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
  servers = { pyA, pyB, nginx, nginxPids: [nginx.pid, ...childrenOf(nginx.pid)] };
}, 30_000);

afterAll(async () => {
  for (const c of children) await stop(c);
  await servers?.nginx.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe("selection decided from /proc for real servers", () => {
  it("by open port, executable glob, pid, container id and exclusion", () => {
    const s = servers as Servers;
    const all = [s.pyA.pid, s.pyB.pid, ...s.nginxPids];
    const chosen = (sel: ProcessSelector) => all.filter((pid) => sel.decide(pid));
    expect(chosen(new ProcessSelector({ include: [{ ports: String(s.pyA.port) }] }))).toEqual([s.pyA.pid]);
    expect(chosen(new ProcessSelector({ include: [{ ports: `${s.nginx.port},${s.pyB.port}` }] }))).toEqual([
      s.pyB.pid,
      ...s.nginxPids, // the worker holds the master's listening socket
    ]);
    expect(chosen(new ProcessSelector({ include: [{ exePath: "*/nginx" }] }))).toEqual(s.nginxPids);
    expect(chosen(new ProcessSelector({ include: [{ exePath: "*/bin/python3*" }] }))).toEqual([s.pyA.pid, s.pyB.pid]);
    expect(chosen(new ProcessSelector({ include: [{ pids: [s.pyB.pid] }] }))).toEqual([s.pyB.pid]);
    // both fields of one rule must match
    expect(
      chosen(new ProcessSelector({ include: [{ exePath: "*/bin/python3*", ports: String(s.pyB.port) }] })),
    ).toEqual([s.pyB.pid]);
    expect(chosen(new ProcessSelector({ exclude: [{ exePath: "*/bin/python3*" }] }))).toEqual(s.nginxPids);
    // host processes have no container id
    expect(chosen(new ProcessSelector({ include: [{ containerId: "*" }] }))).toEqual([]);
    // never the agent itself
    expect(new ProcessSelector({}).decide(process.pid)).toBe(false);
  });
});

interface AgentRun {
  stderr: string;
  records: Array<{ pid: number; comm: string; observationPoint: string; serverPort: number }>;
}

/** `kalman run` with these flags, limited to our servers' ports, while curl hits every server twice. */
async function runAgent(flags: string[]): Promise<AgentRun> {
  const s = servers as Servers;
  const output = join(tmp, `records-${Math.random().toString(36).slice(2)}.jsonl`);
  const ports = [s.pyA.port, s.pyB.port, s.nginx.port];
  const child = spawn(
    process.execPath,
    [cli, "run", "--ports", ports.join(","), "--quiet", "--output", output, "--duration", "30", ...flags],
    { cwd: tmp, stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  for (let i = 0; i < 200 && !stderr.includes("attached and exporting") && child.exitCode === null; i++)
    await new Promise((r) => setTimeout(r, 50));
  expect(stderr).toContain("attached and exporting");
  for (const port of ports) {
    for (const path of ["/a", "/b"]) execFileSync("curl", ["-s", "-o", "/dev/null", `http://127.0.0.1:${port}${path}`]);
  }
  // the records of the last requests are out after a pump or two
  await new Promise((r) => setTimeout(r, 500));
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
  let text = "";
  try {
    text = readFileSync(output, "utf8");
  } catch {
    // no record at all
  }
  const records = text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  return { stderr, records };
}

describePrivileged("kalman run reports only the selected processes", receiverPreflight, () => {
  it("--open-ports: only the python3 server listening on that port", async () => {
    const s = servers as Servers;
    const r = await runAgent(["--open-ports", String(s.pyA.port)]);
    expect(r.stderr).toContain(`processes with open ports ${s.pyA.port}`);
    expect(
      r.records.map((x) => `${x.pid} ${x.observationPoint} ${x.serverPort}`),
      r.stderr,
    ).toEqual([`${s.pyA.pid} server ${s.pyA.port}`, `${s.pyA.pid} server ${s.pyA.port}`]);
    // curl and the other servers were seen by the kernel and left out here
    expect(r.stderr).toMatch(/selection filtered [1-9]\d* events of [1-9]\d* processes/);
  });

  it("--exe: only nginx", async () => {
    const s = servers as Servers;
    const r = await runAgent(["--exe", "*/nginx"]);
    expect(r.records.map((x) => `${s.nginxPids.includes(x.pid)} ${x.comm} ${x.serverPort}`)).toEqual([
      `true nginx ${s.nginx.port}`,
      `true nginx ${s.nginx.port}`,
    ]);
  });

  it("--pids: only that process, filtered in the kernel", async () => {
    const s = servers as Servers;
    const r = await runAgent(["--pids", String(s.pyB.pid)]);
    expect(r.stderr).toContain("pid allowlist in the kernel");
    expect(r.records.map((x) => `${x.pid} ${x.serverPort}`)).toEqual([
      `${s.pyB.pid} ${s.pyB.port}`,
      `${s.pyB.pid} ${s.pyB.port}`,
    ]);
    // the kernel did the filtering: no event of another process reached user space
    expect(r.stderr).toMatch(/selection filtered 0 events of 0 processes/);
  });

  it("no rule: every process on those ports, client and server sides", async () => {
    const r = await runAgent([]);
    expect(r.records.filter((x) => x.observationPoint === "server")).toHaveLength(6);
    expect(r.records.filter((x) => x.observationPoint === "client" && x.comm === "curl")).toHaveLength(6);
  });
});
