import { execFileSync } from "node:child_process";
import { type RunningServer, startNginx } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { http1 } from "../src/protocols/http1/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

let nginx: RunningServer;

describePrivileged("HTTP/1 end to end: curl and h2load against nginx", () => {
  beforeAll(async () => {
    nginx = await startNginx(`
    location = /ok { default_type text/plain; return 200 "hello from nginx\\n"; }
    location = /err { return 500; }
    location / { return 404; }
    location = /gz { default_type text/plain; gzip on; gzip_types text/plain; gzip_min_length 1; return 200 "compress me please, compress me please\\n"; }
`);
  });
  afterAll(async () => {
    await nginx?.stop();
  });

  it("records each request with method, path, status, both observation points and matching TCP seqs", async () => {
    const base = `http://127.0.0.1:${nginx.port}`;
    const { records, stats } = await observe({ ports: [nginx.port], parsers: [http1] }, async () => {
      // one keep-alive connection for the first three, then a chunked gzip response
      execFileSync("curl", [
        "-sf",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        `${base}/ok`,
        `${base}/ok?secret=1`,
        `${base}/ok`,
      ]);
      execFileSync("curl", ["-s", "-o", "/dev/null", `${base}/missing`]);
      execFileSync("curl", ["-s", "-o", "/dev/null", `${base}/err`]);
      execFileSync("curl", ["-s", "--compressed", "-o", "/dev/null", `${base}/gz`]);
      execFileSync("curl", [
        "-s",
        "-o",
        "/dev/null",
        "-H",
        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "-H",
        "X-Request-ID: req-42",
        `${base}/ok`,
      ]);
    });
    const server = serverSide(records);
    const client = clientSide(records);
    const summary = (rs: RequestRecord[]) => rs.map((r) => `${r.requestType} ${r.resource} ${r.code} ${r.status}`);
    const expected = [
      "GET /ok 200 ok",
      "GET /ok 200 ok",
      "GET /ok 200 ok",
      "GET /missing 404 client_error",
      "GET /err 500 server_error",
      "GET /gz 200 ok",
      "GET /ok 200 ok",
    ];
    expect(summary(server)).toEqual(expected);
    expect(summary(client)).toEqual(expected);
    for (const r of server) {
      expect(r).toMatchObject({
        protocol: "http1",
        version: "1.1",
        comm: "nginx",
        serverPort: nginx.port,
        transport: "tcp",
      });
      expect(r.durationNs).toBeGreaterThan(0);
      expect(r.responseBytes).toBeGreaterThan(0);
    }
    for (const r of client) expect(r.comm).toBe("curl");
    // the same request bytes seen by curl and by nginx share their TCP seq
    expect(server.map((r) => r.reqTcpSeq)).toEqual(client.map((r) => r.reqTcpSeq));
    expect(server.map((r) => r.respTcpSeq)).toEqual(client.map((r) => r.respTcpSeq));
    expect(new Set(server.slice(0, 3).map((r) => r.connId)).size).toBe(1);
    const traced = server[6] as RequestRecord;
    expect(traced).toMatchObject({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      xRequestId: "req-42",
    });
    expect(JSON.stringify(records)).not.toContain("secret=1");
    expect(stats.orphanResponses).toBe(0);
  });

  it("h2load: ≥ 99.9% of 10,000 keep-alive requests are recorded with path and status", async () => {
    const n = 10_000;
    let out = "";
    const { records, receiver } = await observe({ ports: [nginx.port], parsers: [http1], settleMs: 500 }, async () => {
      out = execFileSync(
        "h2load",
        ["--h1", "-n", String(n), "-c", "4", "-t", "1", `http://127.0.0.1:${nginx.port}/ok`],
        {
          encoding: "utf8",
        },
      );
    });
    expect(out).toMatch(new RegExp(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded`));
    const server = serverSide(records).filter((r) => r.resource === "/ok" && r.code === 200 && r.status === "ok");
    const client = clientSide(records).filter((r) => r.resource === "/ok" && r.code === 200);
    expect(server.length).toBeGreaterThanOrEqual(n * 0.999);
    expect(server.length).toBeLessThanOrEqual(n);
    expect(client.length).toBeGreaterThanOrEqual(n * 0.999);
    expect(receiver.lostRingFull).toBe(0);
  });
});
