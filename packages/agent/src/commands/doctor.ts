import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { release } from "node:os";
import {
  checkBtf,
  checkPrivileges,
  checkTracefs,
  nativePaths,
  PacketCapture,
  type PreflightCheck,
  ReceiverError,
  SocketTracer,
} from "@kalman/ebpf-receiver";

function checkKernel(): PreflightCheck {
  const [major = 0, minor = 0] = release()
    .split(".")
    .map((n) => Number.parseInt(n, 10));
  // bpf_rdonly_cast (6.4), bpf_loop (5.17), task storage and the BPF ring buffer
  const ok = major > 6 || (major === 6 && minor >= 4);
  return {
    name: "kernel",
    ok,
    detail: `Linux ${release()}${ok ? "" : " (the socket tracer needs ≥ 6.4)"}`,
    fix: ok ? undefined : "run on a kernel ≥ 6.4 with BTF (CONFIG_DEBUG_INFO_BTF=y)",
  };
}

function checkBuilt(): PreflightCheck {
  const { object, shim } = nativePaths();
  const missing = [object, shim].filter((p) => !existsSync(p));
  return {
    name: "build",
    ok: missing.length === 0,
    detail: missing.length ? `missing ${missing.join(", ")}` : "BPF object and native shim built",
    fix: missing.length ? "run ./scripts/setup (or pnpm build)" : undefined,
  };
}

function checkMemlock(): PreflightCheck {
  const limits = readFileSync("/proc/self/limits", "utf8");
  const line = limits.split("\n").find((l) => l.startsWith("Max locked memory")) ?? "";
  return {
    name: "memlock",
    ok: true,
    detail: `${line.replace(/\s+/g, " ").trim() || "unknown"} (BPF memory is memcg-accounted on ≥ 5.11; informational)`,
  };
}

const UPROBE_FIX =
  "uprobes need a kernel with CONFIG_UPROBES and CONFIG_UPROBE_EVENTS (the uprobe PMU in /sys/bus/event_source/devices/uprobe, " +
  "or tracefs uprobe_events) and root; without them TLS plaintext is not captured: run `kalman run --no-tls` meanwhile";

/**
 * Loads and attaches the real tracer, then detaches it: proves tracepoints are usable. With it, the
 * TLS uprobes (SSL_write/SSL_read entry and return) are attached to the system libssl and to a
 * child Node process's own binary (it carries OpenSSL), then detached: proves uprobes are usable.
 */
function checkTracerLoads(): PreflightCheck[] {
  // a process whose executable has SSL_write: a sleeping copy of this Node binary
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  } catch {
    child = undefined;
  }
  const pid = child?.pid;
  try {
    const tracer = SocketTracer.open({
      closeOnSignals: false,
      ringBufferBytes: 1 << 16,
      ports: [1],
      // only the child is scanned for TLS binaries (plus the system libssl, always)
      tls: { pids: pid ? [pid] : [] },
    });
    const n = tracer.programIds().length;
    const skipped = tracer.skippedPrograms;
    const targets = tracer.tlsTargets();
    const failures = Object.entries(tracer.stats().tlsAttachFailures);
    tracer.close();
    const tracepoints: PreflightCheck = {
      name: "socket tracer",
      ok: true,
      detail: `${n} programs loaded and attached${skipped.length ? `; hooks missing here: ${skipped.join(", ")}` : ""}`,
    };
    let uprobes: PreflightCheck;
    if (failures.length)
      uprobes = {
        name: "uprobes",
        ok: false,
        detail: `TLS probes could not be attached: ${failures.map(([why, count]) => `${why} (${count}×)`).join("; ")}`,
        fix: UPROBE_FIX,
      };
    else if (targets.length)
      uprobes = {
        name: "uprobes",
        ok: true,
        detail: `SSL_write/SSL_read probes attached to ${targets.map((t) => t.path.replace(/^\/proc\/\d+\/root/, "")).join(", ")} and detached`,
      };
    else
      uprobes = {
        name: "uprobes",
        ok: true,
        detail:
          "not verified: no binary with OpenSSL's SSL_write found to attach to (TLS capture has nothing to probe)",
      };
    return [tracepoints, uprobes];
  } catch (e) {
    const err = e as ReceiverError;
    return [
      {
        name: "socket tracer",
        ok: false,
        detail: err.message.split("\n")[0] ?? String(e),
        fix: err instanceof ReceiverError ? err.fix : "see the message above",
      },
      { name: "uprobes", ok: false, detail: "not tried: the tracer did not load" },
    ];
  } finally {
    child?.kill("SIGKILL");
  }
}

/** Opens and closes an AF_PACKET capture on lo: proves packet capture (CAP_NET_RAW, TPACKET_V3, libpcap) works. */
function checkPacketCapture(): PreflightCheck {
  try {
    const capture = PacketCapture.open({ targets: [{ interfaces: ["lo"] }], filter: "tcp", ringBytes: 1 << 20 });
    capture.close();
    return { name: "AF_PACKET capture", ok: true, detail: "TPACKET_V3 ring with a filter opened on lo" };
  } catch (e) {
    return {
      name: "AF_PACKET capture",
      ok: false,
      detail: (e as Error).message.split("\n")[0] ?? String(e),
      fix: "needs CAP_NET_RAW: run as root (sudo) or grant CAP_NET_RAW; ./scripts/setup builds the shim with libpcap",
    };
  }
}

/** Every host check, in the order a person would fix them. */
export function doctorChecks(): PreflightCheck[] {
  const base = [checkKernel(), checkPrivileges(), checkBtf(), checkTracefs(), checkMemlock(), checkBuilt()];
  const ready = base.every((c) => c.ok);
  return ready
    ? [...base, ...checkTracerLoads(), checkPacketCapture()]
    : [
        ...base,
        { name: "socket tracer", ok: false, detail: "not tried: fix the checks above first" },
        { name: "uprobes", ok: false, detail: "not tried: fix the checks above first" },
        checkPacketCapture(),
      ];
}

/** Prints the checks; returns the exit code (0 all good, 1 something to fix). */
export function runDoctor(out: NodeJS.WritableStream = process.stdout): number {
  const checks = doctorChecks();
  for (const c of checks) {
    out.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name.padEnd(18)} ${c.detail}\n`);
    if (!c.ok && c.fix) out.write(`      ${"".padEnd(18)} fix: ${c.fix}\n`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  out.write(failed ? `\n${failed} check(s) failed.\n` : "\nall checks passed: this host can run kalman.\n");
  return failed ? 1 : 0;
}
