// An application that already sends W3C traceparent keeps its trace id through every hop we observe.

import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { receiverPreflight, SocketTracer } from "@kalman/ebpf-receiver";
import { describePrivileged, type RunningServer, startNginx, startUntil, stop, workloads } from "@kalman/examples";
import { L7Aggregator, type RequestRecord } from "@kalman/flow-aggregator";
import { afterAll, expect, it } from "vitest";
import { SpanCorrelator } from "../src/correlator.js";

let nginx: RunningServer | undefined;
let backend: ChildProcess | undefined;
afterAll(async () => {
  await nginx?.stop();
  if (backend) await stop(backend);
});

describePrivileged("traceparent end to end", receiverPreflight, () => {
  it("curl → nginx → node: every span keeps the caller's trace id; parents follow the hops", async () => {
    const started = await startUntil(process.execPath, [workloads.httpServer, "0"], /listening (\d+)/);
    backend = started.child;
    const backendPort = Number(started.match[1]);
    nginx = await startNginx(
      `    location / { proxy_pass http://127.0.0.1:${backendPort}; proxy_http_version 1.1; proxy_set_header Connection ""; }`,
    );
    const correlator = new SpanCorrelator();
    const agg = new L7Aggregator({ listener: correlator });
    const tracer = SocketTracer.open({ ports: [nginx.port, backendPort], closeOnSignals: false });
    const records: RequestRecord[] = [];
    try {
      execFileSync("curl", [
        "-sf",
        "-o",
        "/dev/null",
        "-H",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        `http://127.0.0.1:${nginx.port}/orders/7`,
      ]);
      await new Promise((r) => setTimeout(r, 300));
      for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) agg.ingestBatch(b);
      records.push(...agg.takeRecords());
    } finally {
      tracer.close();
    }
    const hop = (comm: string, point: string) =>
      records.find((r) => r.comm === comm && r.observationPoint === point) as RequestRecord;
    const curl = hop("curl", "client");
    const gwIn = hop("nginx", "server");
    const gwOut = hop("nginx", "client");
    const app = hop("node", "server");
    for (const r of [curl, gwIn, gwOut, app]) {
      expect(r?.resource).toBe("/orders/7");
      expect(r.span?.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    }
    // curl's own request carries the header: the app's span (00f067aa0ba902b7) is its parent
    expect(curl.span).toMatchObject({ parentSpanId: "00f067aa0ba902b7", linkedBy: "traceparent" });
    expect(gwIn.span).toMatchObject({ parentSpanId: curl.span?.spanId, linkedBy: "tcp_seq" });
    expect(gwOut.span).toMatchObject({ parentSpanId: gwIn.span?.spanId, linkedBy: "thread" });
    expect(app.span).toMatchObject({ parentSpanId: gwOut.span?.spanId, linkedBy: "tcp_seq" });
  });
});
