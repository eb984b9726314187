// `kalman traces` against real traffic: curl → nginx (proxy) → a Node backend, observed with eBPF by
// the CLI in a child process. Known trace ids come from the traceparent header curl sends, which
// the correlator honors, so the test can ask for exactly its own traces.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, examplesDir, type RunningServer, startNginx, startUntil, stop } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
let nginx: RunningServer | undefined;
let backend: ChildProcess | undefined;
let backendPort = 0;
const children: ChildProcess[] = [];

/** Starts `kalman traces ARGS`, resolves once it says it is attached. */
async function startTraces(args: string[]) {
  const child = spawn(process.execPath, [cli, "traces", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const io = { out: "", err: "" };
  child.stdout?.on("data", (d: Buffer) => {
    io.out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    io.err += d.toString();
  });
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const deadline = Date.now() + 30_000;
  while (!io.err.includes("eBPF programs attached")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`kalman traces did not attach: ${io.err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { io, exit };
}

const traceId = () => randomBytes(16).toString("hex");
/** curl with a W3C traceparent naming `id` (the caller's span id is one Kalman never sees). */
const curl = (path: string, id?: string) =>
  execFileSync("curl", [
    "-s",
    "-o",
    "/dev/null",
    ...(id ? ["-H", `traceparent: 00-${id}-00f067aa0ba902b7-01`] : []),
    `http://127.0.0.1:${nginx?.port}${path}`,
  ]);

describePrivileged("kalman traces", receiverPreflight, () => {
  beforeAll(async () => {
    const started = await startUntil(
      process.execPath,
      [join(examplesDir, "tracing", "backend.mjs"), "127.0.0.1", "0"],
      /listening (\d+)/,
    );
    backend = started.child;
    backendPort = Number(started.match[1]);
    nginx = await startNginx(`    location /api/ {
      proxy_pass http://127.0.0.1:${backendPort};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /fail { return 500; }`);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await nginx?.stop();
    if (backend) await stop(backend);
  });

  it("lists recent traces with their root, services, span count and error flag", async () => {
    const { io, exit } = await startTraces([
      "--ports",
      `${nginx?.port},${backendPort}`,
      "--iterations",
      "3",
      "--no-clear",
    ]);
    const ok = traceId();
    const failed = traceId();
    curl("/api/items/7", ok);
    curl("/fail", failed);
    expect(await exit).toBe(0);
    const frames = io.out.split("kalman traces — ").filter(Boolean);
    expect(frames).toHaveLength(3);
    const last = frames[2] as string;
    const row = (id: string) => {
      const line = last.split("\n").find((l) => l.includes(id));
      expect(line, `a row for ${id} in\n${last}`).toBeDefined();
      return line as string;
    };
    // curl (client) → nginx (server, client) → backend (server): one trace of 4 spans
    expect(row(ok)).toMatch(
      new RegExp(`${ok}\\s+\\d+\\.\\d\\d\\s+4 {6}curl: GET /api/items/7\\s+curl, nginx, backend$`),
    );
    // nginx answers /fail itself with a 500: curl and nginx, flagged as an error
    expect(row(failed)).toMatch(new RegExp(`${failed}\\s+\\d+\\.\\d\\d\\s+2 ERR  curl: GET /fail\\s+curl, nginx$`));
    // newest first
    expect(last.indexOf(failed)).toBeLessThan(last.indexOf(ok));
  });

  it("--trace ID waits for that trace, prints its waterfall once complete, and exits", async () => {
    const id = traceId();
    const { io, exit } = await startTraces([
      "--ports",
      `${nginx?.port},${backendPort}`,
      "--trace",
      id.slice(0, 12),
      "--iterations",
      "20",
      "--no-clear",
    ]);
    curl("/api/other", traceId()); // another trace: not shown
    curl("/api/orders/42", id);
    expect(await exit, io.err).toBe(0);
    expect(io.out).toContain(`trace ${id}  (4 spans`);
    expect(io.out).not.toContain("/api/other");
    const tree = io.out
      .slice(io.out.indexOf(`trace ${id}`))
      .split("\n")
      .slice(1, 5);
    // the tree: curl's client span (a child of the traceparent's unseen caller) holds the rest
    expect(tree[0]).toMatch(/^◀ curl: GET \/api\/orders\/42 .*\(traceparent\)/);
    expect(tree[1]).toMatch(/^ {2}▶ nginx: GET \/api\/orders\/42 .*\(tcp_seq\)/);
    expect(tree[2]).toMatch(/^ {4}◀ nginx: GET \/api\/orders\/42 .*\(thread\)/);
    expect(tree[3]).toMatch(/^ {6}▶ backend: GET \/api\/orders\/42 .*\(tcp_seq\)/);
  });

  it("--trace exits 1 when the trace never comes; --last shows the newest trace's waterfall", async () => {
    const missing = await startTraces(["--ports", String(nginx?.port), "--trace", "0123456789ab", "--iterations", "1"]);
    expect(await missing.exit).toBe(1);
    expect(missing.io.err).toContain("trace 0123456789ab was not seen completed");
    expect(missing.io.out).toContain("waiting for trace 0123456789ab");

    const { io, exit } = await startTraces([
      "--ports",
      String(nginx?.port),
      "--last",
      "--iterations",
      "3",
      "--no-clear",
    ]);
    const id = traceId();
    curl("/fail", id);
    expect(await exit).toBe(0);
    const frames = io.out.split("kalman traces (last) — ").filter(Boolean);
    expect(frames).toHaveLength(3);
    expect(frames[2]).toContain(`trace ${id}  (2 spans`);
    expect(frames[2]).toMatch(/▶ nginx: GET \/fail .* ERROR Internal Server Error/);
  });
});
