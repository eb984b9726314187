import { readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
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

/**
 * service.name of an observed process: its OTEL_SERVICE_NAME, else the script an interpreter
 * runs (node app.js -> "app"), else the executable name. Reads /proc once per pid (bounded cache).
 */
export class ServiceResolver {
  private readonly cache = new Map<number, ServiceIdentity>();

  constructor(private readonly maxEntries = 4096) {}

  resolve(pid: number, comm: string): ServiceIdentity {
    const hit = this.cache.get(pid);
    if (hit) return hit;
    const id = this.lookup(pid, comm);
    this.cache.set(pid, id);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as number);
    return id;
  }

  private lookup(pid: number, comm: string): ServiceIdentity {
    const attributes: ServiceIdentity["attributes"] = { "process.pid": pid, "process.executable.name": comm };
    let argv: string[] = [];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, "latin1").split("\0").filter(Boolean);
      if (argv.length) attributes["process.command_line"] = argv.join(" ").slice(0, 512);
    } catch {
      // the process is gone: keep what the kernel told us
    }
    try {
      const container = containerFromCgroup(readFileSync(`/proc/${pid}/cgroup`, "latin1"));
      if (container) {
        attributes["container.id"] = container.id;
        if (container.runtime) attributes["container.runtime"] = container.runtime;
      }
      // "net:[4026531840]": the network namespace, to tell apart hosts simulated on one machine
      const ns = /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1];
      if (ns) attributes["kalman.netns"] = Number(ns);
    } catch {
      // gone, or not ours to read
    }
    let serviceName: string | undefined;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
      for (const kv of env) {
        if (kv.startsWith("OTEL_SERVICE_NAME=")) serviceName = kv.slice(18) || undefined;
        else if (kv.startsWith("OTEL_RESOURCE_ATTRIBUTES=")) {
          for (const pair of kv.slice(25).split(",")) {
            const eq = pair.indexOf("=");
            if (eq > 0) attributes[pair.slice(0, eq).trim()] = decodeURIComponent(pair.slice(eq + 1).trim());
          }
        }
      }
    } catch {
      // no access or gone
    }
    if (!serviceName && typeof attributes["service.name"] === "string") serviceName = attributes["service.name"];
    if (!serviceName && argv.length > 1 && INTERPRETERS.has(basename(argv[0] ?? "").replace(/\d+(\.\d+)*$/, ""))) {
      const script = argv.slice(1).find((a) => !a.startsWith("-"));
      if (script) serviceName = basename(script).replace(/\.(m?js|cjs|ts|py|rb|pl|php)$/, "");
    }
    return { serviceName: serviceName ?? comm, attributes };
  }
}
