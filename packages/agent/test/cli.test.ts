import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const kalman = (...args: string[]) =>
  spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", timeout: 60_000 });
const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";

describe("kalman CLI", () => {
  it("prints usage for --help (exit 0) and for no command (exit 2)", () => {
    const help = kalman("--help");
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("usage: kalman <command>");
    expect(help.stdout).toContain("doctor");
    expect(kalman().status).toBe(2);
  });

  it("rejects an unknown command and a bad flag with exit 2 and says why", () => {
    const unknown = kalman("frobnicate");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badFlag = kalman("demo", "--nope");
    expect(badFlag.status).toBe(2);
    expect(badFlag.stderr).toMatch(/Unknown option '--nope'/);
    const badValue = kalman("demo", "--requests", "zero");
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toContain("--requests must be an integer");
  });

  it("prints per-command help", () => {
    const r = kalman("demo", "--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("usage: kalman demo");
  });

  it.runIf(privileged)("doctor passes every check on this host and loads the tracer", () => {
    const r = kalman("doctor");
    expect(r.stdout).toMatch(/ok\s+socket tracer\s+\d+ programs loaded and attached/);
    expect(r.stdout).toMatch(/ok\s+AF_PACKET capture\s+TPACKET_V3 ring with a filter opened on lo/);
    expect(r.stdout).toContain("all checks passed");
    expect(r.status).toBe(0);
  });

  it.runIf(privileged)("demo traces a request across nginx, Node and Python into one trace and cleans up", () => {
    const r = kalman("demo", "--requests", "3");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("requests sent: 3 (status 200)");
    // one trace: client → nginx (server, client) → frontend (server, client) → api (server)
    expect(r.stdout).toMatch(/▶ nginx: GET \/checkout .*\(tcp_seq\)/);
    expect(r.stdout).toMatch(/◀ nginx: GET \/checkout .*\(thread\)/);
    expect(r.stdout).toMatch(/▶ frontend: GET \/checkout .*\(tcp_seq\)/);
    expect(r.stdout).toMatch(/◀ frontend: GET \/price .*\(thread\)/);
    expect(r.stdout).toMatch(/▶ api: GET \/price .*\(tcp_seq\)/);
    // the DNS lookup and the database calls join the same trace
    expect(r.stdout).toMatch(/◀ frontend: A inventory\.kalman\.test .*\(thread\)/);
    expect(r.stdout).toMatch(/◀ api: SELECT items .*\(thread\)/);
    expect(r.stdout).toMatch(/▶ postgres: SELECT items .*\(tcp_seq\)/);
    expect(r.stdout).toMatch(/0 left unlinked as ambiguous/);
    expect(r.stdout).toMatch(/kernel: \d+ events, 0 lost/);
    expect(spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout).not.toContain("kl-demo");
  });
});
