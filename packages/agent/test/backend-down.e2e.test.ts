// The OTLP backend is down for 30 s while `kalman run` traces steady traffic: the agent keeps running,
// its memory stays bounded (the span queue drops its oldest spans and counts them), the failures and
// drops are logged, and export resumes when the backend returns on the same address. Observed for
// real: the agent is the built CLI with real eBPF, the backend a real OTLP gRPC receiver.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged, examplesDir, type RunningServer, startNginx } from "@kalman/examples";
import { afterAll, expect, it } from "vitest";
import { OtlpGrpcReceiver } from "../../otlp-bridge/test/support/otlp-receiver.js";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const loadScript = join(examplesDir, "tracing", "load.mjs");
const OUTAGE_S = 30;
/** Traffic goes on this long after the backend returns. */
const AFTER_S = 10;
/**
 * Requests per second. Each gives two spans (the load client's and nginx's): 800 spans/s, so the
 * sink's 8192-span queue is full ~10 s into the outage and must drop for the remaining ~20 s.
 */
const RATE = 400;
/** Default queue bound of the span sink (maxQueueSize). */
const QUEUE = 8192;
const MAX_RSS_KB = 300 * 1024;
/** Once the queue is full, RSS may not grow more than this (holding every span would add ~3 MB/s). */
const PLATEAU_GROWTH_KB = 16 * 1024;
/** The exporter's retry backoff is capped at 30 s (±20% jitter): export resumes within that after a return. */
const RESUME_WITHIN_S = 45;

const tmp = mkdtempSync(join(tmpdir(), "kalman-backend-down-"));
let nginx: RunningServer | undefined;
let receiver: OtlpGrpcReceiver | undefined;
const children: ChildProcess[] = [];

async function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

afterAll(async () => {
  for (const c of children.splice(0).reverse()) await end(c);
  await nginx?.stop();
  await receiver?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** VmRSS of a live process in kB; undefined once it is gone. */
function rssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describePrivileged("kalman run with the OTLP backend down", receiverPreflight, () => {
  it("backend down for 30 s: keeps running, memory bounded, drops counted and logged, export resumes", async () => {
    // a real receiver, to learn a port, then down: the agent starts against a dead backend
    receiver = await OtlpGrpcReceiver.create();
    const port = receiver.listenPort;
    await receiver.stop();
    nginx = await startNginx(`    location / { return 200 "ok\\n"; }`);
    const output = join(tmp, "r.jsonl");

    const agent = spawn(
      process.execPath,
      // --duration only as a safety stop: the test ends the agent with SIGTERM once export resumed
      [cli, "run", "--ports", String(nginx.port), "--quiet", "--output", output, "--duration", "110"],
      {
        cwd: tmp,
        env: {
          ...process.env,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
          // the backend is down at startup on purpose: start anyway (the default check would exit with 2)
          KALMAN_OTLP_STARTUP_CHECK: "warn",
        },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    children.push(agent);
    const agentExit = once(agent, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    let stderr = "";
    agent.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    for (let i = 0; i < 200 && !stderr.includes("attached") && agent.exitCode === null; i++) await sleep(50);
    expect(stderr).toContain("eBPF programs attached");
    expect(stderr).toContain(`traces → otlp-grpc http://127.0.0.1:${port}`);
    expect(stderr).toContain(`warning: otlp.endpoint: OTLP endpoint http://127.0.0.1:${port} is unreachable`);

    // steady traffic through the outage and after it, bounded in count and time
    const load = spawn(
      process.execPath,
      [
        loadScript,
        `http://127.0.0.1:${nginx.port}`,
        String(RATE * (OUTAGE_S + AFTER_S)),
        "4",
        "--rate",
        String(RATE),
        "--max-seconds",
        String(OUTAGE_S + AFTER_S + 5),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(load);
    let loadOut = "";
    load.stdout?.on("data", (d: Buffer) => {
      loadOut += d.toString();
    });
    const loadExit = once(load, "exit");

    // the outage: one RSS sample a second; the agent must be alive at every one
    const pid = agent.pid as number;
    const sample = (what: string): number => {
      const kb = rssKb(pid);
      expect(kb, `agent alive ${what}`).toBeDefined();
      return kb as number;
    };
    const outage: number[] = [];
    for (let s = 1; s <= OUTAGE_S; s++) {
      await sleep(1000);
      outage.push(sample(`${s} s into the outage`));
    }
    expect(receiver.spans).toHaveLength(0);

    // the backend returns on the same port; traffic goes on for AFTER_S
    const restartNs = BigInt(Date.now()) * 1_000_000n;
    await receiver.restart();
    const fresh = () => receiver?.spans.filter((s) => s.startTimeUnixNano >= restartNs) ?? [];
    const after: number[] = [];
    for (let s = 1; s <= AFTER_S; s++) {
      await sleep(1000);
      after.push(sample(`${s} s after the backend returned`));
    }
    // export resumes while the agent runs: spans of requests made after the return arrive
    // (bounded wait: the retry backoff may still be sleeping when the backend comes back)
    await receiver.waitFor(
      (spans) => spans.some((s) => s.startTimeUnixNano >= restartNs),
      (RESUME_WITHIN_S - AFTER_S) * 1000,
      "spans started after the backend returned",
    );
    after.push(sample("when export resumed"));
    const [loadCode] = await loadExit;
    expect(loadCode).toBe(0);
    expect(loadOut.trim()).toMatch(/^ok \d+ failed 0$/);
    const sent = Number(/^ok (\d+)/.exec(loadOut)?.[1]);
    expect(sent).toBeGreaterThanOrEqual(RATE * (OUTAGE_S + AFTER_S) * 0.9);

    agent.kill("SIGTERM");
    const [code, signal] = await agentExit;
    expect(signal).toBeNull();
    expect(code, stderr).toBe(0);

    // memory: bounded throughout, and flat at the end. The span and log queues are full ~11 s in (at
    // 800 items/s each); V8 then keeps growing its committed heap until its major collections settle
    // (the live heap stops growing at ~20 s, the committed heap at ~25-28 s), so flatness is checked from
    // 4 s before the end of the outage through the time after it: a leak of even 1 MB/s would show there.
    const rss = [...outage, ...after];
    const settled = outage[OUTAGE_S - 4] as number;
    const tail = [...outage.slice(OUTAGE_S - 3), ...after];
    const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
    const trace = `RSS by second: ${rss.map(mb).join(" ")}`;
    expect(Math.max(...rss), trace).toBeLessThanOrEqual(MAX_RSS_KB);
    expect(Math.max(...tail) - settled, trace).toBeLessThanOrEqual(PLATEAU_GROWTH_KB);

    // the exit line accounts for every span: exported ones reached the backend, the rest were dropped
    const exit = /spans exported (\d+), dropped (\d+)(?: \(last error: (.*)\))?$/m.exec(stderr);
    expect(exit, stderr).not.toBeNull();
    const [exported, dropped] = [Number(exit?.[1]), Number(exit?.[2])];
    const records = readFileSync(output, "utf8").trim().split("\n").length;
    expect(records).toBeGreaterThanOrEqual(2 * sent);
    expect(exported + dropped, "every span exported or counted as dropped").toBe(records);
    expect(receiver.spans.length, "exported = received").toBe(exported);
    // the outage overflowed the queue: drops counted, failures reported at exit and logged as they happened
    expect(dropped).toBeGreaterThan(0);
    expect(exit?.[3]).toMatch(/UNAVAILABLE|ECONNREFUSED/);
    expect(stderr).toMatch(/WARN export failed; retrying with backoff .*ECONNREFUSED/);
    expect(stderr).toMatch(/WARN dropping spans .*"reason":"queue full"/);

    // what arrived: the full queue held through the outage (its newest QUEUE spans), then everything
    // after it; the spans of the AFTER_S of traffic after the return (fewer than QUEUE) all arrived
    expect(exported).toBeGreaterThanOrEqual(QUEUE);
    expect(fresh().length).toBeGreaterThanOrEqual(2 * RATE * (AFTER_S - 1));
    expect(fresh().some((s) => s.serviceName === "nginx" && s.kind === "server" && s.name.startsWith("GET"))).toBe(
      true,
    );
  }, 120_000);
});
