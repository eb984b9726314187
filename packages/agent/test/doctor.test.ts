// `kalman doctor`'s uprobe check: the TLS probes really attached (to the system libssl and to Node's
// own binary, which carries OpenSSL) and detached; and, in a private mount namespace where the
// uprobe PMU and tracefs's uprobe_events are hidden, a failure with the fix.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, inPrivateMountNamespace } from "@kalman/examples";
import { expect, it } from "vitest";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));

describePrivileged("kalman doctor: uprobes", receiverPreflight, () => {
  it("attaches the TLS uprobes to real binaries and detaches them", () => {
    const r = spawnSync(process.execPath, [cli, "doctor"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const line = r.stdout.split("\n").find((l) => /^ok\s+uprobes\s/.test(l));
    expect(line, r.stdout).toBeDefined();
    // Node's executable is a real target (the check's child process runs it)
    expect(line).toContain(process.execPath);
    expect(line).toMatch(/SSL_write\/SSL_read probes attached to .* and detached$/);
  });

  it("reports uprobes that cannot attach (PMU and uprobe_events hidden in a private mount namespace), with the fix", () => {
    // the host's mounts stay as they are: the namespace is private and dies with the command
    const r = inPrivateMountNamespace(
      "mount -t tmpfs kalman-test /sys/bus/event_source/devices/uprobe && " +
        "mount --bind /dev/null /sys/kernel/tracing/uprobe_events && " +
        `exec "${process.execPath}" "${cli}" doctor`,
    );
    expect(r.status, r.stdout + r.stderr).toBe(1);
    // tracepoints still load: only the uprobe check fails
    expect(r.stdout).toMatch(/ok\s+socket tracer\s+\d+ programs loaded and attached/);
    expect(r.stdout).toMatch(
      /FAIL\s+uprobes\s+TLS probes could not be attached: uprobe .+? in <binary>: No such file or directory/,
    );
    expect(r.stdout).toContain("fix: uprobes need a kernel with CONFIG_UPROBES and CONFIG_UPROBE_EVENTS");
    expect(r.stdout).toContain("kalman run --no-tls");
    expect(r.stdout).toContain("1 check(s) failed.");
    // the host still has its uprobe PMU
    expect(readFileSync("/sys/bus/event_source/devices/uprobe/type", "utf8").trim()).toMatch(/^\d+$/);
  });
});
