import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { apiName, errorName, errorStatus } from "../src/protocols/kafka/apis.js";
import { kafka } from "../src/protocols/kafka/index.js";
import { Confidence } from "../src/protocols/parser.js";
import type { L7Message } from "../src/types.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  DEFAULT_SESSION,
  fieldsOf,
  hex,
  runParser,
  text,
} from "./support/harness.js";

/**
 * Conversations recorded on loopback by fixtures/kafka/record.sh: requests from real clients (kcat 1.7.1 =
 * librdkafka 2.0.2, and @platformatic/kafka 2.12.1 for the flexible versions), responses from fake_broker.py
 * (written from the protocol spec). One chunk per TCP segment, each holding one message.
 */
function recorded(): Map<string, Chunk[]> {
  const out = new Map<string, Chunk[]>();
  const file = new URL("fixtures/kafka/kcat-fake-broker.tsv", import.meta.url);
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [name, , side, payload] = line.split("\t") as [string, string, string, string];
    const chunks = out.get(name) ?? [];
    chunks.push({ fromClient: side === "c", data: Uint8Array.from(Buffer.from(payload, "hex")) });
    out.set(name, chunks);
  }
  return out;
}

const conversations = recorded();
const conversation = (name: string) => conversations.get(name) as Chunk[];
const chunk = (name: string, i: number) => (conversation(name)[i] as Chunk).data;
const len = (name: string, i: number) => chunk(name, i).length;
/** One line per message: kind, correlation id, what it is, how it went. */
const summary = (ms: L7Message[]) =>
  ms.map((m) =>
    m.kind === "request"
      ? `> ${m.key} ${m.requestType} v${m.version}${m.resource ? ` ${m.resource}` : ""}${m.oneWay ? " oneWay" : ""}`
      : `< ${m.key} ${m.endpoint ?? "?"} ${m.status}${m.code === undefined ? "" : ` ${m.code} ${m.exception}`}`,
  );
const kafkaAttrs = { "messaging.system": "kafka" };
const topicAttrs = (topic: string) => ({ "messaging.system": "kafka", "messaging.destination.name": topic });

describe("kafka parser on recorded kcat and @platformatic/kafka traffic", () => {
  it("kcat producer: ApiVersions v3 (flexible header), Metadata v4, Produce v7 to a topic", () => {
    const msgs = runParser(kafka, conversation("kcat-produce"));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        key: 1,
        version: "3",
        requestType: "ApiVersions",
        endpoint: "ApiVersions",
        domain: "rdkafka",
        attributes: kafkaAttrs,
        bytes: 40,
      },
      { kind: "response", key: 1, endpoint: "ApiVersions", status: "ok", bytes: 65 },
      {
        kind: "request",
        key: 2,
        version: "4",
        requestType: "Metadata",
        endpoint: "Metadata",
        domain: "rdkafka",
        attributes: kafkaAttrs,
        bytes: 39,
      },
      { kind: "response", key: 2, endpoint: "Metadata", status: "ok", bytes: 112 },
      {
        kind: "request",
        key: 3,
        version: "7",
        requestType: "Produce",
        resource: "kalman-test",
        endpoint: "Produce kalman-test",
        domain: "rdkafka",
        attributes: topicAttrs("kalman-test"),
        bytes: 138,
      },
      { kind: "response", key: 3, endpoint: "Produce", status: "ok", bytes: 63 },
    ]);
    // the message value is never put in a record
    expect(JSON.stringify(msgs)).not.toContain("hello");
    // seq of the first byte and timing of the chunk that started each message
    expect(msgs[0]).toMatchObject({ tcpSeq: 1000, startNs: 0, endNs: 500, tid: 100 });
    expect(msgs[1]).toMatchObject({ tcpSeq: 5000, startNs: 1000, tid: 101 });
    expect(msgs[2]).toMatchObject({ tcpSeq: 1000 + len("kcat-produce", 0), startNs: 2000, tid: 102 });
    expect(msgs[5]).toMatchObject({ tcpSeq: 5000 + 65 + 112 });
  });

  it("kcat consumer: ListOffsets v2 and Fetch v11 name the topic; a Fetch response carrying records is ok", () => {
    const msgs = runParser(kafka, conversation("kcat-consume"));
    expect(summary(msgs)).toEqual([
      "> 1 ApiVersions v3",
      "< 1 ApiVersions ok",
      "> 2 Metadata v4",
      "< 2 Metadata ok",
      "> 3 Metadata v4",
      "< 3 Metadata ok",
      "> 4 ListOffsets v2",
      "< 4 ListOffsets ok",
      "> 5 Fetch v11 kalman-test",
      "< 5 Fetch ok",
      "> 6 Fetch v11 kalman-test",
      "< 6 Fetch ok",
      "> 7 Fetch v11 kalman-test",
      "< 7 Fetch ok",
    ]);
    expect(msgs[8]).toMatchObject({ endpoint: "Fetch kalman-test", attributes: topicAttrs("kalman-test") });
    expect(msgs[9]?.bytes).toBe(161);
  });

  it("acks=0 Produce is one-way: no response is awaited", () => {
    const msgs = runParser(kafka, conversation("kcat-acks0"));
    expect(summary(msgs)).toEqual([
      "> 1 ApiVersions v3",
      "< 1 ApiVersions ok",
      "> 2 Metadata v4",
      "< 2 Metadata ok",
      "> 3 Produce v7 kalman-test oneWay",
    ]);
    expect(JSON.stringify(msgs)).not.toContain("fire");
  });

  it("Produce errors: NOT_LEADER_OR_FOLLOWER is the broker's, UNKNOWN_TOPIC_OR_PARTITION the client's", () => {
    const notLeader = runParser(kafka, conversation("kcat-notleader"));
    expect(summary(notLeader).slice(4, 10)).toEqual([
      "> 3 Metadata v4",
      "< 3 Metadata ok",
      "> 4 Produce v7 kalman-notleader",
      "< 4 Produce server_error 6 NOT_LEADER_OR_FOLLOWER",
      "> 5 Produce v7 kalman-notleader",
      "< 5 Produce server_error 6 NOT_LEADER_OR_FOLLOWER",
    ]);
    const produceResponses = notLeader.filter((m) => m.kind === "response" && m.endpoint === "Produce");
    expect(produceResponses).toHaveLength(5);
    for (const m of produceResponses) expect(m).toMatchObject({ status: "server_error", code: 6 });

    const unknown = runParser(kafka, conversation("kcat-unknown"));
    expect(summary(unknown).slice(4, 6)).toEqual([
      "> 3 Produce v7 kalman-unknown",
      "< 3 Produce client_error 3 UNKNOWN_TOPIC_OR_PARTITION",
    ]);
  });

  it("ApiVersions v3 refused with UNSUPPORTED_VERSION (answered as v0), then v0 and on", () => {
    const msgs = runParser(kafka, conversation("kcat-apiversions-fallback"));
    expect(summary(msgs)).toEqual([
      "> 1 ApiVersions v3",
      "< 1 ApiVersions client_error 35 UNSUPPORTED_VERSION",
      "> 2 ApiVersions v0",
      "< 2 ApiVersions ok",
      "> 3 Metadata v4",
      "< 3 Metadata ok",
      "> 4 Produce v7 kalman-test",
      "< 4 Produce ok",
    ]);
  });

  it("flexible versions (@platformatic/kafka): Metadata v12, Produce v9 with compact strings and tagged fields", () => {
    const msgs = runParser(kafka, conversation("plat-produce"));
    expect(summary(msgs)).toEqual([
      "> 1 ApiVersions v3",
      "< 1 ApiVersions ok",
      "> 2 Metadata v12",
      "< 2 Metadata ok",
      "> 3 Produce v9 kalman-test",
      "< 3 Produce ok",
      "> 4 Metadata v12",
      "< 4 Metadata ok",
      "> 5 Produce v9 kalman-notleader",
      "< 5 Produce server_error 6 NOT_LEADER_OR_FOLLOWER",
      "> 6 Metadata v12",
      "< 6 Metadata ok",
      "> 7 Produce v9 kalman-notleader",
      "< 7 Produce server_error 6 NOT_LEADER_OR_FOLLOWER",
    ]);
    expect(msgs[4]).toMatchObject({ domain: "kalman-plat", bytes: 137, attributes: topicAttrs("kalman-test") });
    expect(JSON.stringify(msgs)).not.toContain("flexible hello");
  });

  it("flexible Fetch v12: compact topic name, records in the response", () => {
    const msgs = runParser(kafka, conversation("plat-fetch"));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        key: 1,
        version: "12",
        requestType: "Fetch",
        resource: "kalman-test",
        endpoint: "Fetch kalman-test",
        domain: "kalman-plat",
        attributes: topicAttrs("kalman-test"),
        bytes: 102,
      },
      { kind: "response", key: 1, endpoint: "Fetch", status: "ok", bytes: 154 },
    ]);
  });

  it("a Fetch v11 response with a top-level error: the error code wins over the partitions", () => {
    // the recorded kcat Fetch v11 exchange, response error_code (after size, correlation id, throttle) set to
    // FETCH_SESSION_ID_NOT_FOUND (70)
    const response = Uint8Array.from(chunk("kcat-consume", 9));
    response.set([0x00, 0x46], 12);
    const msgs = runParser(kafka, [
      { fromClient: true, data: chunk("kcat-consume", 8) },
      { fromClient: false, data: response },
    ]);
    expect(summary(msgs)).toEqual([
      "> 5 Fetch v11 kalman-test",
      "< 5 Fetch server_error 70 FETCH_SESSION_ID_NOT_FOUND",
    ]);
  });

  it("pipelined: all requests in one write, all responses in one write", () => {
    for (const name of ["kcat-produce", "kcat-consume", "plat-produce"]) {
      const chunks = conversation(name);
      const join = (fromClient: boolean) =>
        Buffer.concat(chunks.filter((c) => c.fromClient === fromClient).map((c) => c.data));
      const msgs = runParser(kafka, [
        { fromClient: true, data: join(true) },
        { fromClient: false, data: join(false) },
      ]);
      const byKind = (ms: L7Message[], kind: string) => summary(ms.filter((m) => m.kind === kind));
      const whole = runParser(kafka, chunks);
      expect(byKind(msgs, "request")).toEqual(byKind(whole, "request"));
      expect(byKind(msgs, "response")).toEqual(byKind(whole, "response"));
      // each message's seq is its offset in the write
      const requests = msgs.filter((m) => m.kind === "request");
      let seq = 1000;
      for (const m of requests) {
        expect(m.tcpSeq).toBe(seq);
        seq += m.bytes;
      }
    }
  });

  describe("generic checks on every recorded conversation", () => {
    for (const [name, chunks] of conversations) {
      it(`${name}: split at every offset, byte by byte, every prefix`, () => {
        checkSplitsEverywhere(kafka, chunks);
        checkByteByByte(kafka, chunks);
        checkEveryPrefix(kafka, chunks);
      });
    }
    it("random bytes and mutated fixtures: no throw, bounded, deterministic", () => {
      checkFuzz(kafka, [...conversations.values()]);
    });
  });
});

describe("kafka parser when the capture is cut or lost", () => {
  const produce = chunk("kcat-produce", 4); // Produce v7, 138 bytes; topic name ends at byte 46
  const produceResponse = chunk("kcat-produce", 5);

  it("a Produce cut after its topic: skipped by size, topic kept, response paired", () => {
    const msgs = runParser(kafka, [
      { fromClient: true, data: produce.subarray(0, 60), missing: produce.length - 60 },
      { fromClient: false, data: produceResponse },
      { fromClient: true, data: chunk("kcat-produce", 2) },
    ]);
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        key: 3,
        version: "7",
        requestType: "Produce",
        resource: "kalman-test",
        endpoint: "Produce kalman-test",
        domain: "rdkafka",
        attributes: { ...topicAttrs("kalman-test"), "kalman.truncated": true },
        bytes: 138,
      },
      { kind: "response", key: 3, endpoint: "Produce", status: "ok", bytes: 63 },
      // the next request is read in place: the skip ended on its first byte
      expect.objectContaining({ kind: "request", key: 2, requestType: "Metadata" }),
    ]);
  });

  it("a Produce cut before its topic: the request without topic", () => {
    const msgs = runParser(kafka, [{ fromClient: true, data: produce.subarray(0, 40), missing: produce.length - 40 }]);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ requestType: "Produce", endpoint: "Produce", bytes: 138, key: 3 });
    expect(msgs[0]?.resource).toBeUndefined();
  });

  it("a response bigger than the capture is skipped by its size", () => {
    const fetchResponse = chunk("kcat-consume", 9); // 161 bytes
    const session = kafka.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    const meta = { startNs: 1, endNs: 2, tcpSeq: 0, seqValid: false, tid: 1 };
    session.feed(true, chunk("kcat-consume", 8), 0, meta, (m) => out.push(m));
    session.feed(false, fetchResponse.subarray(0, 30), 100, meta, (m) => out.push(m));
    session.feed(false, fetchResponse.subarray(130), 0, meta, (m) => out.push(m));
    expect(summary(out)).toEqual(["> 5 Fetch v11 kalman-test", "< 5 Fetch ok"]);
    expect(out[1]?.bytes).toBe(161);
    expect(session.stats).toEqual({ malformed: 0, resyncBytes: 0 });
  });

  it("a gap at a message boundary: resynchronised at the next request and at its response", () => {
    const c = conversation("kcat-produce");
    const msgs = runParser(kafka, [
      { fromClient: true, data: new Uint8Array(0), missing: 40 },
      { fromClient: false, data: new Uint8Array(0), missing: 65 },
      c[2] as Chunk,
      c[3] as Chunk,
      c[4] as Chunk,
      c[5] as Chunk,
    ]);
    expect(summary(msgs)).toEqual([
      "> 2 Metadata v4",
      "< 2 Metadata ok",
      "> 3 Produce v7 kalman-test",
      "< 3 Produce ok",
    ]);
  });

  it("a gap that swallows the start of the next message: resync, the rest is counted, not parsed", () => {
    const session = kafka.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    const meta = { startNs: 1, endNs: 2, tcpSeq: 0, seqValid: false, tid: 1 };
    // Produce cut at 60 bytes, then 100 missing bytes: 78 end it, 22 belong to the next message
    session.feed(true, produce.subarray(0, 60), 100, meta, (m) => out.push(m));
    session.feed(true, produce.subarray(22, 50), 0, meta, (m) => out.push(m));
    session.feed(true, chunk("kcat-produce", 2), 0, meta, (m) => out.push(m));
    expect(summary(out)).toEqual(["> 3 Produce v7 kalman-test", "> 2 Metadata v4"]);
    expect(session.stats).toEqual({ malformed: 0, resyncBytes: 22 + 28 });
  });

  it("garbage is counted as malformed, and the next request is parsed again", () => {
    const session = kafka.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    const meta = { startNs: 1, endNs: 2, tcpSeq: 0, seqValid: false, tid: 1 };
    session.feed(true, text("GET / HTTP/1.1\r\n\r\n"), 0, meta, (m) => out.push(m));
    session.feed(true, hex("0000000c ffff0000 00000001 0000"), 0, meta, (m) => out.push(m)); // unknown api key
    session.feed(true, chunk("kcat-produce", 0), 0, meta, (m) => out.push(m));
    expect(summary(out)).toEqual(["> 1 ApiVersions v3"]);
    expect(session.stats.malformed).toBe(1);
    expect(session.stats.resyncBytes).toBe(18 + 14);
  });

  it("a response nobody asked for (capture started mid-connection) is unknown; pending ids stay bounded", () => {
    const request = chunk("kcat-produce", 0); // ApiVersions v3, correlation id at byte 8
    const response = chunk("kcat-produce", 1); // its response, correlation id at byte 4
    const withId = (b: Uint8Array, at: number, id: number) => {
      const copy = Uint8Array.from(b);
      new DataView(copy.buffer).setInt32(at, id);
      return copy;
    };
    const chunks: Chunk[] = [];
    for (let id = 1; id <= 300; id++) chunks.push({ fromClient: true, data: withId(request, 8, id) });
    chunks.push({ fromClient: false, data: withId(response, 4, 1) }); // evicted: 300 > 256 pending
    chunks.push({ fromClient: false, data: withId(response, 4, 300) });
    chunks.push({ fromClient: false, data: withId(response, 4, 99_999) });
    const responses = runParser(kafka, chunks).filter((m) => m.kind === "response");
    expect(summary(responses)).toEqual(["< 1 ? unknown", "< 300 ApiVersions ok", "< 99999 ? unknown"]);
  });

  it("a tiny buffer still reads short heads", () => {
    const msgs = runParser(kafka, conversation("kcat-produce"), { redact: true, maxBufferBytes: 64 });
    expect(summary(msgs)).toEqual(summary(runParser(kafka, conversation("kcat-produce"))));
  });
});

describe("kafka detect", () => {
  it("recognises every recorded request, from the client side", () => {
    for (const chunks of conversations.values()) {
      for (const c of chunks.filter((x) => x.fromClient)) {
        expect(kafka.detect(c.data, undefined)).toEqual({ confidence: Confidence.Sure, fromClient: true });
        expect(kafka.detect(c.data, true).confidence).toBe(Confidence.Sure);
        // bytes the server sent are not a request
        expect(kafka.detect(c.data, false).confidence).toBe(Confidence.No);
      }
    }
  });

  it("rejects responses, other protocols and short or implausible headers", () => {
    for (const chunks of conversations.values()) {
      for (const c of chunks.filter((x) => !x.fromClient)) expect(kafka.detect(c.data, undefined).confidence).toBe(0);
    }
    const no = [
      text("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      text("*1\r\n$4\r\nPING\r\n"),
      // PostgreSQL StartupMessage: length, protocol 3.0, "user\0postgres\0"
      hex("00000021 00030000 75736572 00706f73 74677265 73006461 74616261 73650070 6f737467 72657300 00"),
      // TLS ClientHello record header
      hex("16030100 a5010000 a1030300 00000000 00000000"),
      chunk("kcat-produce", 0).subarray(0, 13),
      hex("00000010 0003000c ffffffff 0000"), // negative correlation id
      hex("00000010 0003 00ff 00000001 0000"), // version 255 of Metadata
      hex("00000010 0003000c 00000001 0040 41"), // client id longer than the message
      hex("00000010 0003000c 00000001 0003 410a42"), // client id not printable
    ];
    for (const b of no) expect(kafka.detect(b, undefined).confidence).toBe(Confidence.No);
  });

  it("a Produce cut before its topic is only Maybe: a response with a small correlation id reads the same", () => {
    expect(kafka.detect(chunk("kcat-produce", 4).subarray(0, 30), undefined)).toEqual({
      confidence: Confidence.Maybe,
      fromClient: true,
    });
    expect(kafka.detect(chunk("kcat-produce", 4).subarray(0, 47), undefined).confidence).toBe(Confidence.Sure);
  });
});

describe("kafka tables", () => {
  it("names every API key 0..67 and classifies errors", () => {
    expect([0, 1, 2, 3, 8, 9, 10, 11, 12, 14, 18, 19, 67].map(apiName)).toEqual([
      "Produce",
      "Fetch",
      "ListOffsets",
      "Metadata",
      "OffsetCommit",
      "OffsetFetch",
      "FindCoordinator",
      "JoinGroup",
      "Heartbeat",
      "SyncGroup",
      "ApiVersions",
      "CreateTopics",
      "AllocateProducerIds",
    ]);
    for (let key = 0; key <= 67; key++) expect(apiName(key)).not.toMatch(/^ApiKey/);
    expect(apiName(500)).toBe("ApiKey500");
    expect([0, 3, 6, 7, -1, 29, 27, 35].map((c) => [errorName(c), errorStatus(c)])).toEqual([
      ["NONE", "ok"],
      ["UNKNOWN_TOPIC_OR_PARTITION", "client_error"],
      ["NOT_LEADER_OR_FOLLOWER", "server_error"],
      ["REQUEST_TIMED_OUT", "server_error"],
      ["UNKNOWN_SERVER_ERROR", "server_error"],
      ["TOPIC_AUTHORIZATION_FAILED", "client_error"],
      ["REBALANCE_IN_PROGRESS", "client_error"],
      ["UNSUPPORTED_VERSION", "client_error"],
    ]);
    expect(errorName(116)).toBe("UNKNOWN_CONTROLLER_ID");
    expect(errorName(999)).toBe("ERROR_999");
  });
});
