import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import koffi from "koffi";

/** This package's root: the nearest folder with a package.json above this file (src/ or dist/src/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** Paths of the built tracer object and shim (lib/ of this package unless overridden). */
export function nativePaths(): { object: string; shim: string } {
  const lib = join(packageRoot(), "lib");
  return {
    object: process.env.KALMAN_BPF_OBJECT ?? join(lib, "socket_trace.bpf.o"),
    shim: process.env.KALMAN_NATIVE_LIB ?? join(lib, "libkalman.so"),
  };
}

/** Typed koffi bindings of native/kalman_shim.h. */
export interface Shim {
  open(objPath: string, ringbufBytes: number, err: Buffer, errLen: number): unknown;
  load(t: unknown, err: Buffer, errLen: number): number;
  attach(t: unknown, err: Buffer, errLen: number): number;
  skipped(t: unknown): string;
  configure(t: unknown, selfTgid: number, captureLen: number, flags: number, recoverWindowMs: number): number;
  allow(t: unknown, kind: number, value: number, on: number): number;
  drain(t: unknown, buf: Buffer, cap: number, outRecords: Uint32Array): number;
  stats(t: unknown, out: Buffer, n: number): number;
  progIds(t: unknown, out: Uint32Array, n: number): number;
  destroy(t: unknown): void;
  setTls(t: unknown, on: number): number;
  tlsAttachOpenssl(t: unknown, path: string, entries: number, err: Buffer, errLen: number): number;
  tlsAttachGo(
    t: unknown,
    path: string,
    writeRets: Uint32Array,
    nWrite: number,
    readRets: Uint32Array,
    nRead: number,
    err: Buffer,
    errLen: number,
  ): number;
  tlsDetach(t: unknown, target: number): number;
  drainExecs(t: unknown, pids: Uint32Array, cap: number): number;
  tlsStats(t: unknown, out: Buffer, n: number): number;
  /** 1 found (addr/size filled: BigUint64Array of 2), 0 absent, <0 -errno. */
  elfSymbol(path: string, name: string, out: BigUint64Array, outSize: BigUint64Array): number;
}

let shim: Shim | undefined;

/** Loads libkalman.so once. Throws with the path when it has not been built. */
export function loadShim(path = nativePaths().shim): Shim {
  if (shim) return shim;
  if (!existsSync(path)) {
    throw new Error(`native shim not found at ${path}: run \`pnpm build\` (or ./scripts/setup)`);
  }
  const lib = koffi.load(path);
  const tracer = koffi.pointer(koffi.opaque("kl_tracer"));
  shim = {
    open: lib.func("kl_tracer_open", tracer, ["str", "uint32_t", "void *", "int"]),
    load: lib.func("kl_tracer_load", "int", [tracer, "void *", "int"]),
    attach: lib.func("kl_tracer_attach", "int", [tracer, "void *", "int"]),
    skipped: lib.func("kl_tracer_skipped", "str", [tracer]),
    configure: lib.func("kl_tracer_configure", "int", [tracer, "uint32_t", "uint32_t", "uint32_t", "uint32_t"]),
    allow: lib.func("kl_tracer_allow", "int", [tracer, "int", "uint32_t", "int"]),
    drain: lib.func("kl_tracer_drain", "int", [tracer, "void *", "uint32_t", "void *"]),
    stats: lib.func("kl_tracer_stats", "int", [tracer, "void *", "int"]),
    progIds: lib.func("kl_tracer_prog_ids", "int", [tracer, "void *", "int"]),
    destroy: lib.func("kl_tracer_destroy", "void", [tracer]),
    setTls: lib.func("kl_tracer_set_tls", "int", [tracer, "int"]),
    tlsAttachOpenssl: lib.func("kl_tls_attach_openssl", "int", [tracer, "str", "int", "void *", "int"]),
    tlsAttachGo: lib.func("kl_tls_attach_go", "int", [
      tracer,
      "str",
      "void *",
      "int",
      "void *",
      "int",
      "void *",
      "int",
    ]),
    tlsDetach: lib.func("kl_tls_detach", "int", [tracer, "int"]),
    drainExecs: lib.func("kl_tracer_drain_execs", "int", [tracer, "void *", "int"]),
    tlsStats: lib.func("kl_tracer_tls_stats", "int", [tracer, "void *", "int"]),
    elfSymbol: lib.func("kl_elf_symbol", "int", ["str", "str", "void *", "void *"]),
  } as Shim;
  return shim;
}

/** Typed koffi bindings of the AF_PACKET capture half of native/kalman_shim.h. */
export interface CaptureShim {
  open(
    netnsPath: string,
    ifname: string,
    snaplen: number,
    blockBytes: number,
    blockCount: number,
    retireMs: number,
    filter: string,
    captureId: number,
    err: Buffer,
    errLen: number,
  ): unknown;
  /** caps: the handles' addresses (koffi.address), read in place by the shim. */
  drain(caps: BigUint64Array, n: number, buf: Buffer, cap: number, outPackets: Uint32Array): number;
  stats(c: unknown, out: Buffer, n: number): number;
  ifname(c: unknown, ifindex: number, out: Buffer, outLen: number): number;
  netnsInterfaces(netnsPath: string, out: Buffer, outLen: number): number;
  close(c: unknown): void;
}

let captureShim: CaptureShim | undefined;

/** Loads the capture functions of libkalman.so once. Throws with the path when it has not been built. */
export function loadCaptureShim(path = nativePaths().shim): CaptureShim {
  if (captureShim) return captureShim;
  if (!existsSync(path)) {
    throw new Error(`native shim not found at ${path}: run \`pnpm build\` (or ./scripts/setup)`);
  }
  const lib = koffi.load(path);
  const capture = koffi.pointer(koffi.opaque("kl_capture"));
  captureShim = {
    open: lib.func("kl_capture_open", capture, [
      "str",
      "str",
      "uint32_t",
      "uint32_t",
      "uint32_t",
      "uint32_t",
      "str",
      "uint16_t",
      "void *",
      "int",
    ]),
    drain: lib.func("kl_capture_drain", "int", ["void *", "int", "void *", "uint32_t", "void *"]),
    stats: lib.func("kl_capture_stats", "int", [capture, "void *", "int"]),
    ifname: lib.func("kl_capture_ifname", "int", [capture, "uint32_t", "void *", "int"]),
    netnsInterfaces: lib.func("kl_netns_interfaces", "int", ["str", "void *", "int"]),
    close: lib.func("kl_capture_close", "void", [capture]),
  } as CaptureShim;
  return captureShim;
}
