import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startUntil, stop } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { kafka } from "../src/protocols/kafka/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

// No Kafka broker is packaged for Debian: kcat (librdkafka) talks to fixtures/kafka/fake_broker.py, a one-node
// stand-in answering ApiVersions, Metadata, Produce, ListOffsets and Fetch as the protocol spec says.
const brokerScript = fileURLToPath(new URL("fixtures/kafka/fake_broker.py", import.meta.url));

let broker: ChildProcess | undefined;
let port = 0;
let dir = "";

function kcat(args: string[], input?: string): void {
  const r = spawnSync("kcat", ["-b", `127.0.0.1:${port}`, ...args], {
    cwd: dir,
    input,
    encoding: "utf8",
    timeout: 15_000,
  });
  if (r.error) throw new Error(`kcat did not run (Debian package kcat): ${r.error.message}`);
}

const line = (r: RequestRecord) =>
  `${r.requestType} ${r.resource ?? "-"} ${r.status}${r.code === undefined ? "" : ` ${r.code} ${r.exception}`}`;

describePrivileged("Kafka end to end: kcat against a fake broker", () => {
  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "kalman-kafka-"));
    ({ child: broker } = await startUntil("python3", [brokerScript, String(port)], /ready/));
  });
  afterAll(async () => {
    if (broker) await stop(broker);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("records produce (acks=all, acks=0, bigger than the capture), fetch and broker errors on both sides", async () => {
    const big = "B".repeat(6000);
    const { records, stats } = await observe({ ports: [port], parsers: [kafka] }, async () => {
      kcat(["-P", "-t", "kalman-e2e", "-p", "0", "-c", "1"], "secret-value-1");
      kcat(["-P", "-t", "kalman-e2e", "-p", "0", "-c", "1", "-X", "acks=0"], "secret-value-2");
      kcat(["-P", "-t", "kalman-e2e", "-p", "0", "-c", "1"], big);
      kcat(["-C", "-t", "kalman-e2e", "-p", "0", "-o", "beginning", "-e", "-q"]);
      kcat(["-P", "-t", "kalman-notleader", "-p", "0", "-c", "1", "-X", "message.timeout.ms=300"], "x");
    });
    // A kcat run may exit with a request still unanswered: its last Metadata, or the consumer's
    // long-poll Fetch at the end of the partition. The client's record says so; the broker must have
    // seen the same request. Nothing else (a Produce above all) may end that way. Compare the rest.
    const inFlightAtExit = new Set(["Metadata", "Fetch"]);
    const unreadRecords = clientSide(records).filter((r) => r.exception === "no response: connection closed");
    const unread = new Set(unreadRecords.map((r) => r.reqTcpSeq));
    expect(unread.size).toBeLessThanOrEqual(5);
    for (const r of unreadRecords) {
      expect(inFlightAtExit.has(r.requestType ?? ""), `unanswered ${r.requestType}`).toBe(true);
      const answered = serverSide(records).find((s) => s.reqTcpSeq === r.reqTcpSeq);
      expect(answered?.requestType).toBe(r.requestType);
      if (answered?.status !== "ok") expect(answered?.exception).toBe("no response: connection closed");
    }
    const server = serverSide(records).filter((r) => !unread.has(r.reqTcpSeq));
    const client = clientSide(records).filter((r) => !unread.has(r.reqTcpSeq));
    expect(server.length).toBeGreaterThanOrEqual(15);
    // both ends saw the same requests, with the same TCP seqs
    expect(server.map(line)).toEqual(client.map(line));
    expect(server.map((r) => r.reqTcpSeq)).toEqual(client.map((r) => r.reqTcpSeq));

    const produces = server.filter((r) => r.requestType === "Produce" && r.resource === "kalman-e2e");
    expect(produces.map((r) => [r.status, r.responseBytes > 0])).toEqual([
      ["ok", true],
      ["ok", false], // acks=0: one-way, no response
      ["ok", true],
    ]);
    expect(produces[2]?.requestBytes).toBeGreaterThan(6000);
    expect(produces[2]?.attributes).toMatchObject({ "kalman.truncated": true });

    const fetches = server.filter((r) => r.requestType === "Fetch" && r.status === "ok");
    expect(fetches.length).toBeGreaterThanOrEqual(1);
    expect(fetches[0]).toMatchObject({ resource: "kalman-e2e", endpoint: "Fetch kalman-e2e" });
    // the first fetch from offset 0 carries all three messages
    expect(fetches[0]?.responseBytes).toBeGreaterThan(6000);
    expect(server.some((r) => line(r) === "ListOffsets - ok")).toBe(true);

    const refused = server.filter((r) => r.resource === "kalman-notleader");
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) expect(line(r)).toBe("Produce kalman-notleader server_error 6 NOT_LEADER_OR_FOLLOWER");

    for (const r of server) {
      expect(r).toMatchObject({ protocol: "kafka", domain: "rdkafka", comm: "python3", serverPort: port });
      expect(r.attributes).toMatchObject({ "messaging.system": "kafka" });
    }
    for (const r of client) expect(r.comm).toMatch(/^rdk:/);
    expect(JSON.stringify(records)).not.toContain("secret-value");
    expect(stats.malformed).toBe(0);
    expect(stats.orphanResponses).toBe(0);
    expect(stats.resyncBytes).toBe(0);
  });
});
