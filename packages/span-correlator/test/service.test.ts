import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readlinkSync, rmdirSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { containerFromCgroup, ServiceResolver } from "../src/service.js";

describe("containerFromCgroup", () => {
  const id = "4f1b2c3d".repeat(8);
  it("finds the container id and runtime in cgroup v1 and v2 paths", () => {
    expect(containerFromCgroup(`0::/system.slice/docker-${id}.scope\n`)).toEqual({ id, runtime: "docker" });
    expect(containerFromCgroup(`12:pids:/kubepods/besteffort/pod1234/cri-containerd-${id}.scope`)).toEqual({
      id,
      runtime: "containerd",
    });
    expect(containerFromCgroup(`0::/machine.slice/libpod-${id}.scope/container`)).toEqual({ id, runtime: "podman" });
    expect(containerFromCgroup(`0::/kubepods.slice/crio-${id}.scope`)).toEqual({ id, runtime: "cri-o" });
    expect(containerFromCgroup("0::/user.slice/user-0.slice/session-1.scope\n")).toBeUndefined();
  });
});

const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";
const children: ChildProcess[] = [];
const cgroupDir = `/sys/fs/cgroup/pids/kalman-test-${process.pid}`;
const containerId = "c0ffee00".repeat(8);
const scope = `${cgroupDir}/docker-${containerId}.scope`;
afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const d of [scope, cgroupDir]) {
    try {
      if (existsSync(d)) rmdirSync(d);
    } catch {
      // still has a process for a moment: the kernel frees it once the child is reaped
    }
  }
});

describe.runIf(privileged && existsSync("/sys/fs/cgroup/pids"))("ServiceResolver on real processes", () => {
  it("tags a process in a container-like cgroup and in its own network namespace", async () => {
    mkdirSync(scope, { recursive: true });
    const child = spawn("unshare", ["--net", "sleep", "30"], { env: { ...process.env, OTEL_SERVICE_NAME: "boxed" } });
    children.push(child);
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(`${scope}/cgroup.procs`, String(child.pid));
    const id = new ServiceResolver().resolve(child.pid ?? 0, "sleep");
    expect(id.serviceName).toBe("boxed");
    expect(id.attributes).toMatchObject({
      "container.id": containerId,
      "container.runtime": "docker",
      "process.pid": child.pid,
    });
    const ours = Number(/\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/net"))?.[1]);
    expect(id.attributes["kalman.netns"]).toBeTypeOf("number");
    expect(id.attributes["kalman.netns"]).not.toBe(ours);
    child.kill("SIGKILL");
    await new Promise((r) => child.on("exit", r));
  });
});
