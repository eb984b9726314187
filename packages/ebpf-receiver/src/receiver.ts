import { setTimeout as sleep } from "node:timers/promises";
import { ReceiverError, type ReceiverStage } from "./errors.js";
import { ConfigFlag, Counter, DataEvent, Limits, TlsCounter } from "./layout.generated.js";
import { createStderrLogger, type Logger } from "./logger.js";
import { loadShim, nativePaths, type Shim } from "./native.js";
import { receiverPreflight } from "./preflight.js";
import { EventBatch } from "./records.js";
import { type TlsTarget, TlsTargets } from "./tls-targets.js";

/** TLS plaintext capture (uprobes on OpenSSL, Node's bundled OpenSSL and Go crypto/tls). */
export interface TlsOptions {
  /** Capture plaintext only in these processes (tgids). Empty or absent: every process. */
  pids?: number[];
  /**
   * Where the OpenSSL probes break. "cheapest" (default): on instructions the kernel emulates
   * when the library allows it (an internal function SSL_read and SSL_read_ex share, for Debian's
   * OpenSSL 3), ~0.65 µs a hit instead of ~9 µs under KVM. "entry": the exported functions'
   * entries, as earlier versions did (pnpm bench:tls compares both).
   */
  probeAt?: "cheapest" | "entry";
}

export interface SocketTracerOptions {
  /** Payload bytes captured per event (default 1024, at most 16384). */
  captureBytes?: number;
  /** Trace only these process ids (tgids). Empty or absent: every process. */
  pids?: number[];
  /** Trace only sockets whose local or remote port is listed. Empty or absent: every port. */
  ports?: number[];
  /** Kernel ring buffer size in bytes, a power of two (default 16 MiB). */
  ringBufferBytes?: number;
  /** Size of the buffer each drain fills (default 4 MiB). */
  batchBytes?: number;
  /**
   * For this long after open (ms, default 60000), reads/writes already blocked when the tracer
   * attached are still recorded, rebuilt from saved registers at their exit. 0 turns it off.
   */
  recoverInFlightMs?: number;
  /** Milliseconds between drains when the ring is idle (default 5). */
  drainIntervalMs?: number;
  /** Close (detach everything) on SIGINT/SIGTERM, then let the signal take its default course (default true). */
  closeOnSignals?: boolean;
  /**
   * Plaintext of TLS connections, from uprobes on the TLS libraries of running and new processes
   * (default on). Records carry RecordFlag.tls and the socket of the connection. `false` turns it off.
   */
  tls?: boolean | TlsOptions;
  /** Process never traced, in the kernel (default: this process). */
  selfPid?: number;
  logger?: Logger;
  /** Paths to the BPF object and the shim (default: this package's lib/). */
  objectPath?: string;
  shimPath?: string;
}

/** Counters for loss accounting: nothing is dropped silently. */
export interface ReceiverStats {
  /** Records handed to JS. */
  received: number;
  /** Bytes handed to JS. */
  receivedBytes: number;
  /** Drain calls made. */
  drains: number;
  /** Records written to the ring by the kernel. */
  kernelEvents: number;
  /** Records lost because the ring buffer was full. */
  lostRingFull: number;
  /** Syscalls not recorded because the per-thread stash was full. */
  lostStashFull: number;
  /** sendmmsg/recvmmsg messages beyond the per-call limit, not emitted. */
  mmsgSkipped: number;
  /** Data events whose payload was cut to the capture size. */
  truncated: number;
  /** Payload/sockaddr reads from user memory that failed. */
  readErrors: number;
  /** Sockets traced without an id because the socket map was full. */
  sockMapFull: number;
  /** TLS plaintext records written by the uprobes. */
  tlsPlaintext: number;
  /** Syscall payloads of TLS sockets (ciphertext), not emitted. */
  tlsCiphertextDropped: number;
  /** TLS plaintext dropped: the socket behind the call was not found. */
  tlsNoSocket: number;
  /** TLS plaintext waiting for its socket replaced by a newer one before it was sent (lost). */
  tlsUnboundReplaced: number;
  /** exec notifications lost (a new process's TLS binary may be missed). */
  tlsExecLost: number;
  /** Binaries with TLS probes attached now. */
  tlsTargets: number;
  /** TLS attach failures by reason. */
  tlsAttachFailures: Record<string, number>;
}

const DEFAULTS = {
  captureBytes: Limits.captureDefault,
  ringBufferBytes: 16 * 1024 * 1024,
  batchBytes: 4 * 1024 * 1024,
  drainIntervalMs: 5,
  recoverInFlightMs: 60_000,
};

const ERR_LEN = 8192;
const MAX_RECORD = DataEvent.sizeof + Limits.captureMax + 8;
const ALLOW_PID = 0;
const ALLOW_PORT = 1;
const ALLOW_TLS_PID = 2;

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * The eBPF socket tracer: open() loads and attaches it, batches() yields drained
 * record batches, close() detaches everything.
 *
 * @example
 *   const tracer = SocketTracer.open({ ports: [8080] });
 *   for await (const batch of tracer.batches()) {
 *     const c = batch.cursor();
 *     while (c.next()) if (c.type === RecordType.data) console.log(c.tgid, c.bytes);
 *   }
 */
export class SocketTracer {
  private readonly shim: Shim;
  private handle: unknown;
  private readonly buf: Buffer;
  private readonly recordCount = new Uint32Array(1);
  private readonly statsBuf = Buffer.alloc(8 * Math.max(Counter.count, TlsCounter.count));
  private tls: TlsTargets | undefined;
  private readonly interval: number;
  private readonly log: Logger;
  private received = 0;
  private receivedBytes = 0;
  private drains = 0;
  private closed = false;
  private readonly signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** Hooks missing on this kernel whose programs were not loaded. */
  readonly skippedPrograms: string[];

  private constructor(shim: Shim, handle: unknown, opts: SocketTracerOptions, log: Logger) {
    this.shim = shim;
    this.handle = handle;
    this.log = log;
    this.buf = Buffer.alloc(Math.max(opts.batchBytes ?? DEFAULTS.batchBytes, 2 * MAX_RECORD));
    this.interval = opts.drainIntervalMs ?? DEFAULTS.drainIntervalMs;
    const skipped = shim.skipped(handle);
    this.skippedPrograms = skipped ? skipped.split(",") : [];
  }

  /** Checks the host, then opens, loads, configures and attaches the tracer. Throws ReceiverError. */
  static open(opts: SocketTracerOptions = {}): SocketTracer {
    const log = opts.logger ?? createStderrLogger("ebpf-receiver");
    const captureBytes = opts.captureBytes ?? DEFAULTS.captureBytes;
    if (!Number.isInteger(captureBytes) || captureBytes < 0 || captureBytes > Limits.captureMax) {
      throw new ReceiverError(
        "configure",
        `captureBytes=${captureBytes} is out of range`,
        `set captureBytes to an integer from 0 to ${Limits.captureMax}`,
      );
    }
    const ringBytes = opts.ringBufferBytes ?? DEFAULTS.ringBufferBytes;
    if (!isPowerOfTwo(ringBytes) || ringBytes < 4096) {
      throw new ReceiverError(
        "configure",
        `ringBufferBytes=${ringBytes} is not a power of two ≥ 4096`,
        "set ringBufferBytes to a power of two, e.g. 16777216",
      );
    }
    for (const check of receiverPreflight()) {
      if (!check.ok) throw new ReceiverError("preflight", check.detail, check.fix ?? "run `kalman doctor`");
    }

    const paths = nativePaths();
    const shim = loadShim(opts.shimPath ?? paths.shim);
    const err = Buffer.alloc(ERR_LEN);
    const objectPath = opts.objectPath ?? paths.object;
    const handle = shim.open(objectPath, ringBytes, err, ERR_LEN);
    if (!handle) {
      throw new ReceiverError(
        "open",
        cString(err),
        "run `pnpm build` to build the BPF object; `kalman doctor` checks the host",
      );
    }
    const tlsOn = opts.tls !== false;
    const tlsPids = typeof opts.tls === "object" ? (opts.tls.pids ?? []) : [];
    shim.setTls(handle, tlsOn ? 1 : 0);
    const fail = (stage: ReceiverStage, fix: string): never => {
      const message = cString(err);
      shim.destroy(handle);
      const [head, ...rest] = message.split("\n");
      throw new ReceiverError(stage, head ?? message, fix, rest.join("\n") || undefined);
    };
    if (shim.load(handle, err, ERR_LEN) !== 0) {
      fail("load", "the verifier's last lines are below; run `kalman doctor` to check kernel features");
    }
    let flags = 0;
    if (opts.pids?.length) flags |= ConfigFlag.filterPid;
    if (opts.ports?.length) flags |= ConfigFlag.filterPort;
    if (tlsOn) flags |= ConfigFlag.tls;
    if (tlsPids.length) flags |= ConfigFlag.tlsFilterPid;
    for (const pid of tlsPids) shim.allow(handle, ALLOW_TLS_PID, pid, 1);
    for (const pid of opts.pids ?? []) shim.allow(handle, ALLOW_PID, pid, 1);
    for (const port of opts.ports ?? []) shim.allow(handle, ALLOW_PORT, port, 1);
    const rc = shim.configure(
      handle,
      opts.selfPid ?? process.pid,
      captureBytes,
      flags,
      opts.recoverInFlightMs ?? DEFAULTS.recoverInFlightMs,
    );
    if (rc !== 0) {
      err.write(`cannot write the config map (errno ${-rc})\0`);
      fail("configure", "run `kalman doctor`");
    }
    if (shim.attach(handle, err, ERR_LEN) !== 0) {
      fail("attach", "check that tracefs is mounted and the tracepoints exist; run `kalman doctor`");
    }
    const tracer = new SocketTracer(shim, handle, opts, log);
    if (tracer.skippedPrograms.length) {
      log.warn("hooks missing on this kernel, not traced", { programs: tracer.skippedPrograms });
    }
    if (tlsOn) {
      const selfPid = opts.selfPid ?? process.pid;
      const only = new Set(tlsPids.length ? tlsPids : (opts.pids ?? []));
      const probeAt = typeof opts.tls === "object" ? opts.tls.probeAt : undefined;
      tracer.tls = new TlsTargets(shim, handle, log, selfPid, only, probeAt);
      tracer.tls.start();
    }
    if (opts.closeOnSignals ?? true) tracer.installSignalHandlers();
    log.info("socket tracer attached", { capture: captureBytes, ringBytes, filters: flags, tls: tlsOn });
    return tracer;
  }

  /** Adds or removes a pid from the allowlist (only effective when opened with `pids`). */
  allowPid(pid: number, on = true): void {
    this.requireOpen();
    this.shim.allow(this.handle, ALLOW_PID, pid, on ? 1 : 0);
  }

  /** Binaries whose TLS functions are probed now (empty when TLS capture is off). */
  tlsTargets(): TlsTarget[] {
    return this.tls?.list() ?? [];
  }

  /** Waits until TLS binaries found so far are attached (Go ones need a disassembly first). */
  async tlsSettled(): Promise<void> {
    await this.tls?.settled();
  }

  /** Looks for TLS binaries in a process now (they are also found on their own at exec). */
  scanTlsProcess(pid: number): void {
    this.tls?.scanPid(pid);
  }

  /** Detaches the TLS probes of binaries no process maps any more (also runs every 2 s). */
  pruneTlsTargets(): void {
    this.tls?.checkLiveness();
  }

  /** Adds or removes a port from the allowlist (only effective when opened with `ports`). */
  allowPort(port: number, on = true): void {
    this.requireOpen();
    this.shim.allow(this.handle, ALLOW_PORT, port, on ? 1 : 0);
  }

  /**
   * Drains what the kernel has queued, up to one buffer, in one native call.
   * Returns null when nothing was queued. The batch is valid until the next drain.
   */
  drainOnce(): EventBatch | null {
    this.requireOpen();
    const n = this.shim.drain(this.handle, this.buf, this.buf.length, this.recordCount);
    this.drains++;
    if (n < 0) throw new ReceiverError("drain", `ring buffer drain failed (errno ${-n})`, "run `kalman doctor`");
    if (n === 0) return null;
    const count = this.recordCount[0] ?? 0;
    this.received += count;
    this.receivedBytes += n;
    return new EventBatch(this.buf, n, count);
  }

  /**
   * Batches as they arrive: drains on a short timer, and at once again while the
   * buffer keeps filling. Each batch is valid until the loop asks for the next one.
   * Ends when close() is called.
   */
  async *batches(): AsyncGenerator<EventBatch, void, void> {
    while (!this.closed) {
      const batch = this.drainOnce();
      if (batch) {
        yield batch;
        if (batch.byteLength + MAX_RECORD > this.buf.length) continue; // buffer was full: more is queued
      }
      if (this.closed) return;
      await sleep(this.interval);
    }
  }

  stats(): ReceiverStats {
    const k = this.kernelCounters();
    const t = this.tlsCounters();
    return {
      received: this.received,
      receivedBytes: this.receivedBytes,
      drains: this.drains,
      kernelEvents: k[Counter.events] ?? 0,
      lostRingFull: k[Counter.ringbufFull] ?? 0,
      lostStashFull: k[Counter.stashFull] ?? 0,
      mmsgSkipped: k[Counter.mmsgSkipped] ?? 0,
      truncated: k[Counter.truncated] ?? 0,
      readErrors: k[Counter.readError] ?? 0,
      sockMapFull: k[Counter.sockMapFull] ?? 0,
      tlsPlaintext: t[TlsCounter.plaintext] ?? 0,
      tlsCiphertextDropped: t[TlsCounter.ciphertext] ?? 0,
      tlsNoSocket: t[TlsCounter.noSocket] ?? 0,
      tlsUnboundReplaced: t[TlsCounter.unboundReplaced] ?? 0,
      tlsExecLost: t[TlsCounter.execLost] ?? 0,
      tlsTargets: this.tls?.list().length ?? 0,
      tlsAttachFailures: this.tls?.failureCounts() ?? {},
    };
  }

  /** Kernel ids of the loaded programs (to check with bpftool that close() removed them). */
  programIds(): number[] {
    this.requireOpen();
    const ids = new Uint32Array(64);
    const n = this.shim.progIds(this.handle, ids, ids.length);
    return Array.from(ids.subarray(0, Math.max(0, n)));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Detaches every program and frees the maps. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const [sig, fn] of this.signalHandlers) process.off(sig, fn);
    this.signalHandlers.length = 0;
    this.tls?.stop();
    this.shim.destroy(this.handle);
    this.handle = null;
    this.log.info("socket tracer closed", { received: this.received });
  }

  private kernelCounters(): number[] {
    if (this.closed) return [];
    const n = this.shim.stats(this.handle, this.statsBuf, Counter.count);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(Number(this.statsBuf.readBigUInt64LE(i * 8)));
    return out;
  }

  private tlsCounters(): number[] {
    if (this.closed || !this.tls) return [];
    const n = this.shim.tlsStats(this.handle, this.statsBuf, TlsCounter.count);
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(Number(this.statsBuf.readBigUInt64LE(i * 8)));
    return out;
  }

  private installSignalHandlers(): void {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      const fn = () => {
        this.close();
        // Nobody else handles it: restore the default action (exit by the signal).
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      process.on(sig, fn);
      this.signalHandlers.push([sig, fn]);
    }
  }

  private requireOpen(): void {
    if (this.closed) throw new ReceiverError("close", "the tracer is closed", "open a new SocketTracer");
  }
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul < 0 ? buf.length : nul).trim();
}
