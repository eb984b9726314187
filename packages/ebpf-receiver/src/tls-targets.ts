import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { basename } from "node:path";
import type { Logger } from "./logger.js";
import type { Shim } from "./native.js";

/** A binary whose TLS functions are probed. */
export interface TlsTarget {
  /** Path the probes were attached through. */
  path: string;
  kind: "openssl" | "go";
  /** Processes seen mapping it (empty for the system libssl, kept until close). */
  pids: number[];
  /**
   * Where the OpenSSL probes went, e.g. "SSL_read+SSL_read_ex via 0x352d0; ..." (an internal
   * function both call, whose first instruction the kernel emulates) or "SSL_read+SSL_read_ex"
   * (their entries; "(single-stepped)" when that costs a second trap per call).
   */
  probes?: string;
}

const ERR_LEN = 2048;
const LIB_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib", "/lib"];
const LIBSSL = /^libssl\.so(\.\d+)*$/;
const GO_WRITE = "crypto/tls.(*Conn).Write";
const GO_READ = "crypto/tls.(*Conn).Read";
/** After an exec, the process's maps are looked at again this much later (shared libraries load after exec). */
const RESCAN_AFTER_MS = [30, 300, 2000];
const MAX_RESCANS = 4096;
const EXEC_POLL_MS = 10;
const LIVENESS_MS = 2000;
const MAX_REJECTED = 65536;
const MAX_FAILURE_REASONS = 64;

interface Entry {
  id: number;
  path: string;
  kind: "openssl" | "go";
  pids: Set<number>;
  pinned: boolean;
  probes?: string;
}

/** Device and inode of a mapped file as "major:minor:inode" (the same key from /proc maps and from stat). */
function keyFromStat(dev: number, ino: number): string {
  const major = (dev & 0xfff00) >>> 8;
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  return `${major}:${minor}:${ino}`;
}

/** A mapping's identity within one process's maps (to look at each file once per scan). */
function keyFromMaps(dev: string, inode: string): string {
  return `${dev}:${inode}`;
}

/**
 * Finds the binaries that carry TLS (libssl, executables with OpenSSL or Go crypto/tls symbols) in
 * running processes and in each process that calls exec, attaches the uprobes once per file
 * (device, inode), and detaches them when no process maps the file any more.
 */
export class TlsTargets {
  private readonly targets = new Map<string, Entry>();
  /** Files looked at and found without TLS functions (or failing to attach). */
  private readonly rejected = new Set<string>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, number>();
  private readonly err = Buffer.alloc(ERR_LEN);
  private readonly execPids = new Uint32Array(256);
  private readonly symAddr = new BigUint64Array(1);
  private readonly symSize = new BigUint64Array(1);
  private rescans: Array<{ pid: number; at: number }> = [];
  private execTimer: NodeJS.Timeout | undefined;
  private liveTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly shim: Shim,
    private readonly handle: unknown,
    private readonly log: Logger,
    private readonly selfPid: number,
    /** Only these processes (empty: all). */
    private readonly onlyPids: ReadonlySet<number>,
    /** "entry": OpenSSL probes on the exported functions' entries, whatever they cost (for comparisons). */
    private readonly probeAt: "cheapest" | "entry" = "cheapest",
  ) {}

  /** Attaches to the system libssl and to every running process's TLS binaries, then follows exec. */
  start(): void {
    for (const dir of LIB_DIRS) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!LIBSSL.test(name)) continue;
        try {
          const real = realpathSync(`${dir}/${name}`);
          const st = statSync(real);
          this.consider(keyFromStat(st.dev, st.ino), real, "openssl", 0, true);
        } catch {
          // a dangling link: nothing to probe
        }
      }
    }
    const pids = this.onlyPids.size ? [...this.onlyPids] : listPids();
    for (const pid of pids) if (pid !== this.selfPid) this.scanPid(pid);
    this.execTimer = setInterval(() => this.pollExecs(), EXEC_POLL_MS);
    this.execTimer.unref();
    this.liveTimer = setInterval(() => this.checkLiveness(), LIVENESS_MS);
    this.liveTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.execTimer);
    clearInterval(this.liveTimer);
    this.targets.clear(); // the shim detaches every target when the tracer is destroyed
  }

  list(): TlsTarget[] {
    return [...this.targets.values()].map((t) => ({
      path: t.path,
      kind: t.kind,
      pids: [...t.pids],
      ...(t.probes ? { probes: t.probes } : {}),
    }));
  }

  /** Attach failures by reason. */
  failureCounts(): Record<string, number> {
    return Object.fromEntries(this.failures);
  }

  /** Waits until the Go targets being prepared (disassembly) are attached. For tests and start-up. */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all(this.pending.values());
  }

  /** Looks at the executable and libssl mappings of one process. */
  scanPid(pid: number): void {
    if (this.stopped || pid === this.selfPid) return;
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, "latin1");
    } catch {
      return; // gone already
    }
    let exe = "";
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      // kernel thread or gone
    }
    const seen = new Set<string>();
    for (const line of maps.split("\n")) {
      // address perms offset dev inode path
      const parts = line.split(/\s+/, 6);
      if (parts.length < 6 || parts[1]?.[2] !== "x" || parts[4] === "0") continue;
      const path = line.slice(line.indexOf("/"));
      if (!path.startsWith("/") || path.endsWith(" (deleted)")) continue;
      const isLib = LIBSSL.test(basename(path));
      if (!isLib && path !== exe) continue;
      const mapsKey = keyFromMaps(parts[3] as string, parts[4] as string);
      if (seen.has(mapsKey)) continue;
      seen.add(mapsKey);
      // attach through the process's root, so binaries in other mount namespaces resolve
      const via = `/proc/${pid}/root${path}`;
      // keyed by stat, as the system libraries are (maps and stat may name the device differently)
      let key: string;
      try {
        const st = statSync(via);
        key = keyFromStat(st.dev, st.ino);
      } catch {
        continue;
      }
      const known = this.targets.get(key);
      if (known) {
        if (!known.pinned) known.pids.add(pid);
        continue;
      }
      if (this.rejected.has(key) || this.pending.has(key)) continue;
      this.examine(key, via, pid, isLib);
    }
  }

  private examine(key: string, path: string, pid: number, isLib: boolean): void {
    if (isLib || this.symbol(path, "SSL_write")) {
      this.consider(key, path, "openssl", pid, false);
      return;
    }
    const write = this.symbol(path, GO_WRITE);
    const read = write && this.symbol(path, GO_READ);
    if (!write || !read) {
      this.reject(key);
      return;
    }
    const job = Promise.all([returnOffsets(path, write), returnOffsets(path, read)])
      .then(([w, r]) => {
        if (this.stopped) return;
        if (!w.length || !r.length) throw new Error("no RET instruction found in crypto/tls.(*Conn).Write/Read");
        const id = this.shim.tlsAttachGo(
          this.handle,
          path,
          Uint32Array.from(w),
          w.length,
          Uint32Array.from(r),
          r.length,
          this.err,
          ERR_LEN,
        );
        this.record(key, path, "go", pid, false, id);
      })
      .catch((e: Error) => this.fail(key, path, `go: ${e.message.split("\n")[0]}`))
      .finally(() => this.pending.delete(key));
    this.pending.set(key, job);
  }

  private consider(key: string, path: string, kind: "openssl", pid: number, pinned: boolean): void {
    if (this.targets.has(key) || this.rejected.has(key)) return;
    const id = this.shim.tlsAttachOpenssl(this.handle, path, this.probeAt === "entry" ? 1 : 0, this.err, ERR_LEN);
    this.record(key, path, kind, pid, pinned, id);
  }

  private record(key: string, path: string, kind: "openssl" | "go", pid: number, pinned: boolean, id: number): void {
    if (id < 0) {
      this.fail(key, path, cString(this.err).split("\n")[0] ?? `errno ${-id}`);
      return;
    }
    const entry: Entry = { id, path, kind, pids: new Set(pid && !pinned ? [pid] : []), pinned };
    // the OpenSSL attach says where its probes went
    if (kind === "openssl") entry.probes = cString(this.err);
    this.targets.set(key, entry);
    this.log.info("TLS probes attached", { path, kind, ...(entry.probes ? { probes: entry.probes } : {}) });
  }

  private reject(key: string): void {
    if (this.rejected.size >= MAX_REJECTED) this.rejected.clear(); // bounded: they are looked at again
    this.rejected.add(key);
  }

  private fail(key: string, path: string, reason: string): void {
    this.reject(key);
    // the reason without the path, so counts group
    let why = reason.replace(path, "<binary>");
    if (!this.failures.has(why) && this.failures.size >= MAX_FAILURE_REASONS) why = "other";
    this.failures.set(why, (this.failures.get(why) ?? 0) + 1);
    this.log.warn("TLS probes not attached", { path, reason });
  }

  /** A function symbol's [address, size], or undefined. */
  private symbol(path: string, name: string): [number, number] | undefined {
    const rc = this.shim.elfSymbol(path, name, this.symAddr, this.symSize);
    if (rc !== 1) return undefined;
    const addr = Number(this.symAddr[0]);
    const size = Number(this.symSize[0]);
    return size > 0 ? [addr, size] : undefined;
  }

  private pollExecs(): void {
    if (this.stopped) return;
    const now = Date.now();
    const n = this.shim.drainExecs(this.handle, this.execPids, this.execPids.length);
    for (let i = 0; i < n; i++) {
      const pid = this.execPids[i] as number;
      if (this.onlyPids.size && !this.onlyPids.has(pid)) continue;
      // the old image is gone
      for (const t of this.targets.values()) t.pids.delete(pid);
      this.scanPid(pid);
      if (this.rescans.length + RESCAN_AFTER_MS.length <= MAX_RESCANS) {
        for (const ms of RESCAN_AFTER_MS) this.rescans.push({ pid, at: now + ms });
      }
    }
    if (this.rescans.length) {
      const due = this.rescans.filter((r) => r.at <= now);
      if (due.length) {
        this.rescans = this.rescans.filter((r) => r.at > now);
        for (const r of due) this.scanPid(r.pid);
      }
    }
  }

  /** Detaches the probes of binaries no process maps any more. */
  checkLiveness(): void {
    for (const [key, t] of this.targets) {
      if (t.pinned) continue;
      for (const pid of t.pids) if (!existsSync(`/proc/${pid}`)) t.pids.delete(pid);
      if (t.pids.size) continue;
      this.shim.tlsDetach(this.handle, t.id);
      this.targets.delete(key);
      this.rejected.delete(key);
      this.log.info("TLS probes detached: no process maps the binary", { path: t.path });
    }
  }
}

function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (Number.isInteger(pid) && pid > 0) out.push(pid);
  }
  return out;
}

/** Offsets of the RET instructions of a function ([address, size]) from its start: objdump, no shell. */
function returnOffsets(path: string, [addr, size]: [number, number]): Promise<number[]> {
  if (!path.startsWith("/")) return Promise.reject(new Error(`not an absolute path: ${path}`));
  const range = [`--start-address=0x${addr.toString(16)}`, `--stop-address=0x${(addr + size).toString(16)}`];
  return new Promise((resolve, reject) => {
    execFile("objdump", ["-d", "--no-show-raw-insn", ...range, path], { maxBuffer: 16 * 1024 * 1024 }, (err, out) => {
      if (err) return reject(new Error(`objdump: ${err.message}`));
      const offsets: number[] = [];
      for (const line of out.split("\n")) {
        const m = /^\s*([0-9a-f]+):\s+ret/.exec(line);
        if (m) offsets.push(Number.parseInt(m[1] as string, 16) - addr);
      }
      resolve(offsets);
    });
  });
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul < 0 ? buf.length : nul).trim();
}
