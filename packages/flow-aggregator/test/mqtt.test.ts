import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mqtt } from "../src/protocols/mqtt/index.js";
import { Confidence } from "../src/protocols/parser.js";
import type { L7Message } from "../src/types.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  fieldsOf,
  hex,
  runParser,
  text,
} from "./support/harness.js";

const BROKER_PORTS = new Set(["18831", "18832"]);

/** Conversations recorded between mosquitto and mosquitto_pub/mosquitto_sub (see the fixture's header). */
function recorded(): Map<string, Chunk[]> {
  const streams = new Map<string, Chunk[]>();
  const file = new URL("fixtures/mqtt/mosquitto.tsv", import.meta.url);
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, port, payload] = line.split("\t") as [string, string, string];
    const chunks = streams.get(name) ?? [];
    chunks.push({ fromClient: !BROKER_PORTS.has(port), data: hex(payload) });
    streams.set(name, chunks);
  }
  return streams;
}

const streams = recorded();
const conversation = (name: string) => {
  const c = streams.get(name);
  if (!c) throw new Error(`no recorded conversation ${name}`);
  return c;
};
/** Size of write i of a conversation (each recorded write holds whole packets). */
const len = (name: string, i: number) => conversation(name)[i]?.data.length ?? -1;
/** One line per message: "PUBLISH kalman/a #1", "response #1 code=0 ok", "DISCONNECT oneWay". */
const summary = (msgs: L7Message[]) =>
  msgs.map((m) =>
    [
      m.kind === "request" ? m.requestType : "response",
      m.resource,
      m.key === undefined ? undefined : `#${m.key}`,
      m.code === undefined ? undefined : `code=${m.code}`,
      m.status,
      m.oneWay ? "oneWay" : undefined,
    ]
      .filter((part) => part !== undefined)
      .join(" "),
  );
const SYSTEM = { "messaging.system": "mqtt" };

describe("mqtt parser on recorded mosquitto traffic", () => {
  it("3.1.1 QoS 1 publish: CONNECT/CONNACK, PUBLISH keyed by packet id, PUBACK, one-way DISCONNECT", () => {
    const msgs = runParser(mqtt, conversation("pub311-q1"));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        requestType: "CONNECT",
        version: "3.1.1",
        domain: "pub1",
        bytes: len("pub311-q1", 0),
        attributes: { ...SYSTEM, "messaging.client.id": "pub1" },
      },
      { kind: "response", version: "3.1.1", code: 0, status: "ok", bytes: 4, attributes: SYSTEM },
      {
        kind: "request",
        requestType: "PUBLISH",
        version: "3.1.1",
        resource: "kalman/a",
        endpoint: "kalman/a",
        key: 1,
        bytes: len("pub311-q1", 2),
        attributes: {
          ...SYSTEM,
          "messaging.destination.name": "kalman/a",
          "messaging.operation": "publish",
          "messaging.message.body.size": 2,
          "mqtt.qos": 1,
        },
      },
      { kind: "response", version: "3.1.1", key: 1, status: "ok", bytes: 4, attributes: SYSTEM },
      {
        kind: "request",
        requestType: "DISCONNECT",
        version: "3.1.1",
        oneWay: true,
        bytes: 2,
        attributes: SYSTEM,
      },
    ]);
    // seq and timing come from the chunk holding each packet's first byte
    expect(msgs[0]).toMatchObject({ tcpSeq: 1000, startNs: 0, endNs: 500, tid: 100 });
    expect(msgs[2]).toMatchObject({ tcpSeq: 1000 + len("pub311-q1", 0), startNs: 2000, tid: 102 });
    expect(msgs[3]).toMatchObject({ tcpSeq: 5000 + 4, startNs: 3000 });
  });

  it("QoS 0 is one-way; QoS 2 pairs PUBLISH with PUBREC and PUBREL with PUBCOMP under their own keys", () => {
    expect(summary(runParser(mqtt, conversation("pub311-q0")))).toEqual([
      "CONNECT",
      "response code=0 ok",
      "PUBLISH kalman/a oneWay",
      "DISCONNECT oneWay",
    ]);
    const q2 = runParser(mqtt, conversation("pub311-q2"));
    expect(summary(q2)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "PUBLISH kalman/a #1",
      "response #1 ok",
      "PUBREL kalman/a #65537",
      "response #65537 ok",
      "DISCONNECT oneWay",
    ]);
    const v5 = runParser(mqtt, conversation("pub5-q2"));
    expect(summary(v5)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "PUBLISH kalman/v5 #1",
      "response #1 code=0 ok",
      "PUBREL kalman/v5 #65537",
      "response #65537 code=0 ok",
      "DISCONNECT oneWay",
    ]);
    expect(v5.map((m) => m.version)).toEqual(Array(7).fill("5.0"));
  });

  it("a subscriber: SUBSCRIBE/SUBACK, then the broker's deliveries as requests it sends (receive)", () => {
    const msgs = runParser(mqtt, conversation("sub311-q2"));
    expect(summary(msgs)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "SUBSCRIBE kalman/# #1",
      "response #1 code=2 ok", // granted QoS 2
      "PUBLISH kalman/a oneWay",
      "PUBLISH kalman/a #131073", // broker packet ids live in their own key range
      "response #131073 ok", // the subscriber's PUBACK
      "PUBLISH kalman/a #131074",
      "response #131074 ok", // PUBREC
      "PUBREL kalman/a #196610", // the broker's PUBREL ...
      "response #196610 ok", // ... and the subscriber's PUBCOMP
      "PUBLISH kalman/v5 #131075",
      "response #131075 ok",
      "PUBREL kalman/v5 #196611",
      "response #196611 ok",
      "PUBLISH kalman/big #131076",
      "response #131076 ok",
      "DISCONNECT oneWay",
    ]);
    const deliveries = msgs.filter((m) => m.requestType === "PUBLISH");
    for (const m of deliveries) expect(m.attributes?.["messaging.operation"]).toBe("receive");
    expect(deliveries.map((m) => m.attributes?.["mqtt.qos"])).toEqual([0, 1, 2, 2, 1]);
    expect(deliveries[4]).toMatchObject({ bytes: 3017, attributes: { "messaging.message.body.size": 3000 } });
  });

  it("MQTT 5 subscriber: properties skipped, reason codes read", () => {
    const msgs = runParser(mqtt, conversation("sub5-q1"));
    expect(summary(msgs)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "SUBSCRIBE kalman/# #1",
      "response #1 code=1 ok",
      "PUBLISH kalman/a oneWay",
      "PUBLISH kalman/a #131073",
      "response #131073 code=0 ok",
      "PUBLISH kalman/a #131074",
      "response #131074 code=0 ok",
      "PUBLISH kalman/v5 #131075",
      "response #131075 code=0 ok",
      "PUBLISH kalman/big #131076",
      "response #131076 code=0 ok",
      "DISCONNECT oneWay",
    ]);
    expect(msgs[0]).toMatchObject({ version: "5.0", domain: "sub5" });
  });

  it("MQTT 5 topic aliases resolve to the topic; two PUBLISHes in one write get their own seqs", () => {
    const msgs = runParser(mqtt, conversation("topic-alias-5"));
    expect(summary(msgs)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "PUBLISH kalman/alias #1",
      "response #1 code=16 ok", // No matching subscribers is a success
      "PUBLISH kalman/alias #2", // empty topic + alias 1
      "PUBLISH kalman/alias #3",
      "response #2 code=16 ok",
      "response #3 code=16 ok",
      "DISCONNECT oneWay",
    ]);
    const coalesced = conversation("topic-alias-5")[4] as Chunk;
    expect(msgs[4]).toMatchObject({ bytes: 13, tcpSeq: 1000 + len("topic-alias-5", 0) + len("topic-alias-5", 2) });
    expect(msgs[5]).toMatchObject({ bytes: coalesced.data.length - 13, tcpSeq: (msgs[4]?.tcpSeq ?? 0) + 13 });
    expect(msgs[4]?.attributes).toMatchObject({ "mqtt.topic_alias": 1, "messaging.message.body.size": 3 });
  });

  it("refusals: CONNACK codes, a denied MQTT 5 PUBLISH, denied subscriptions", () => {
    const connack = (name: string) => runParser(mqtt, conversation(name))[1];
    expect(connack("bad-password-311")).toMatchObject({ code: 5, status: "client_error", exception: "Not authorized" });
    expect(connack("bad-password-5")).toMatchObject({
      version: "5.0",
      code: 0x87,
      status: "client_error",
      exception: "Not authorized",
    });
    expect(runParser(mqtt, conversation("publish-denied-5"))[3]).toMatchObject({
      key: 1,
      code: 0x87,
      status: "client_error",
      exception: "Not authorized",
    });
    // SUBSCRIBE forbidden/x + kalman/ok: the first filter names the request, the failure the answer
    const sub311 = runParser(mqtt, conversation("subscribe-denied-311"));
    expect(sub311[2]).toMatchObject({ requestType: "SUBSCRIBE", resource: "forbidden/x", key: 1 });
    expect(sub311[3]).toMatchObject({ key: 1, code: 0x80, status: "client_error", exception: "Failure" });
    const sub5 = runParser(mqtt, conversation("subscribe-denied-5"));
    expect(sub5[3]).toMatchObject({ key: 1, code: 0x87, status: "client_error", exception: "Not authorized" });
    expect(sub5[4]).toMatchObject({ requestType: "DISCONNECT", attributes: { "mqtt.reason_code": 4 } });
  });

  it("MQTT 3.1 (MQIsdp), UNSUBSCRIBE in 3.1.1 and 5.0, PINGREQ/PINGRESP in order", () => {
    expect(runParser(mqtt, conversation("mqisdp-31"))[0]).toMatchObject({ version: "3.1", domain: "old31" });
    expect(summary(runParser(mqtt, conversation("unsubscribe-311"))).slice(2, 6)).toEqual([
      "SUBSCRIBE kalman/x #1",
      "response #1 code=0 ok",
      "UNSUBSCRIBE kalman/y #2",
      "response #2 ok",
    ]);
    expect(summary(runParser(mqtt, conversation("unsubscribe-5"))).slice(4, 6)).toEqual([
      "UNSUBSCRIBE kalman/y #2",
      "response #2 code=17 ok", // No subscription existed
    ]);
    expect(summary(runParser(mqtt, conversation("ping-311"))).slice(4, 6)).toEqual(["PINGREQ", "response ok"]);
  });

  it("never records user names, passwords, will messages or payloads, even with redaction off", () => {
    const login = conversation("will-and-login");
    for (const redact of [true, false]) {
      const msgs = runParser(mqtt, login, { redact, maxBufferBytes: 65536 });
      expect(msgs[0]).toMatchObject({ requestType: "CONNECT", domain: "willer" });
      expect(msgs[2]).toMatchObject({ requestType: "PUBLISH", resource: "kalman/auth" });
      const all = JSON.stringify(msgs);
      for (const secret of ["alice", "wonderland", "willsecret", "kalman/will", "payloadsecret"]) {
        expect(all).not.toContain(secret);
      }
    }
    const all = JSON.stringify([...streams.values()].map((c) => runParser(mqtt, c)));
    expect(all).not.toMatch(/xxxx|"hi"|wrong|bobpw|"one"|"two"/);
  });

  it("a PUBLISH cut by the capture (1024 bytes) keeps its topic, is skipped by length, and framing holds", () => {
    const chunks = conversation("pub311-big").map((c) =>
      c.data.length > 1024 ? { ...c, data: c.data.subarray(0, 1024), missing: c.data.length - 1024 } : c,
    );
    const msgs = runParser(mqtt, chunks);
    expect(summary(msgs)).toEqual([
      "CONNECT",
      "response code=0 ok",
      "PUBLISH kalman/big #1",
      "response #1 ok",
      "DISCONNECT oneWay",
    ]);
    expect(msgs[2]).toMatchObject({ bytes: 3017, attributes: { "kalman.truncated": true } });
    expect(msgs[4]?.tcpSeq).toBe(1000 + len("pub311-big", 0) + 3017);
    checkSplitsEverywhere(mqtt, chunks);
  });

  for (const [name, chunks] of streams) {
    it(`${name}: same messages split at every offset, byte by byte, and for every prefix`, () => {
      checkSplitsEverywhere(mqtt, chunks);
      checkByteByByte(mqtt, chunks);
      checkEveryPrefix(mqtt, chunks);
    });
  }

  it("never throws, stays bounded and is deterministic on random and mutated input", () => {
    checkFuzz(mqtt, [...streams.values()]);
  });
});

describe("mqtt detect()", () => {
  const first = (name: string, i = 0) => (conversation(name)[i] as Chunk).data;

  it("a CONNECT with MQTT / MQIsdp is sure and the client's", () => {
    for (const name of ["pub311-q1", "pub5-q2", "mqisdp-31", "will-and-login"]) {
      expect(mqtt.detect(first(name), undefined)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    }
    // the first bytes of a CONNECT: written in pieces, or read a byte at a time (as mosquitto reads headers)
    expect(mqtt.detect(first("pub311-q1").subarray(0, 5), undefined).confidence).toBe(Confidence.Maybe);
    expect(mqtt.detect(hex("10"), true)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(mqtt.detect(hex("10"), false).confidence).toBe(Confidence.No);
  });

  it("other packets are at most likely, with the side when the type tells", () => {
    expect(mqtt.detect(first("pub311-q1", 1), undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: false });
    expect(mqtt.detect(first("ping-311", 4), undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(mqtt.detect(first("topic-alias-5", 4), undefined)).toEqual({ confidence: Confidence.Maybe });
    // a CONNACK is not the client's
    expect(mqtt.detect(first("pub311-q1", 1), true).confidence).toBe(Confidence.No);
  });

  it("other protocols and random text are not MQTT", () => {
    for (const s of [
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\n\r\n",
      "*1\r\n$4\r\nPING\r\n",
      "+OK\r\n",
      ":1\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
      "\x00\x00\x00\x08\x04\xd2\x16\x2f",
      "hello world",
      "\x10\x0c\x00\x04HTTP\x04\x02\x00\x3c\x00\x00",
    ]) {
      expect(mqtt.detect(text(s), undefined).confidence, JSON.stringify(s)).toBe(Confidence.No);
    }
  });
});

describe("mqtt parser edge cases", () => {
  const client = (h: string, missing = 0): Chunk => ({ fromClient: true, data: hex(h), missing });
  const broker = (h: string, missing = 0): Chunk => ({ fromClient: false, data: hex(h), missing });

  it("joining mid-connection: no CONNECT seen, packets still parse (level inferred from MQTT 5 fields)", () => {
    // recorded MQTT 5 subscriber writes, without its CONNECT/CONNACK
    const msgs = runParser(mqtt, conversation("sub5-q1").slice(2));
    expect(summary(msgs).slice(0, 4)).toEqual([
      "SUBSCRIBE kalman/# #1",
      "response #1 code=1 ok",
      "PUBLISH kalman/a oneWay",
      "PUBLISH kalman/a #131073",
    ]);
    expect(msgs[0]?.version).toBe("5.0");
  });

  it("a gap between packets resynchronises at the next write that frames as packets", () => {
    const q1 = conversation("pub311-q1");
    const msgs = runParser(mqtt, [
      q1[0] as Chunk,
      q1[1] as Chunk,
      { fromClient: true, data: new Uint8Array(0), missing: 300 },
      client("78787878"), // the tail of something we lost: not packets (bad flags)
      q1[2] as Chunk,
      q1[3] as Chunk,
    ]);
    expect(summary(msgs)).toEqual(["CONNECT", "response code=0 ok", "PUBLISH kalman/a #1", "response #1 ok"]);
  });

  it("a capture cut inside a later packet of a write: the cut packet is kept, what follows is resynced", () => {
    // two recorded QoS 1 deliveries to the 3.1.1 subscriber in one write, cut in the second one's topic
    const d1 = "320e00086b616c6d616e2f6100016869";
    const msgs = runParser(mqtt, [broker(`${d1}${d1.slice(0, 10)}`, 11), broker(d1)]);
    expect(summary(msgs)).toEqual([
      "PUBLISH kalman/a #131073",
      "PUBLISH oneWay", // topic and packet id cut: kept, but it cannot be paired
      "PUBLISH kalman/a #131073",
    ]);
    expect(msgs[1]).toMatchObject({ bytes: 16, attributes: { "mqtt.qos": 1, "kalman.truncated": true } });
  });

  it("fields larger than the buffer are read as far as they fit; the packet is still framed", () => {
    // hand-built 3.1.1 PUBLISH QoS 0 with a 5000-byte topic, then a PINGREQ
    const topic = "t".repeat(5000);
    const publish = new Uint8Array([0x30, 0x8c, 0x27, 0x13, 0x88, ...text(topic), 0x6f, 0x6b]);
    const msgs = runParser(mqtt, [{ fromClient: true, data: publish }, client("c000")], {
      redact: true,
      maxBufferBytes: 4096,
    });
    expect(summary(msgs)).toEqual(["PUBLISH oneWay", "PINGREQ"]);
    expect(msgs[0]).toMatchObject({ bytes: publish.length, attributes: { "kalman.truncated": true } });
  });

  it("an MQTT 5 broker DISCONNECT is an unsolicited response with its reason (hand-built per spec §3.14)", () => {
    const connect5 = conversation("pub5-q2")[0] as Chunk;
    const msgs = runParser(mqtt, [connect5, broker("e0028b00"), broker("e0068e041f00016b")]);
    expect(msgs[1]).toMatchObject({
      kind: "response",
      unsolicited: true,
      endpoint: "DISCONNECT",
      code: 0x8b,
      status: "server_error",
      exception: "Server shutting down",
    });
    // reason string property (0x1f): "k"
    expect(msgs[2]).toMatchObject({ code: 0x8e, status: "client_error", exception: "Session taken over: k" });
  });

  it("a packet type the side never sends is skipped by length and counted as malformed", () => {
    const session = mqtt.createSession({ redact: true, maxBufferBytes: 65536 });
    const out: L7Message[] = [];
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 1 };
    // CONNACK from the client, then its PINGREQ
    session.feed(true, hex("20020000c000"), 0, meta, (m) => out.push(m));
    expect(out.map((m) => m.requestType)).toEqual(["PINGREQ"]);
    expect(session.stats.malformed).toBe(1);
    // reserved type 0: lost place, resync
    session.feed(true, hex("00ff00"), 0, meta, (m) => out.push(m));
    expect(session.stats.malformed).toBe(2);
    expect(session.stats.resyncBytes).toBe(3);
    session.feed(true, hex("c000"), 0, meta, (m) => out.push(m));
    expect(out).toHaveLength(2);
    expect(session.buffered()).toBe(0);
  });
});
