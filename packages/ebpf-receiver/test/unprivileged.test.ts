// Opening without privileges fails at preflight with a message that names the fix.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { describePrivileged } from "./support.js";

const entry = fileURLToPath(new URL("../dist/src/index.js", import.meta.url));

describePrivileged("without privileges", () => {
  it("SocketTracer.open fails with a clear error naming the fix (kalman doctor)", () => {
    const script = `import(${JSON.stringify(entry)}).then((m) => { try { m.SocketTracer.open({ closeOnSignals: false }); console.log("OPENED"); } catch (e) { console.log(e.name + "|" + e.stage + "|" + e.message); process.exitCode = 3; } });`;
    // drop to nobody with no capabilities at all
    const r = spawnSync(
      "setpriv",
      [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        process.execPath,
        "-e",
        script,
      ],
      { encoding: "utf8" },
    );
    expect(r.stdout).not.toContain("OPENED");
    expect(r.status).toBe(3);
    expect(r.stdout).toContain("ReceiverError|preflight|");
    expect(r.stdout).toMatch(/lacks CAP_BPF\+CAP_PERFMON/);
    expect(r.stdout).toContain("kalman doctor");
  });
});
