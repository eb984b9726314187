import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The demo topology: five "hosts" as network namespaces on one bridge (198.18.0.0/24, RFC 2544
 * benchmarking range), all created and removed by this code:
 *
 *   client 198.18.0.10 → gateway (nginx) 198.18.0.2:80 → frontend (Node) 198.18.0.3:3000
 *     → api (Python, thread per request) 198.18.0.4:5000 → data 198.18.0.5: redis :6379, postgres :5432
 *   and the frontend resolves inventory.kalman.test at dnsmasq on 198.18.0.5:53.
 */
export interface DemoTopology {
  hosts: Record<HostName, { ns: string; ip: string }>;
  /** Ports to trace to see every hop. */
  ports: number[];
  /** The namespace holding the bridge every host hangs off (ports v-<host>): where packets are captured. */
  switchNs: string;
  pids: Record<string, number>;
  /** Runs `count` sequential GET /checkout requests from the client namespace; returns their status codes. */
  drive(count: number, concurrency?: number): Promise<number[]>;
  stop(): Promise<void>;
}

export type HostName = "client" | "gateway" | "frontend" | "api" | "data";

const HOSTS: Record<HostName, number> = { client: 10, gateway: 2, frontend: 3, api: 4, data: 5 };
const SWITCH = "kl-demo-sw";
const nsOf = (h: HostName) => `kl-demo-${h}`;
const ipOf = (h: HostName) => `198.18.0.${HOSTS[h]}`;
const demoDir = fileURLToPath(new URL("../src/demo/", import.meta.url));

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Removes every namespace this topology creates (safe to call when none exist). */
export function removeDemoNamespaces(): void {
  const existing = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const ns of [SWITCH, ...Object.keys(HOSTS).map((h) => nsOf(h as HostName))]) {
    if (existing.split("\n").some((l) => l.split(" ")[0] === ns)) {
      try {
        ip("netns", "del", ns);
      } catch {
        // already gone
      }
    }
  }
}

async function waitReady(
  child: ChildProcess,
  pattern: RegExp | undefined,
  probe: () => boolean,
  what: string,
): Promise<void> {
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: ${out.slice(-500)}`);
    if ((pattern ? pattern.test(out) : true) && probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after 20 s: ${out.slice(-500)}`);
}

function listening(ns: string, port: number): boolean {
  try {
    return (
      execFileSync("ip", ["netns", "exec", ns, "ss", "-ltnH", `sport = :${port}`], { encoding: "utf8" }).trim() !== ""
    );
  } catch {
    return false;
  }
}

/** Builds the namespaces and starts every service. Cleans up everything it made if a step fails. */
export async function startDemoTopology(): Promise<DemoTopology> {
  removeDemoNamespaces();
  const dir = mkdtempSync(join(tmpdir(), "kalman-demo-"));
  const children: Array<[string, ChildProcess]> = [];
  const start = (name: string, ns: string, cmd: string[], opts: { stdout?: boolean } = {}) => {
    const child = spawn("ip", ["netns", "exec", ns, ...cmd], {
      stdio: ["ignore", opts.stdout ? "pipe" : "ignore", "pipe"],
    });
    child.stderr?.on("data", () => {});
    children.push([name, child]);
    return child;
  };
  const stop = async () => {
    for (const [, c] of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, "exit");
        c.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }
    }
    removeDemoNamespaces();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip("netns", "add", SWITCH);
    ip("-n", SWITCH, "link", "add", "br0", "type", "bridge");
    ip("-n", SWITCH, "link", "set", "br0", "up");
    for (const h of Object.keys(HOSTS) as HostName[]) {
      ip("netns", "add", nsOf(h));
      ip("-n", nsOf(h), "link", "set", "lo", "up");
      ip("-n", SWITCH, "link", "add", `v-${h}`, "type", "veth", "peer", "name", "eth0", "netns", nsOf(h));
      ip("-n", SWITCH, "link", "set", `v-${h}`, "master", "br0", "up");
      ip("-n", nsOf(h), "addr", "add", `${ipOf(h)}/24`, "dev", "eth0");
      ip("-n", nsOf(h), "link", "set", "eth0", "up");
    }

    // data host: postgres, redis, dnsmasq
    const pg = join(dir, "pg");
    execFileSync("mkdir", ["-p", pg]);
    chmodSync(dir, 0o755);
    execFileSync("chown", ["-R", "postgres:postgres", pg]);
    execFileSync(
      "setpriv",
      [
        "--reuid=postgres",
        "--regid=postgres",
        "--init-groups",
        "/usr/lib/postgresql/15/bin/initdb",
        "-D",
        join(pg, "data"),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
      ],
      { stdio: "ignore" },
    );
    appendFileSync(join(pg, "data", "pg_hba.conf"), "host all all 198.18.0.0/24 trust\n");
    const postgres = start("postgres", nsOf("data"), [
      "setpriv",
      "--reuid=postgres",
      "--regid=postgres",
      "--init-groups",
      "/usr/lib/postgresql/15/bin/postgres",
      "-D",
      join(pg, "data"),
      "-p",
      "5432",
      "-k",
      pg,
      "-c",
      `listen_addresses=${ipOf("data")}`,
    ]);
    await waitReady(postgres, undefined, () => listening(nsOf("data"), 5432), "postgres");
    const psql = (sql: string, db = "postgres") =>
      execFileSync(
        "ip",
        ["netns", "exec", nsOf("data"), "psql", "-h", ipOf("data"), "-U", "postgres", "-d", db, "-qAtc", sql],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
    psql("CREATE DATABASE shop");
    psql(
      "CREATE TABLE items (id int PRIMARY KEY, price numeric); INSERT INTO items SELECT g, g * 1.5 FROM generate_series(1, 100) g",
      "shop",
    );
    const redis = start("redis", nsOf("data"), [
      "redis-server",
      "--bind",
      ipOf("data"),
      "--protected-mode",
      "no",
      "--port",
      "6379",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ]);
    await waitReady(redis, undefined, () => listening(nsOf("data"), 6379), "redis");
    writeFileSync(join(dir, "dnsmasq.conf"), "");
    start("dnsmasq", nsOf("data"), [
      "dnsmasq",
      "--no-daemon",
      "--conf-file=/dev/null",
      `--listen-address=${ipOf("data")}`,
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--address=/kalman.test/${ipOf("api")}`,
      "--port=53",
      `--pid-file=${join(dir, "dnsmasq.pid")}`,
    ]);

    // api, frontend, gateway
    const api = start("api", nsOf("api"), ["/usr/bin/python3", join(demoDir, "api.py"), "5000", ipOf("data")], {
      stdout: true,
    });
    await waitReady(api, /listening/, () => listening(nsOf("api"), 5000), "api");
    const frontend = start(
      "frontend",
      nsOf("frontend"),
      [process.execPath, join(demoDir, "frontend.mjs"), "3000", `http://${ipOf("api")}:5000`, ipOf("data")],
      { stdout: true },
    );
    await waitReady(frontend, /listening/, () => listening(nsOf("frontend"), 3000), "frontend");
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 256; }
http { access_log off; client_body_temp_path ${dir}/nb; proxy_temp_path ${dir}/np; fastcgi_temp_path ${dir}/nf; uwsgi_temp_path ${dir}/nu; scgi_temp_path ${dir}/ns;
  upstream frontend { server ${ipOf("frontend")}:3000; keepalive 4; }
  # pass the caller's X-Request-ID through; make one up only when there is none
  map $http_x_request_id $kalman_request_id { default $http_x_request_id; "" $request_id; }
  server { listen ${ipOf("gateway")}:80;
    location / { proxy_pass http://frontend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header X-Request-ID $kalman_request_id; }
  }
}
`,
    );
    const nginx = start("nginx", nsOf("gateway"), ["nginx", "-p", dir, "-c", conf]);
    await waitReady(nginx, undefined, () => listening(nsOf("gateway"), 80), "nginx");
  } catch (e) {
    await stop();
    throw e;
  }
  const pids = Object.fromEntries(children.map(([n, c]) => [n, c.pid ?? 0]));
  return {
    hosts: Object.fromEntries(
      (Object.keys(HOSTS) as HostName[]).map((h) => [h, { ns: nsOf(h), ip: ipOf(h) }]),
    ) as DemoTopology["hosts"],
    ports: [80, 3000, 5000, 6379, 5432, 53],
    switchNs: SWITCH,
    pids,
    async drive(count: number, concurrency = 1) {
      const out = execFileSync(
        "ip",
        [
          "netns",
          "exec",
          nsOf("client"),
          process.execPath,
          join(demoDir, "driver.mjs"),
          `http://${ipOf("gateway")}/checkout`,
          String(count),
          String(concurrency),
        ],
        { encoding: "utf8" },
      );
      return out.trim().split(/\s+/).filter(Boolean).map(Number);
    },
    stop,
  };
}
