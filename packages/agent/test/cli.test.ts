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
    expect(r.stdout).toContain("all checks passed");
    expect(r.status).toBe(0);
  });

  it.runIf(privileged)("demo traces the workload and links writes to reads by TCP seq", () => {
    const r = kalman("demo", "--requests", "4");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/ client send /g)).toHaveLength(4);
    expect(r.stdout.match(/ server recv /g)?.length).toBeGreaterThanOrEqual(4);
    expect(r.stdout).toContain("GET /item/0 HTTP/1.1");
    expect(r.stdout).toContain("POST /item/0 HTTP/1.1");
    const linked = Number(/(\d+) writes matched/.exec(r.stdout)?.[1]);
    expect(linked).toBeGreaterThanOrEqual(8);
    expect(r.stdout).toMatch(/kernel: \d+ records, 0 lost/);
  });
});
