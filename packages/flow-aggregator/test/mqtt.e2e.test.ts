import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, run, waitForPort } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { mqtt } from "../src/protocols/mqtt/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

let broker: ChildProcess | undefined;
let subscriber: ChildProcess | undefined;
let dir = "";
let port = 0;

/** Ends a child this test started, by its pid: SIGTERM, then SIGKILL if it lingers. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

async function until(ready: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(what)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `publish` while a mosquitto_sub (args) is subscribed, then waits for it to exit after its -C
 * messages. Returns what it printed (-d: its packets; stdbuf keeps its stdout line-buffered).
 */
async function withSubscriber(args: string[], publish: () => Promise<void>): Promise<string> {
  let out = "";
  const sub = spawn("stdbuf", ["-oL", "mosquitto_sub", "-d", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  subscriber = sub;
  const exited = once(sub, "exit");
  sub.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  try {
    await until(() => out.includes("received SUBACK"), 5000, "mosquitto_sub did not subscribe");
    await publish();
    await withTimeout(exited, 5000, "mosquitto_sub did not get its messages");
  } finally {
    await stop(sub);
  }
  return out;
}

describePrivileged("MQTT end to end: mosquitto_pub/mosquitto_sub against mosquitto", () => {
  beforeAll(async () => {
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "kalman-mosquitto-"));
    const conf = join(dir, "mosquitto.conf");
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
    broker = spawn("mosquitto", ["-c", conf], { stdio: ["ignore", "ignore", "inherit"] });
    const exited = once(broker, "exit");
    try {
      await Promise.race([
        waitForPort(port),
        exited.then(() => Promise.reject(new Error("mosquitto exited before listening"))),
      ]);
    } catch (e) {
      broker.kill("SIGKILL");
      throw e;
    }
  });
  afterAll(async () => {
    if (subscriber) await stop(subscriber);
    if (broker) await stop(broker);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("records CONNECT, SUBSCRIBE, publishes at QoS 0/1/2 (3.1.1 and 5.0) and their deliveries, never payloads", async () => {
    const host = ["-h", "127.0.0.1", "-p", String(port)];
    let delivered = "";
    const { records, stats } = await observe({ ports: [port], parsers: [mqtt] }, async () => {
      // the subscriber asks for QoS 2, so each delivery keeps its publish QoS
      const subscription = [...host, "-i", "kalman-sub", "-q", "2", "-t", "kalman/#", "-C", "4"];
      delivered = await withSubscriber(subscription, async () => {
        for (const qos of ["0", "1", "2"]) {
          const message = `payload-secret-q${qos}`;
          await run("mosquitto_pub", [...host, "-i", `kalman-pub${qos}`, "-q", qos, "-t", "kalman/a", "-m", message]);
        }
        const v5 = ["-V", "mqttv5", "-i", "kalman-pub5", "-q", "1", "-t", "kalman/v5", "-m", "payload-secret-v5"];
        await run("mosquitto_pub", [...host, ...v5]);
      });
    });
    expect(delivered).toContain("payload-secret-v5");

    for (const [side, rs] of [
      ["server", serverSide(records)],
      ["client", clientSide(records)],
    ] as const) {
      const of = (type: string) => rs.filter((r) => r.requestType === type);
      const line = (r: RequestRecord) =>
        `${r.domain ?? r.resource} ${r.version} ${r.code ?? "-"} ${r.status} ${r.attributes?.["mqtt.qos"] ?? "-"}`;

      const connects = of("CONNECT").map(line).sort();
      expect(connects, side).toEqual([
        "kalman-pub0 3.1.1 0 ok -",
        "kalman-pub1 3.1.1 0 ok -",
        "kalman-pub2 3.1.1 0 ok -",
        "kalman-pub5 5.0 0 ok -",
        "kalman-sub 3.1.1 0 ok -",
      ]);
      // SUBACK granted QoS 2
      expect(of("SUBSCRIBE").map(line), side).toEqual(["kalman/# 3.1.1 2 ok -"]);

      const publishes = of("PUBLISH").filter((r) => r.attributes?.["messaging.operation"] === "publish");
      expect(publishes.map(line).sort(), side).toEqual([
        "kalman/a 3.1.1 - ok 0",
        "kalman/a 3.1.1 - ok 1",
        "kalman/a 3.1.1 - ok 2",
        "kalman/v5 5.0 0 ok 1",
      ]);
      for (const r of publishes) {
        expect(r).toMatchObject({ protocol: "mqtt", endpoint: r.resource, transport: "tcp", serverPort: port });
        expect(r.attributes).toMatchObject({ "messaging.system": "mqtt", "messaging.destination.name": r.resource });
        // QoS 0 is one-way; QoS 1/2 are paired with the broker's PUBACK/PUBREC by packet id
        if (r.attributes?.["mqtt.qos"] === 0) expect(r.responseBytes).toBe(0);
        else expect(r.responseBytes).toBe(4);
      }

      // the broker's deliveries to the subscriber, answered by its PUBACK/PUBREC
      const deliveries = of("PUBLISH")
        .filter((r) => r.attributes?.["messaging.operation"] === "receive")
        .sort((a, b) => a.startNs - b.startNs);
      expect(deliveries.map(line), side).toEqual([
        "kalman/a 3.1.1 - ok 0",
        "kalman/a 3.1.1 - ok 1",
        "kalman/a 3.1.1 - ok 2",
        "kalman/v5 3.1.1 - ok 1",
      ]);
      expect(deliveries.map((r) => r.responseBytes)).toEqual([0, 4, 4, 4]);
      expect(new Set(deliveries.map((r) => r.clientPort)).size).toBe(1);

      // QoS 2 second halves: the publisher's PUBREL and the broker's PUBREL to the subscriber, each with PUBCOMP
      expect(
        of("PUBREL").map((r) => `${r.resource} ${r.status} ${r.responseBytes}`),
        side,
      ).toEqual(["kalman/a ok 4", "kalman/a ok 4"]);
      expect(of("DISCONNECT").length, side).toBe(5);
      expect(rs.length, side).toBe(5 + 1 + 4 + 4 + 2 + 5);
      expect(rs.every((r) => r.status === "ok")).toBe(true);
    }
    // client and broker saw the same bytes: same TCP seqs
    const seqs = (rs: RequestRecord[]) =>
      rs
        .filter((r) => r.requestType === "PUBLISH")
        .map((r) => `${r.resource} ${r.reqTcpSeq} ${r.respTcpSeq}`)
        .sort();
    expect(seqs(serverSide(records))).toEqual(seqs(clientSide(records)));
    for (const r of serverSide(records)) expect(r.comm).toBe("mosquitto");
    expect(JSON.stringify(records)).not.toContain("payload-secret");
    expect(stats).toMatchObject({ orphanResponses: 0, malformed: 0, resyncBytes: 0, ignoredBytes: 0 });
  });

  it("MQTT 5, capture cut at 256 bytes: a 6000-byte PUBLISH keeps its topic and size, framing holds after it", async () => {
    const host = ["-h", "127.0.0.1", "-p", String(port), "-V", "mqttv5"];
    const big = join(dir, "big.txt");
    writeFileSync(big, "payload-secret-".repeat(400));
    let out = "";
    const { records, stats } = await observe({ ports: [port], parsers: [mqtt], captureBytes: 256 }, async () => {
      out = await withSubscriber([...host, "-i", "big-sub", "-q", "1", "-t", "big/#", "-C", "2"], async () => {
        await run("mosquitto_pub", [...host, "-i", "big-pub", "-q", "1", "-t", "big/file", "-f", big]);
        await run("mosquitto_pub", [...host, "-i", "small-pub", "-q", "1", "-t", "big/after", "-m", "payload-secret"]);
      });
    });
    expect(out).toContain("(6000 bytes)");
    for (const rs of [serverSide(records), clientSide(records)]) {
      const publishes = rs
        .filter((r) => r.requestType === "PUBLISH")
        .map((r) => `${r.attributes?.["messaging.operation"]} ${r.resource} ${r.requestBytes} ${r.code} ${r.status}`);
      // 3-byte fixed header + topic (2 + 8) + packet id (2) + properties (1) + 6000 payload bytes
      expect(publishes.sort()).toEqual([
        "publish big/after 30 0 ok",
        "publish big/file 6016 0 ok",
        "receive big/after 30 0 ok",
        "receive big/file 6016 0 ok",
      ]);
      const cut = rs.filter((r) => r.resource === "big/file");
      for (const r of cut) {
        expect(r.attributes).toMatchObject({ "kalman.truncated": true, "messaging.message.body.size": 6000 });
      }
    }
    expect(JSON.stringify(records)).not.toContain("payload-secret");
    expect(stats).toMatchObject({ orphanResponses: 0, malformed: 0 });
  });
});
