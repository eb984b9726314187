import { existsSync, readFileSync } from "node:fs";

/** One host requirement for loading the tracer, with the fix when it fails. */
export interface PreflightCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

const CAP_NET_RAW = 13;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

function effectiveCaps(): bigint {
  const status = readFileSync("/proc/self/status", "utf8");
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  return m?.[1] ? BigInt(`0x${m[1]}`) : 0n;
}

const has = (caps: bigint, bit: number) => (caps & (1n << BigInt(bit))) !== 0n;

export function checkPrivileges(): PreflightCheck {
  const caps = effectiveCaps();
  const ok = has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON));
  return {
    name: "privileges",
    ok,
    detail: ok
      ? `uid ${process.getuid?.()} with CAP_BPF/CAP_PERFMON or CAP_SYS_ADMIN`
      : `uid ${process.getuid?.()} lacks CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)`,
    fix: ok ? undefined : "run as root (sudo), or grant CAP_BPF,CAP_PERFMON; `kalman doctor` checks every requirement",
  };
}

export function checkBtf(): PreflightCheck {
  const ok = existsSync("/sys/kernel/btf/vmlinux");
  return {
    name: "btf",
    ok,
    detail: ok ? "/sys/kernel/btf/vmlinux present" : "/sys/kernel/btf/vmlinux missing: kernel built without BTF",
    fix: ok
      ? undefined
      : "use a kernel with CONFIG_DEBUG_INFO_BTF=y (most distro kernels ≥ 5.8); `kalman doctor` for details",
  };
}

export function tracefsRoot(): string | undefined {
  for (const root of ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]) {
    if (existsSync(`${root}/events/syscalls`)) return root;
  }
  return undefined;
}

export function checkTracefs(): PreflightCheck {
  const root = tracefsRoot();
  return {
    name: "tracefs",
    ok: root !== undefined,
    detail: root ? `${root}/events present` : "tracefs not mounted: /sys/kernel/tracing/events missing",
    fix: root ? undefined : "mount -t tracefs tracefs /sys/kernel/tracing; `kalman doctor` for details",
  };
}

/** The checks the receiver runs before loading, in order. */
export function receiverPreflight(): PreflightCheck[] {
  return [checkPrivileges(), checkBtf(), checkTracefs()];
}

/** AF_PACKET capture needs CAP_NET_RAW (and CAP_SYS_ADMIN to open it in another network namespace). */
export function checkCapturePrivileges(): PreflightCheck {
  const caps = effectiveCaps();
  const ok = has(caps, CAP_NET_RAW);
  return {
    name: "capture privileges",
    ok,
    detail: ok
      ? `uid ${process.getuid?.()} with CAP_NET_RAW${has(caps, CAP_SYS_ADMIN) ? " and CAP_SYS_ADMIN (other netns)" : ""}`
      : `uid ${process.getuid?.()} lacks CAP_NET_RAW`,
    fix: ok ? undefined : "run as root (sudo), or grant CAP_NET_RAW (+CAP_SYS_ADMIN for other namespaces)",
  };
}
