import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { type RunningServer, startNginx } from "@kalman/examples";
import { afterAll, describe, expect, it } from "vitest";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";
let nginx: RunningServer | undefined;
afterAll(async () => {
  await nginx?.stop();
});

describe.runIf(privileged)("kalman top", () => {
  it("shows the edge and the endpoints with rates, error % and latency, templating ids", async () => {
    nginx = await startNginx(`    location = /ok { return 200 "ok\\n"; }
    location = /err { return 500; }
    location /items/ { return 200 "item\\n"; }`);
    const child = spawn(
      process.execPath,
      [cli, "top", "--ports", String(nginx.port), "--iterations", "3", "--no-clear"],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    // attached once the first frame is out (startup takes longer on a loaded machine)
    for (let i = 0; i < 200 && !out.includes("kalman top — "); i++) await new Promise((r) => setTimeout(r, 50));
    const base = `http://127.0.0.1:${nginx.port}`;
    for (let i = 0; i < 10; i++) {
      execFileSync("curl", [
        "-s",
        "-o",
        "/dev/null",
        `${base}/ok`,
        "-o",
        "/dev/null",
        `${base}/err`,
        "-o",
        "/dev/null",
        `${base}/items/${1000 + i}`,
      ]);
    }
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(0);
    const frames = out.split("kalman top — ").filter(Boolean);
    expect(frames).toHaveLength(3);
    const last = frames[2] as string;
    const row = (re: RegExp) => {
      const line = last.split("\n").find((l) => re.test(l));
      expect(line, String(re)).toBeDefined();
      const [rate, err] = (line as string).trim().split(/\s+/).slice(-4).map(Number);
      return { rate: rate as number, err: err as number };
    };
    expect(row(/^curl → nginx /).rate).toBeGreaterThan(0);
    expect(row(/^nginx {2}http1 GET \/ok /)).toMatchObject({ err: 0 });
    expect(row(/^nginx {2}http1 GET \/err /)).toMatchObject({ err: 100 });
    expect(row(/^nginx {2}http1 GET \/items\/\{id\} /).rate).toBeGreaterThan(0);
    expect(last).not.toMatch(/\/items\/10\d\d/);
  });
});
