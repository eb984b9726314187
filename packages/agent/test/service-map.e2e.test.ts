// kalman run over the demo topology serves the service graph on Prometheus: the edges are exactly the hops.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DemoTopology, freePort, startDemoTopology } from "@kalman/examples";
import { afterAll, describe, expect, it } from "vitest";
import { spawnKalman } from "./support/kalman-process.js";

const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";
const dir = mkdtempSync(join(tmpdir(), "kalman-map-"));
let topology: DemoTopology | undefined;
afterAll(async () => {
  await topology?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** `traces_service_graph_request_total` samples summed by (client, server). */
function edges(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("traces_service_graph_request_total{")) continue;
    const client = /client="([^"]*)"/.exec(line)?.[1];
    const server = /server="([^"]*)"/.exec(line)?.[1];
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    const key = `${client} -> ${server}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

describe.runIf(privileged)("service map", () => {
  it("RED and service-graph metrics on Prometheus show exactly the topology's edges", async () => {
    topology = await startDemoTopology();
    const port = await freePort();
    const k = spawnKalman(
      [
        "run",
        "--ports",
        topology.ports.join(","),
        "--prometheus-port",
        String(port),
        "--quiet",
        "--duration",
        "20",
        "--output",
        join(dir, "r.jsonl"),
      ],
      { cwd: dir },
    );
    await k.waitForStderr("attached");
    expect(k.stderr()).toContain(`Prometheus http://127.0.0.1:${port}/metrics`);
    const statuses = await topology.drive(4);
    expect(statuses).toEqual([200, 200, 200, 200]);
    await new Promise((r) => setTimeout(r, 1000));
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    k.child.kill("SIGTERM");
    await k.exited;

    const graph = edges(text);
    // the traffic driver (`node driver.mjs`, short-lived: "driver", or "node" once it has exited) calls nginx
    const fromDriver = [...graph.keys()].filter((k) => /^(driver|node) -> /.test(k));
    expect(fromDriver.map((k) => k.split(" -> ")[1])).toEqual(["nginx"]);
    expect([...graph.keys()].filter((k) => !fromDriver.includes(k)).sort()).toEqual([
      "api -> postgres",
      "api -> redis-server",
      "frontend -> api",
      "frontend -> dnsmasq",
      "nginx -> frontend",
    ]);
    expect(graph.get("frontend -> api")).toBe(4);
    expect(graph.get("nginx -> frontend")).toBe(4);
    expect(text).toMatch(/http_server_request_duration_seconds_count\{[^}]*http_route="\/checkout"[^}]*\} 4/);
    expect(text).toMatch(/db_client_operation_duration_seconds_count\{[^}]*db_system_name="postgresql"/);
  }, 90_000);
});
