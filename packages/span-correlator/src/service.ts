import { readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { type AttributeValue, BoundedMap } from "@kalman/flow-aggregator";
import type { ServiceIdentity } from "./types.js";

/** Container runtimes by the cgroup path prefix in front of the 64-hex container id. */
const RUNTIMES: Array<[RegExp, string]> = [
  [/docker[-/]/, "docker"],
  [/cri-containerd-|containerd/, "containerd"],
  [/crio-/, "cri-o"],
  [/libpod-|podman/, "podman"],
];
const CONTAINER_ID = /([0-9a-f]{64})/;

/** container.id and container.runtime from a /proc/<pid>/cgroup text, if the process runs in a container. */
export function containerFromCgroup(cgroup: string): { id: string; runtime?: string } | undefined {
  for (const line of cgroup.split("\n")) {
    const path = line.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
    const m = CONTAINER_ID.exec(path);
    if (!m?.[1]) continue;
    const runtime = RUNTIMES.find(([re]) => re.test(path))?.[1];
    return runtime ? { id: m[1], runtime } : { id: m[1] };
  }
  return undefined;
}

const INTERPRETERS = new Set(["node", "python", "python3", "ruby", "perl", "php", "java", "bun", "deno"]);

/** What an enricher (K8s, ...) adds to a process's identity. */
export interface Enrichment {
  attributes?: Record<string, AttributeValue>;
  /** service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES name one (e.g. the K8s workload). */
  serviceName?: string;
  /** Not known yet (e.g. the pod list has not arrived): look the process up again after `retryMs`. */
  incomplete?: boolean;
}

/** Adds tags to a process from what the resolver found (its attributes so far: container.id, ...). */
export type Enricher = (pid: number, attributes: Readonly<Record<string, AttributeValue>>) => Enrichment | undefined;

export interface ServiceResolverOptions {
  /** Processes remembered (default 4096). */
  maxEntries?: number;
  enrichers?: Enricher[];
  /** How long an incomplete identity is kept before the process is looked up again (default 2000 ms). */
  retryMs?: number;
  /** /proc (tests may point elsewhere). */
  procRoot?: string;
}

/** USER_HZ: the unit of /proc/<pid>/stat times (100 on every Linux architecture Kalman runs on). */
const CLOCK_TICKS = 100;

/**
 * service.name and resource attributes of an observed process, from /proc, cached per pid (bounded):
 * - service.name: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else an
 *   enricher's (the K8s workload), else the script an interpreter runs (node app.js -> "app"),
 *   else the executable name.
 * - process.pid, process.parent_pid, process.executable.name/.path, process.command_line,
 *   process.owner, process.creation.time (ISO 8601, from /proc/<pid>/stat and the boot time);
 *   container.id/runtime (cgroup path), kalman.netns; the process's own OTEL_RESOURCE_ATTRIBUTES;
 *   the enrichers' attributes (K8s pod, namespace, workload, labels).
 */
export class ServiceResolver {
  /** Evicted in O(1): on a host with process churn the cache stays full. */
  private readonly cache: BoundedMap<number, ServiceIdentity>;
  private readonly retryAt = new Map<number, number>();
  private readonly byService: BoundedMap<string, Record<string, AttributeValue>>;
  private readonly maxEntries: number;
  private readonly enrichers: Enricher[];
  private readonly retryMs: number;
  private readonly proc: string;
  private bootTimeS: number | undefined;
  private readonly users = new Map<number, string>();

  constructor(options: number | ServiceResolverOptions = {}) {
    const o = typeof options === "number" ? { maxEntries: options } : options;
    this.maxEntries = Math.max(1, o.maxEntries ?? 4096);
    this.cache = new BoundedMap(this.maxEntries, (pid) => this.retryAt.delete(pid));
    this.byService = new BoundedMap(this.maxEntries);
    this.enrichers = o.enrichers ?? [];
    this.retryMs = o.retryMs ?? 2000;
    this.proc = o.procRoot ?? "/proc";
  }

  resolve(pid: number, comm: string): ServiceIdentity {
    const hit = this.cache.get(pid);
    if (hit) {
      if (this.retryAt.size === 0) return hit;
      const at = this.retryAt.get(pid);
      if (at === undefined || Date.now() < at) return hit;
    }
    const id = this.lookup(pid, comm);
    this.cache.set(pid, id);
    this.rememberService(id);
    return id;
  }

  /**
   * Resource attributes every process of a service shares (process.pid differs between nginx
   * workers, the container or pod does not): what a metric resource of that service can carry.
   */
  attributesOfService(serviceName: string): Record<string, AttributeValue> | undefined {
    return this.byService.get(serviceName);
  }

  private rememberService(id: ServiceIdentity): void {
    const known = this.byService.get(id.serviceName);
    if (!known) {
      this.byService.set(id.serviceName, { ...id.attributes });
      return;
    }
    for (const k of Object.keys(known)) if (known[k] !== id.attributes[k]) delete known[k];
  }

  private lookup(pid: number, comm: string): ServiceIdentity {
    const proc = `${this.proc}/${pid}`;
    const attributes: ServiceIdentity["attributes"] = { "process.pid": pid, "process.executable.name": comm };
    let argv: string[] = [];
    try {
      argv = readFileSync(`${proc}/cmdline`, "latin1").split("\0").filter(Boolean);
      if (argv.length) attributes["process.command_line"] = argv.join(" ").slice(0, 512);
    } catch {
      // the process is gone: keep what the kernel told us
    }
    try {
      attributes["process.executable.path"] = readlinkSync(`${proc}/exe`);
    } catch {
      // kernel thread, gone, or not ours to read
    }
    this.addStat(proc, attributes);
    this.addOwner(proc, attributes);
    try {
      const container = containerFromCgroup(readFileSync(`${proc}/cgroup`, "latin1"));
      if (container) {
        attributes["container.id"] = container.id;
        if (container.runtime) attributes["container.runtime"] = container.runtime;
      }
      // "net:[4026531840]": the network namespace, to tell apart hosts simulated on one machine
      const ns = /\[(\d+)\]/.exec(readlinkSync(`${proc}/ns/net`))?.[1];
      if (ns) attributes["kalman.netns"] = Number(ns);
    } catch {
      // gone, or not ours to read
    }
    let serviceName: string | undefined;
    try {
      const env = readFileSync(`${proc}/environ`, "latin1").split("\0");
      for (const kv of env) {
        if (kv.startsWith("OTEL_SERVICE_NAME=")) serviceName = kv.slice(18).trim() || undefined;
        else if (kv.startsWith("OTEL_RESOURCE_ATTRIBUTES="))
          Object.assign(attributes, parseResourceAttributes(kv.slice(25)));
      }
    } catch {
      // no access or gone
    }
    if (!serviceName && typeof attributes["service.name"] === "string") serviceName = attributes["service.name"];
    let incomplete = false;
    for (const enrich of this.enrichers) {
      let e: Enrichment | undefined;
      try {
        e = enrich(pid, attributes);
      } catch {
        e = undefined;
      }
      if (!e) continue;
      // the process's own OTEL_RESOURCE_ATTRIBUTES win over what an enricher says
      if (e.attributes) for (const [k, v] of Object.entries(e.attributes)) if (!(k in attributes)) attributes[k] = v;
      if (!serviceName && e.serviceName) serviceName = e.serviceName;
      if (e.incomplete) incomplete = true;
    }
    if (incomplete) this.retryAt.set(pid, Date.now() + this.retryMs);
    else this.retryAt.delete(pid);
    if (!serviceName && argv.length > 1 && INTERPRETERS.has(basename(argv[0] ?? "").replace(/\d+(\.\d+)*$/, ""))) {
      const script = argv.slice(1).find((a) => !a.startsWith("-"));
      if (script) serviceName = basename(script).replace(/\.(m?js|cjs|ts|py|rb|pl|php)$/, "");
    }
    return { serviceName: serviceName ?? comm, attributes };
  }

  /** process.parent_pid and process.creation.time from /proc/<pid>/stat (start time in ticks since boot). */
  private addStat(proc: string, attributes: ServiceIdentity["attributes"]): void {
    try {
      const stat = readFileSync(`${proc}/stat`, "latin1");
      // the command name can hold spaces and parentheses: fields resume after the last ")"
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ppid = Number(fields[1]);
      if (Number.isInteger(ppid) && ppid > 0) attributes["process.parent_pid"] = ppid;
      const ticks = Number(fields[19]);
      const boot = this.bootTime();
      if (Number.isFinite(ticks) && boot !== undefined)
        attributes["process.creation.time"] = new Date((boot + ticks / CLOCK_TICKS) * 1000).toISOString();
    } catch {
      // gone
    }
  }

  /** process.owner: the user name of the real uid (from /etc/passwd), else the uid. */
  private addOwner(proc: string, attributes: ServiceIdentity["attributes"]): void {
    try {
      const status = readFileSync(`${proc}/status`, "latin1");
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      if (!Number.isInteger(uid)) return;
      attributes["process.owner"] = this.userName(uid);
    } catch {
      // gone
    }
  }

  private userName(uid: number): string {
    const hit = this.users.get(uid);
    if (hit !== undefined) return hit;
    let name = String(uid);
    try {
      for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
        const f = line.split(":");
        if (f[2] === String(uid) && f[0]) {
          name = f[0];
          break;
        }
      }
    } catch {
      // no passwd: the uid it is
    }
    if (this.users.size < 1024) this.users.set(uid, name);
    return name;
  }

  private bootTime(): number | undefined {
    if (this.bootTimeS !== undefined) return this.bootTimeS;
    try {
      const btime = Number(/^btime\s+(\d+)/m.exec(readFileSync(`${this.proc}/stat`, "latin1"))?.[1]);
      if (Number.isFinite(btime) && btime > 0) this.bootTimeS = btime;
    } catch {
      // no /proc/stat
    }
    return this.bootTimeS;
  }
}

/** OTEL_RESOURCE_ATTRIBUTES ("k=v,k2=v2", values percent-encoded); malformed pairs are skipped. */
export function parseResourceAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const key = pair.slice(0, eq).trim();
    if (!key) continue;
    const raw = pair.slice(eq + 1).trim();
    try {
      out[key] = decodeURIComponent(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}
