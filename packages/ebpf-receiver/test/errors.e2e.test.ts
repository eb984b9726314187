// Load/attach problems fail with the stage, the kernel's reason and the fix; signals leave nothing attached.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inPrivateMountNamespace } from "@kalman/examples";
import { afterAll, expect, it } from "vitest";
import { ReceiverError, SocketTracer } from "../src/index.js";
import { describePrivileged } from "./support.js";

const tmp = mkdtempSync(join(tmpdir(), "kalman-errors-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const entry = fileURLToPath(new URL("../dist/src/index.js", import.meta.url));
const progLoaded = (id: number) => spawnSync("bpftool", ["prog", "show", "id", String(id)]).status === 0;

describePrivileged("tracer errors and lifecycle", () => {
  it("an object the verifier rejects fails at the load stage with the verifier's last lines", () => {
    const obj = join(tmp, "rejected.bpf.o");
    const multiarch = execFileSync("gcc", ["-print-multiarch"], { encoding: "utf8" }).trim();
    execFileSync("clang", [
      "-O2",
      "-g",
      "-target",
      "bpf",
      `-I/usr/include/${multiarch}`,
      "-c",
      fileURLToPath(new URL("fixtures/rejected.bpf.c", import.meta.url)),
      "-o",
      obj,
    ]);
    let err: unknown;
    try {
      SocketTracer.open({ objectPath: obj, closeOnSignals: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ReceiverError);
    const e = err as ReceiverError;
    expect(e.stage).toBe("load");
    expect(e.message).toContain("the kernel refused the BPF object");
    expect(e.detail).toMatch(/invalid access to map value|outside of the allowed memory range/);
    expect(e.fix).toContain("kalman doctor");
  });

  it("without tracefs mounted, open fails at preflight and says how to mount it", () => {
    // a private mount namespace: the host's tracefs stays mounted
    const script = `import(${JSON.stringify(entry)}).then((m) => { try { m.SocketTracer.open({ closeOnSignals: false }); console.log("OPENED"); } catch (e) { console.log(e.stage + "|" + e.message); } });`;
    const r = inPrivateMountNamespace(
      `umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/debug 2>/dev/null; exec "${process.execPath}" -e '${script}'`,
    );
    expect(r.stdout).not.toContain("OPENED");
    expect(r.stdout).toContain("preflight|");
    expect(r.stdout).toContain("tracefs not mounted");
    expect(r.stdout).toContain("mount -t tracefs tracefs /sys/kernel/tracing");
    // and the host's mount is untouched
    expect(spawnSync("test", ["-d", "/sys/kernel/tracing/events"]).status).toBe(0);
  });

  it("SIGTERM to a process holding the tracer leaves no program attached, and the process dies by the signal", async () => {
    const script = `import(${JSON.stringify(entry)}).then((m) => { const t = m.SocketTracer.open({ ports: [1] }); console.log(JSON.stringify(t.programIds())); setInterval(() => {}, 1000); });`;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    const ids = await new Promise<number[]>((resolve) => {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("]")) resolve(JSON.parse(out.trim()) as number[]);
      });
    });
    expect(ids.length).toBeGreaterThanOrEqual(20);
    expect(ids.every(progLoaded)).toBe(true);
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on("exit", (_code, sig) => r(sig)));
    child.kill("SIGTERM");
    expect(await exited).toBe("SIGTERM");
    expect(ids.filter(progLoaded)).toEqual([]);
  });
});
