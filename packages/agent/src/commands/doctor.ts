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

/** Loads and attaches the real tracer, then detaches it: proves tracepoints are usable. */
function checkTracerLoads(): PreflightCheck {
  try {
    const tracer = SocketTracer.open({ closeOnSignals: false, ringBufferBytes: 1 << 16, ports: [1] });
    const n = tracer.programIds().length;
    const skipped = tracer.skippedPrograms;
    tracer.close();
    return {
      name: "socket tracer",
      ok: true,
      detail: `${n} programs loaded and attached${skipped.length ? `; hooks missing here: ${skipped.join(", ")}` : ""}`,
    };
  } catch (e) {
    const err = e as ReceiverError;
    return {
      name: "socket tracer",
      ok: false,
      detail: err.message.split("\n")[0] ?? String(e),
      fix: err instanceof ReceiverError ? err.fix : "see the message above",
    };
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
    ? [...base, checkTracerLoads(), checkPacketCapture()]
    : [
        ...base,
        { name: "socket tracer", ok: false, detail: "not tried: fix the checks above first" },
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
