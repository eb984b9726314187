// Linking under concurrency, observed for real: thread-per-request links every call, an event loop
// serving several requests at once never links a call to the wrong request.

import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import {
  describePrivileged as describeWithChecks,
  type RunningServer,
  run,
  startRedis,
  startUntil,
  stop,
  workloads,
} from "@kalman/examples";
import type { RequestRecord } from "@kalman/flow-aggregator";
import { afterAll, beforeAll, expect, it } from "vitest";
import { observeLinks } from "./support/observe.js";

let redis: RunningServer;
const children: ChildProcess[] = [];

/** Requests as the API saw them, and the Redis calls it made, keyed by item number. */
function split(records: RequestRecord[], apiPort: number) {
  const served = records.filter(
    (r) => r.observationPoint === "server" && r.serverPort === apiPort && r.protocol === "http1",
  );
  const calls = records.filter((r) => r.observationPoint === "client" && r.protocol === "redis");
  const item = (r: RequestRecord) =>
    r.protocol === "redis" ? r.resource?.replace("item:", "") : r.resource?.split("/").pop();
  return { served, calls, item };
}

describeWithChecks("trace linking under concurrency", receiverPreflight, () => {
  beforeAll(async () => {
    redis = await startRedis();
    execFileSync("redis-cli", [
      "-p",
      String(redis.port),
      "MSET",
      ...Array.from({ length: 200 }, (_, i) => [`item:${i + 1}`, `v${i + 1}`]).flat(),
    ]);
  });
  afterAll(async () => {
    await Promise.all(children.splice(0).map(stop));
    await redis?.stop();
  });

  it("thread per request: 200 concurrent requests give 200 distinct traces, each call under its own request", async () => {
    const { child, match } = await startUntil(
      "/usr/bin/python3",
      [workloads.threadedApi, "0", String(redis.port)],
      /listening (\d+)/,
    );
    children.push(child);
    const apiPort = Number(match[1]);
    let out = "";
    const { records, stats, lost } = await observeLinks([apiPort, redis.port], async () => {
      out = (await run(process.execPath, [workloads.itemLoad, String(apiPort), "200", "20"])).stdout;
    });
    expect(out.trim()).toBe("ok 200");
    expect(lost).toBe(0);
    const { served, calls, item } = split(records, apiPort);
    expect(served).toHaveLength(200);
    expect(calls).toHaveLength(200);
    expect(new Set(served.map((r) => r.span?.traceId)).size).toBe(200);
    const byItem = new Map(served.map((r) => [item(r), r]));
    for (const call of calls) {
      const parent = byItem.get(item(call));
      // the Redis GET for item N hangs under the request for item N: never another one
      expect(call.span?.parentSpanId, `call for item ${item(call)}`).toBe(parent?.span?.spanId);
      expect(call.span?.traceId).toBe(parent?.span?.traceId);
      expect(call.span?.linkedBy).toBe("thread");
    }
    // and the Redis server's side of each call joins by TCP seq
    const redisServed = records.filter((r) => r.observationPoint === "server" && r.protocol === "redis");
    expect(redisServed).toHaveLength(200);
    const callIds = new Map(calls.map((c) => [c.span?.spanId, c]));
    for (const r of redisServed) expect(item(callIds.get(r.span?.parentSpanId) as RequestRecord)).toBe(item(r));
    expect(stats.ambiguous).toBe(0);
  }, 60_000);

  it("event loop serving many requests at once: no call is linked to a wrong request; unlinked ones say why", async () => {
    const { child, match } = await startUntil(
      process.execPath,
      [workloads.eventLoopApi, "0", String(redis.port)],
      /listening (\d+)/,
    );
    children.push(child);
    const apiPort = Number(match[1]);
    const { records, stats } = await observeLinks([apiPort, redis.port], async () => {
      await run(process.execPath, [workloads.itemLoad, String(apiPort), "200", "20"]);
    });
    const { served, calls, item } = split(records, apiPort);
    expect(served).toHaveLength(200);
    expect(calls).toHaveLength(200);
    const byItem = new Map(served.map((r) => [item(r), r]));
    let linked = 0;
    for (const call of calls) {
      if (call.span?.parentSpanId === undefined) {
        expect(call.span?.unlinkedReason).toMatch(
          /^ambiguous: \d+ requests in flight on thread \d+$|^no server request in flight/,
        );
        continue;
      }
      linked++;
      expect(call.span.parentSpanId, `call for item ${item(call)}`).toBe(byItem.get(item(call))?.span?.spanId);
    }
    // with 20 in flight on one thread, most calls are ambiguous: counted, never guessed
    expect(stats.ambiguous).toBeGreaterThan(100);
    expect(linked + stats.ambiguous + stats.clientRoots).toBeGreaterThanOrEqual(200);
  }, 60_000);
});
