// The demo's traces, exported through the official OTLP gRPC exporter to a real gRPC receiver
// that decodes the protobuf: one request = one trace with the expected tree.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtlpGrpcReceiver, type ReceivedSpan } from "../../otlp-bridge/test/support/otlp-receiver.js";

const cli = fileURLToPath(new URL("../dist/src/cli.js", import.meta.url));
const privileged = process.env.KALMAN_SKIP_PRIVILEGED !== "1";
const dataDir = mkdtempSync(join(tmpdir(), "kalman-demo-otlp-"));
let receiver: OtlpGrpcReceiver;

beforeAll(async () => {
  receiver = await OtlpGrpcReceiver.create();
});
afterAll(async () => {
  await receiver?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, "demo", "--requests", "2"], {
      cwd: dataDir,
      env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe.runIf(privileged)("kalman demo → OTLP gRPC", () => {
  it("one request through nginx, Node, Python, Redis and PostgreSQL arrives as one correctly parented trace", async () => {
    const r = await runDemo();
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/traces: \d+ spans → otlp-grpc /);
    await receiver.waitFor((spans) => spans.some((s) => s.serviceName === "postgres"), 20_000, "postgres spans");

    const traces = [...receiver.traces().values()].filter((t) =>
      t.some((s) => s.serviceName === "nginx" && s.kind === "server"),
    );
    expect(traces).toHaveLength(2); // one per request
    for (const trace of traces) {
      const byId = new Map(trace.map((s) => [s.spanId, s]));
      const rawParent = (s: ReceivedSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);
      /** The nearest process span above: network hops (INTERNAL spans) sit between a client and its server. */
      const parentOf = (s: ReceivedSpan) => {
        let p = rawParent(s);
        while (p?.kind === "internal") p = rawParent(p);
        return p;
      };
      /** The interfaces a span's request crossed on its way from its caller, in order. */
      const hopsAbove = (s: ReceivedSpan) => {
        const names: string[] = [];
        for (let p = rawParent(s); p?.kind === "internal"; p = rawParent(p))
          names.unshift(String(p.attributes["network.interface.name"]));
        return names;
      };
      const one = (service: string, kind: string, name: RegExp) => {
        const found = trace.filter((s) => s.serviceName === service && s.kind === kind && name.test(s.name));
        expect(found, `${service} ${kind} ${name}`).toHaveLength(1);
        return found[0] as ReceivedSpan;
      };
      const gwServer = one("nginx", "server", /^GET \/checkout$/);
      const gwClient = one("nginx", "client", /^GET \/checkout$/);
      const feServer = one("frontend", "server", /^GET \/checkout$/);
      const feDns = one("frontend", "client", /^A inventory\.kalman\.test$/);
      const feClient = one("frontend", "client", /^GET \/price$/);
      const apiServer = one("api", "server", /^GET \/price$/);
      const apiSelect = one("api", "client", /^SELECT items$/);
      const pgSelect = one("postgres", "server", /^SELECT items$/);
      const apiRedis = trace.filter(
        (s) => s.serviceName === "api" && s.kind === "client" && s.attributes["db.system.name"] === "redis",
      );
      expect(apiRedis.map((s) => s.name).sort()).toEqual(["GET", "SET"]);

      expect(parentOf(gwClient)).toBe(gwServer);
      expect(parentOf(feServer)).toBe(gwClient);
      expect(parentOf(feDns)).toBe(feServer);
      expect(parentOf(feClient)).toBe(feServer);
      expect(parentOf(apiServer)).toBe(feClient);
      expect(parentOf(apiSelect)).toBe(apiServer);
      expect(parentOf(pgSelect)).toBe(apiSelect);
      // network spans: each request crossed the bridge, in at its client's port and out at its server's
      expect(hopsAbove(feServer)).toEqual(["v-gateway", "v-frontend"]);
      expect(hopsAbove(apiServer)).toEqual(["v-frontend", "v-api"]);
      expect(hopsAbove(pgSelect)).toEqual(["v-api", "v-data"]);
      expect(hopsAbove(gwServer)).toEqual(["v-client", "v-gateway"]); // curl's CLIENT span is above them
      for (const s of apiRedis) {
        expect(parentOf(s)).toBe(apiServer);
        const server = trace.find((x) => x.serviceName === "redis-server" && parentOf(x) === s);
        expect(server && hopsAbove(server)).toEqual(["v-api", "v-data"]);
        expect(server?.name, "redis-server span under the api's redis call").toBe(s.name);
      }
      expect(gwServer.attributes).toMatchObject({
        "http.request.method": "GET",
        "url.path": "/checkout",
        "http.response.status_code": 200,
      });
      expect(feClient.attributes).toMatchObject({
        "server.address": "198.18.0.4",
        "server.port": 5000,
        "http.response.status_code": 200,
      });
      expect(apiSelect.attributes).toMatchObject({
        "db.system.name": "postgresql",
        "db.query.text": "SELECT price FROM items WHERE id = ?",
        "server.address": "198.18.0.5",
        "server.port": 5432,
      });
      expect(gwServer.status.code).toBe("unset");
    }
  }, 180_000);
});
