import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { ServiceIdentity } from "./types.js";

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
