// A TLS hop joins the trace of its plaintext hops: curl → (HTTPS) nginx → (HTTP) node. The TLS
// plaintext carries the TCP seq of its TLS record, so curl's span links to nginx's like a plaintext hop.

import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import {
  describePrivileged,
  type RunningServer,
  selfSignedCert,
  startNginx,
  startUntil,
  stop,
  workloads,
} from "@kalman/examples";
import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterAll, expect, it } from "vitest";
import { observeLinks } from "./support/observe.js";

let nginx: RunningServer | undefined;
let backend: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), `kalman-tls-trace-${process.pid}-`));
afterAll(async () => {
  await nginx?.stop();
  if (backend) await stop(backend);
  rmSync(dir, { recursive: true, force: true });
});

describePrivileged("TLS hop in a trace", receiverPreflight, () => {
  it("curl → nginx over TLS → node over HTTP: one trace, the TLS hop linked by TCP seq", async () => {
    const { cert, key } = selfSignedCert(dir);
    const started = await startUntil(process.execPath, [workloads.httpServer, "0"], /listening (\d+)/);
    backend = started.child;
    const backendPort = Number(started.match[1]);
    nginx = await startNginx(
      `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n` +
        `    location / { proxy_pass http://127.0.0.1:${backendPort}; proxy_http_version 1.1; proxy_set_header Connection ""; }`,
      undefined,
      { listenSuffix: " ssl" },
    );
    const port = nginx.port;
    const { records } = await observeLinks([port, backendPort], async () => {
      execFileSync("curl", ["-sfk", "-o", "/dev/null", `https://127.0.0.1:${port}/orders/7`]);
    });
    const hop = (comm: string, point: string) =>
      records.find(
        (r) => r.comm === comm && r.observationPoint === point && r.resource === "/orders/7",
      ) as RequestRecord;
    const curl = hop("curl", "client");
    const gwIn = hop("nginx", "server");
    const gwOut = hop("nginx", "client");
    const app = hop("node", "server");
    expect([curl?.tls, gwIn?.tls, gwOut?.tls, app?.tls]).toEqual([true, true, undefined, undefined]);
    const traceId = curl.span?.traceId;
    expect(traceId).toBeDefined();
    for (const r of [gwIn, gwOut, app]) expect(r.span?.traceId).toBe(traceId);
    expect(gwIn.span).toMatchObject({ parentSpanId: curl.span?.spanId, linkedBy: "tcp_seq" });
    expect(gwOut.span).toMatchObject({ parentSpanId: gwIn.span?.spanId, linkedBy: "thread" });
    expect(app.span).toMatchObject({ parentSpanId: gwOut.span?.spanId, linkedBy: "tcp_seq" });
  });
});
