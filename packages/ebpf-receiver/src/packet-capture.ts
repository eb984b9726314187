import { statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import koffi from "koffi";
import { ReceiverError, type ReceiverStage } from "./errors.js";
import { CaptureCounter, PacketRecord, SnapLen } from "./layout.generated.js";
import { createStderrLogger, type Logger } from "./logger.js";
import { type CaptureShim, loadCaptureShim } from "./native.js";
import { PacketBatch } from "./packets.js";

/** Where to capture: a network namespace and interfaces in it. */
export interface PacketCaptureTarget {
  /** Path of a network namespace (`/var/run/netns/<name>`, `/proc/<pid>/ns/net`); default: this process's. */
  netns?: string;
  /** Interface names or globs (`*`, `?`), e.g. `["eth0", "veth*"]`; default: every interface, one handle. */
  interfaces?: string[];
}

export interface PacketCaptureOptions {
  /** Default: one target, this process's namespace, every interface. */
  targets?: PacketCaptureTarget[];
  /** Bytes kept per frame (default 256, at most 65535); wireLen keeps the real length. */
  snapLen?: number;
  /** tcpdump filter expression (pcap-filter syntax), applied in the kernel. Default: none. */
  filter?: string;
  /** Ring size per handle in bytes (default 4 MiB). */
  ringBytes?: number;
  /** A partly filled ring block is handed over after this many ms (default 20). */
  retireMs?: number;
  /** Size of the buffer each drain fills (default 4 MiB). */
  batchBytes?: number;
  logger?: Logger;
  /** Path of libkalman.so (default: this package's lib/). */
  shimPath?: string;
}

/** One open AF_PACKET socket: its id appears in every packet it captured (PacketCursor.captureId). */
export interface CaptureHandle {
  captureId: number;
  /** Namespace path as given ("" = this process's namespace). */
  netns: string;
  /** Inode of the network namespace (what socket events carry as `netns`). */
  netnsInode: number;
  /** Interface name ("" = every interface of the namespace). */
  interface: string;
}

export interface CaptureCounters {
  /** Frames the kernel accepted through the filter (including the ones it then dropped). */
  kernelPackets: number;
  /** Frames the kernel dropped because the ring was full. */
  kernelDrops: number;
  /** Times the ring froze for lack of a free block. */
  freezeQueue: number;
  /** Packets handed to JS. */
  delivered: number;
  /** Delivered packets cut to snapLen. */
  truncated: number;
  /** Loopback PACKET_OUTGOING copies skipped: the kernel shows every lo frame twice (not a loss). */
  loopbackSkipped: number;
}

export interface PacketCaptureStats extends CaptureCounters {
  drains: number;
  deliveredBytes: number;
  perHandle: Array<CaptureHandle & CaptureCounters>;
}

const DEFAULTS = { snapLen: SnapLen.default, ringBytes: 4 << 20, retireMs: 20, batchBytes: 4 << 20 };
const ERR_LEN = 1024;
const MAX_RECORD = PacketRecord.sizeof + SnapLen.max + 8;
const PAGE = 4096;
const MAX_NAME_CACHE = 4096;

/**
 * AF_PACKET (TPACKET_V3) capture in any network namespace, per interface or all of them, with a
 * tcpdump filter applied in the kernel. One drain copies every handle's ready frames into one
 * reused buffer with one native call.
 *
 * @example
 *   const cap = PacketCapture.open({ targets: [{ interfaces: ["lo"] }], filter: "tcp port 8080" });
 *   for await (const batch of cap.batches()) {
 *     const p = batch.cursor();
 *     while (p.next()) console.log(cap.interfaceName(p.captureId, p.ifindex), p.wireLen);
 *   }
 */
export class PacketCapture {
  private readonly buf: Buffer;
  private readonly packetCount = new Uint32Array(1);
  private readonly statsBuf = Buffer.alloc(8 * CaptureCounter.count);
  private readonly nameBuf = Buffer.alloc(64);
  /** Handle addresses rotated by one per drain, so a busy interface cannot starve the others. */
  private readonly rotations: BigUint64Array[];
  private turn = 0;
  private readonly names = new Map<number, string>();
  private drains = 0;
  private deliveredBytes = 0;
  private closed = false;

  private constructor(
    private readonly shim: CaptureShim,
    private readonly ptrs: unknown[],
    private readonly info: CaptureHandle[],
    batchBytes: number,
    private readonly log: Logger,
  ) {
    this.buf = Buffer.alloc(batchBytes);
    const addrs = ptrs.map((p) => koffi.address(p));
    this.rotations = addrs.map((_, r) => BigUint64Array.from(addrs.map((_, i) => addrs[(i + r) % addrs.length]!)));
  }

  /** Opens one handle per matching interface of every target (or one per namespace for all). Throws ReceiverError. */
  static open(opts: PacketCaptureOptions = {}): PacketCapture {
    const log = opts.logger ?? createStderrLogger("packet-capture");
    const snapLen = intOption("snapLen", opts.snapLen ?? DEFAULTS.snapLen, 1, SnapLen.max);
    const retireMs = intOption("retireMs", opts.retireMs ?? DEFAULTS.retireMs, 1, 60_000);
    const ringBytes = intOption("ringBytes", opts.ringBytes ?? DEFAULTS.ringBytes, 64 << 10, 1 << 30);
    const batchBytes = intOption("batchBytes", opts.batchBytes ?? DEFAULTS.batchBytes, 2 * MAX_RECORD, 1 << 30);
    const filter = opts.filter ?? "";
    if (typeof filter !== "string" || filter.includes("\0")) {
      throw new ReceiverError("filter", "filter must be a tcpdump expression string", "fix the `filter` option");
    }
    // A block must hold the largest frame; a few blocks per ring let the kernel fill one while JS reads another.
    const blockBytes = Math.max(nextPow2(snapLen + PAGE), Math.min(256 << 10, floorTo(ringBytes / 4, PAGE)));
    const blockCount = Math.max(2, Math.floor(ringBytes / blockBytes));

    const shim = loadCaptureShim(opts.shimPath);
    const err = Buffer.alloc(ERR_LEN);
    const ptrs: unknown[] = [];
    const info: CaptureHandle[] = [];
    try {
      for (const target of opts.targets?.length ? opts.targets : [{}]) {
        const netns = target.netns ?? "";
        const netnsInode = namespaceInode(netns);
        for (const name of selectInterfaces(shim, netns, target.interfaces, log)) {
          const captureId = info.length;
          if (captureId > 0xffff)
            throw new ReceiverError("open", "more than 65536 capture handles", "select fewer interfaces");
          const ptr = shim.open(
            netns,
            name,
            snapLen,
            blockBytes,
            blockCount,
            retireMs,
            filter,
            captureId,
            err,
            ERR_LEN,
          );
          if (!ptr) throw openError(cString(err), netns, name);
          ptrs.push(ptr);
          info.push({ captureId, netns, netnsInode, interface: name });
        }
      }
    } catch (e) {
      for (const p of ptrs) shim.close(p);
      throw e;
    }
    log.info("packet capture open", { handles: info.length, snapLen, blockBytes, blockCount, filter });
    return new PacketCapture(shim, ptrs, info, batchBytes, log);
  }

  /**
   * Copies what every handle's ring has ready, up to one buffer, in one native call. Undefined when
   * nothing was ready. The batch is valid until the next drain.
   */
  drain(): PacketBatch | undefined {
    this.requireOpen();
    const order = this.rotations[this.turn]!;
    this.turn = (this.turn + 1) % this.rotations.length;
    const n = this.shim.drain(order, order.length, this.buf, this.buf.length, this.packetCount);
    this.drains++;
    if (n < 0) throw new ReceiverError("drain", `packet ring drain failed (errno ${-n})`, "run `kalman doctor`");
    if (n === 0) return undefined;
    this.deliveredBytes += n;
    return new PacketBatch(this.buf, n, this.packetCount[0] ?? 0);
  }

  /**
   * Batches as they arrive: drains every intervalMs, and at once again while the buffer keeps
   * filling. Each batch is valid until the loop asks for the next one. Ends when close() is called.
   */
  async *batches(intervalMs = 10): AsyncGenerator<PacketBatch, void, void> {
    while (!this.closed) {
      const batch = this.drain();
      if (batch) {
        yield batch;
        if (batch.byteLength + MAX_RECORD > this.buf.length) continue; // buffer was full: more is ready
      }
      if (this.closed) return;
      await sleep(intervalMs);
    }
  }

  /** The open handles, indexed by captureId. */
  get handles(): readonly CaptureHandle[] {
    return this.info;
  }

  /** Name of an interface index as seen by that handle's namespace (cached); `if<N>` once it is gone. */
  interfaceName(captureId: number, ifindex: number): string {
    const key = captureId * 4294967296 + ifindex;
    const known = this.names.get(key);
    if (known !== undefined) return known;
    const ptr = this.ptrs[captureId];
    let name = `if${ifindex}`;
    if (ptr && !this.closed && this.shim.ifname(ptr, ifindex, this.nameBuf, this.nameBuf.length) === 0) {
      name = cString(this.nameBuf);
    }
    if (this.names.size >= MAX_NAME_CACHE) this.names.clear(); // interfaces churn (containers): stay bounded
    this.names.set(key, name);
    return name;
  }

  /** The network namespace a handle captures in: its path as given ("" = ours) and inode. */
  netnsOf(captureId: number): { path: string; inode: number } | undefined {
    const h = this.info[captureId];
    return h ? { path: h.netns, inode: h.netnsInode } : undefined;
  }

  /** Kernel and delivery counters, summed and per handle. Nothing is dropped silently. */
  stats(): PacketCaptureStats {
    const sum: CaptureCounters = {
      kernelPackets: 0,
      kernelDrops: 0,
      freezeQueue: 0,
      delivered: 0,
      truncated: 0,
      loopbackSkipped: 0,
    };
    const perHandle: Array<CaptureHandle & CaptureCounters> = [];
    for (const h of this.info) {
      const c = this.handleCounters(h.captureId);
      for (const k of Object.keys(sum) as Array<keyof CaptureCounters>) sum[k] += c[k];
      perHandle.push({ ...h, ...c });
    }
    return { ...sum, drains: this.drains, deliveredBytes: this.deliveredBytes, perHandle };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Unmaps every ring and closes every socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.ptrs) this.shim.close(p);
    this.ptrs.length = 0;
    this.log.info("packet capture closed", { drains: this.drains });
  }

  private handleCounters(captureId: number): CaptureCounters {
    const ptr = this.ptrs[captureId];
    const n = ptr && !this.closed ? this.shim.stats(ptr, this.statsBuf, CaptureCounter.count) : 0;
    const at = (i: number) => (i < n ? Number(this.statsBuf.readBigUInt64LE(i * 8)) : 0);
    return {
      kernelPackets: at(CaptureCounter.kernelPackets),
      kernelDrops: at(CaptureCounter.kernelDrops),
      freezeQueue: at(CaptureCounter.freezeQueue),
      delivered: at(CaptureCounter.delivered),
      truncated: at(CaptureCounter.truncated),
      loopbackSkipped: at(CaptureCounter.loopbackSkipped),
    };
  }

  private requireOpen(): void {
    if (this.closed) throw new ReceiverError("close", "the packet capture is closed", "open a new PacketCapture");
  }
}

/** Interfaces of a namespace as [ifindex, name] pairs. Throws ReceiverError("setns") when it cannot be entered. */
export function listInterfaces(netns = "", shimPath?: string): Array<[number, string]> {
  return namespaceInterfaces(loadCaptureShim(shimPath), netns);
}

function namespaceInterfaces(shim: CaptureShim, netns: string): Array<[number, string]> {
  const out = Buffer.alloc(64 << 10);
  const n = shim.netnsInterfaces(netns, out, out.length);
  if (n < 0) throw openError(cString(out) || `cannot list interfaces (errno ${-n})`, netns, "");
  const pairs: Array<[number, string]> = [];
  for (const line of out.toString("utf8", 0, n).split("\n")) {
    const space = line.indexOf(" ");
    if (space > 0) pairs.push([Number(line.slice(0, space)), line.slice(space + 1)]);
  }
  return pairs;
}

const GLOB = /[*?]/;

/** Interface names to open for a target: "" (all) when no list; globs expanded against the namespace. */
function selectInterfaces(shim: CaptureShim, netns: string, patterns: string[] | undefined, log: Logger): string[] {
  if (!patterns?.length) return [""];
  const wanted = new Set<string>();
  const globs = patterns.filter((p) => GLOB.test(p));
  for (const p of patterns) if (!GLOB.test(p)) wanted.add(p);
  if (globs.length) {
    const present = namespaceInterfaces(shim, netns).map(([, name]) => name);
    for (const g of globs) {
      const re = globRegExp(g);
      const hits = present.filter((name) => re.test(name));
      if (!hits.length) log.warn("interface pattern matches nothing", { pattern: g, netns: netns || "own" });
      for (const h of hits) wanted.add(h);
    }
  }
  if (!wanted.size) {
    throw new ReceiverError(
      "open",
      `no interface matches ${patterns.map((p) => JSON.stringify(p)).join(", ")} in ${netns ? `netns ${netns}` : "this network namespace"}`,
      `list them with \`ip${netns ? ` -n ${netnsName(netns)}` : ""} link\` and fix \`interfaces\``,
    );
  }
  return [...wanted];
}

function globRegExp(glob: string): RegExp {
  let src = "";
  for (const ch of glob) src += ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${src}$`);
}

function namespaceInode(netns: string): number {
  try {
    return statSync(netns || "/proc/self/ns/net").ino;
  } catch (e) {
    throw new ReceiverError(
      "setns",
      `network namespace ${netns} not found (${(e as NodeJS.ErrnoException).code ?? e})`,
      "pass an existing namespace path: /var/run/netns/<name> (see `ip netns list`) or /proc/<pid>/ns/net",
    );
  }
}

/** Maps the shim's "stage: message" to a ReceiverError with the fix for that stage. */
function openError(message: string, netns: string, ifname: string): ReceiverError {
  const m = /^(open|filter|setns|mmap): ([\s\S]*)$/.exec(message);
  const stage = (m?.[1] ?? "open") as ReceiverStage;
  const text = m?.[2] ?? message;
  const where = netns ? `netns ${netns}` : "this network namespace";
  switch (stage) {
    case "filter":
      return new ReceiverError("filter", text, "fix the filter expression (tcpdump syntax, see `man pcap-filter`)");
    case "setns":
      return new ReceiverError(
        "setns",
        text,
        "pass an existing namespace path (/var/run/netns/<name> from `ip netns list`, or /proc/<pid>/ns/net); entering it needs CAP_SYS_ADMIN — run `kalman doctor`",
      );
    case "mmap":
      return new ReceiverError("mmap", text, "lower `ringBytes` or raise the memory limit; run `kalman doctor`");
    default:
      if (/CAP_NET_RAW|EPERM|not permitted/i.test(text)) {
        return new ReceiverError("open", text, "run as root or grant CAP_NET_RAW; run `kalman doctor`");
      }
      return new ReceiverError(
        "open",
        ifname ? `${text} (${where})` : text,
        ifname
          ? `check the interface name with \`ip${netns ? ` -n ${netnsName(netns)}` : ""} link\``
          : "run `kalman doctor`",
      );
  }
}

function netnsName(path: string): string {
  const m = /^\/(?:var\/)?run\/netns\/([^/]+)$/.exec(path);
  return m?.[1] ?? path;
}

function intOption(key: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ReceiverError(
      "configure",
      `${key}=${value} is out of range`,
      `set ${key} to an integer from ${min} to ${max}`,
    );
  }
  return value;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function floorTo(n: number, unit: number): number {
  return Math.floor(n / unit) * unit;
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.toString("utf8", 0, nul < 0 ? buf.length : nul).trim();
}
