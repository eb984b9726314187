import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { detectHttp2 } from "../src/protocols/http2/detect.js";
import { HeaderFields, HpackDecoder } from "../src/protocols/http2/hpack.js";
import { http2 } from "../src/protocols/http2/index.js";
import type { Http2Session, Http2Stats } from "../src/protocols/http2/parser.js";
import { Confidence } from "../src/protocols/parser.js";
import type { ChunkMeta, L7Message } from "../src/types.js";
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

/** Conversations of a fixture recorded with tcpdump/tshark (see each file's header), by TCP stream. */
function recorded(name: string, serverPort: number): Map<number, Chunk[]> {
  const streams = new Map<number, Chunk[]>();
  const file = new URL(`fixtures/http2/${name}`, import.meta.url);
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [stream, port, payload] = line.split("\t");
    const chunks = streams.get(Number(stream)) ?? [];
    chunks.push({ fromClient: Number(port) !== serverPort, data: hex(payload ?? "") });
    streams.set(Number(stream), chunks);
  }
  return streams;
}

const nodeH2 = recorded("node-h2.tsv", 18441);
const padded = recorded("nghttp-padded.tsv", 18442);
const grpcJs = recorded("grpc-js.tsv", 18443);
const conversation = (m: Map<number, Chunk[]>, n: number) => m.get(n) as Chunk[];

/** Runs a session over chunks and returns its messages and stats. */
function runWithStats(chunks: Chunk[], maxBufferBytes = DEFAULT_SESSION.maxBufferBytes) {
  const session = http2.createSession({ redact: true, maxBufferBytes }) as Http2Session;
  const messages: L7Message[] = [];
  const seq = [1000, 5000];
  chunks.forEach((c, i) => {
    const dir = c.fromClient ? 0 : 1;
    const meta: ChunkMeta = {
      startNs: 1000 * i,
      endNs: 1000 * i + 500,
      tcpSeq: seq[dir] as number,
      seqValid: true,
      tid: i,
    };
    session.feed(c.fromClient, c.data, c.missing ?? 0, meta, (m) => messages.push(structuredClone(m)));
    seq[dir] = (seq[dir] as number) + c.data.length + (c.missing ?? 0);
  });
  return { messages, stats: session.stats as Http2Stats, buffered: session.buffered() };
}

/** "request 1 GET/path", "response 1 200 ok": the fields pairing and records hinge on. */
const summary = (ms: L7Message[]) =>
  ms.map((m) =>
    [m.kind, m.key, `${m.requestType ?? ""}${m.resource ?? ""}`, m.code, m.status]
      .filter((x) => x !== undefined && x !== "")
      .join(" "),
  );

describe("http2 parser on Node http2 client <-> server traffic", () => {
  // payload sizes are the HTTP/2 frame lengths tshark reports for the same capture
  const expected = [
    {
      kind: "request",
      key: 1,
      version: "2",
      requestType: "GET",
      resource: "/hello",
      endpoint: "/hello",
      domain: "127.0.0.1:18441",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      xRequestId: "req-1",
      bytes: 111,
    },
    { kind: "response", key: 1, version: "2", code: 200, status: "ok", bytes: 34 + 16 + 0 },
    {
      kind: "request",
      key: 3,
      version: "2",
      requestType: "GET",
      resource: "/missing",
      endpoint: "/missing",
      domain: "127.0.0.1:18441",
      bytes: 11,
    },
    { kind: "response", key: 3, version: "2", code: 404, status: "client_error", bytes: 2 + 5 },
    {
      kind: "request",
      key: 5,
      version: "2",
      requestType: "POST",
      resource: "/upload",
      endpoint: "/upload",
      domain: "127.0.0.1:18441",
      bytes: 28 + 2000,
    },
    { kind: "response", key: 5, version: "2", code: 201, status: "ok", bytes: 5 + 9 },
    {
      kind: "request",
      key: 7,
      version: "2",
      requestType: "GET",
      resource: "/hello",
      endpoint: "/hello",
      domain: "127.0.0.1:18441",
      xRequestId: "req-4",
      bytes: 17,
    },
    { kind: "response", key: 7, version: "2", code: 200, status: "ok", bytes: 3 + 16 },
    {
      kind: "request",
      key: 9,
      version: "2",
      requestType: "GET",
      resource: "/error",
      endpoint: "/error",
      domain: "127.0.0.1:18441",
      bytes: 10,
    },
    { kind: "response", key: 9, version: "2", code: 503, status: "server_error", bytes: 6 + 5 },
    {
      kind: "request",
      key: 11,
      version: "2",
      requestType: "GET",
      resource: "/slow",
      endpoint: "/slow",
      domain: "127.0.0.1:18441",
      bytes: 9,
    },
    // the client cancelled: RST_STREAM CANCEL (8) is the answer
    { kind: "response", key: 11, version: "2", status: "unknown", exception: "RST_STREAM 8", bytes: 0 },
    {
      kind: "request",
      key: 13,
      version: "2",
      requestType: "GET",
      resource: "/hello",
      endpoint: "/hello",
      domain: "127.0.0.1:18441",
      bytes: 10,
    },
    { kind: "response", key: 13, version: "2", code: 200, status: "ok", bytes: 3 + 16 },
  ];

  it("seven requests on one connection: methods, paths, statuses, ids, sizes; secrets never recorded", () => {
    const chunks = conversation(nodeH2, 0);
    const msgs = runParser(http2, chunks);
    expect(fieldsOf(msgs)).toEqual(expected);
    expect(JSON.stringify(msgs)).not.toContain("secret");
    // the first HEADERS follows the 24-byte preface and an empty SETTINGS frame in the client's first write
    expect(msgs[0]).toMatchObject({ tcpSeq: 1000 + 24 + 9, startNs: 1000, tid: 101 });
    // the first response HEADERS follows the server's SETTINGS ack (9 bytes) in its second write
    expect(msgs[1]).toMatchObject({ tcpSeq: 5000 + 9 + 9, startNs: 3000, endNs: 4500 });
    // the RST came from the client: no server seq for it
    expect(msgs[11]?.tcpSeq).toBeUndefined();
  });

  it("keeps the query string only when redaction is off", () => {
    const msgs = runParser(http2, conversation(nodeH2, 0), { redact: false, maxBufferBytes: 65536 });
    expect(msgs[0]).toMatchObject({ resource: "/hello?token=secret", endpoint: "/hello" });
  });

  it("header blocks split over HEADERS + CONTINUATION (40000- and 30000-char headers) are assembled", () => {
    const msgs = runParser(http2, conversation(nodeH2, 1));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        key: 1,
        version: "2",
        requestType: "GET",
        resource: "/big-header",
        endpoint: "/big-header",
        domain: "127.0.0.1:18441",
        bytes: 16384 + 8657,
      },
      { kind: "response", key: 1, version: "2", code: 200, status: "ok", bytes: 16384 + 6157 + 4 },
    ]);
  });

  it("a header block over the buffer bound is dropped with the HPACK table, and flagged", () => {
    const { messages, buffered } = runWithStats(conversation(nodeH2, 1), 8192);
    expect(buffered).toBe(0);
    expect(messages.map((m) => [m.kind, m.resource, m.code, m.attributes?.["kalman.truncated"]])).toEqual([
      ["request", undefined, undefined, true],
      ["response", undefined, undefined, true],
    ]);
    expect(messages[1]?.status).toBe("unknown");
  });

  it("a DATA frame cut by the capture is skipped by length: sizes hold, the next requests decode fully", () => {
    const chunks = conversation(nodeH2, 0).map((c) => ({ ...c }));
    const post = chunks[8] as Chunk;
    expect(post.data.length).toBe(2046);
    chunks[8] = { fromClient: true, data: post.data.subarray(0, 1024), missing: 2046 - 1024 };
    const { messages, stats } = runWithStats(chunks);
    const want = expected.map((m) =>
      m.key === 5 && m.kind === "request" ? { ...m, attributes: { "kalman.truncated": true } } : m,
    );
    expect(fieldsOf(messages)).toEqual(want);
    expect(stats).toMatchObject({ malformed: 0, resyncBytes: 0, hpackIncomplete: 0 });
  });

  it("bytes lost past a frame end: resync on the next write, later requests flagged, never guessed", () => {
    const chunks = conversation(nodeH2, 0).map((c) => ({ ...c }));
    // the POST write cut at 1024 bytes, and the next client write (GET /hello, x-request-id req-4) lost entirely
    const lost = (chunks[11] as Chunk).data.length;
    chunks[8] = { fromClient: true, data: (chunks[8] as Chunk).data.subarray(0, 1024), missing: 1022 + lost };
    chunks.splice(11, 1);
    const { messages, stats } = runWithStats(chunks);
    expect(summary(messages)).toEqual([
      "request 1 GET/hello",
      "response 1 200 ok",
      "request 3 GET/missing",
      "response 3 404 client_error",
      "request 5 POST/upload",
      "response 5 201 ok",
      // its request was lost: an orphan response (upstream counts it)
      "response 7 200 ok",
      "request 9 GET/error",
      "response 9 503 server_error",
      "request 11 GET/slow",
      "response 11 unknown",
      "request 13 GET/hello",
      "response 13 200 ok",
    ]);
    // :authority was in the client's dynamic table: after the loss it is unknown, not guessed
    const after = messages.filter((m) => m.kind === "request" && (m.key as number) >= 9);
    for (const m of after) {
      expect(m.domain).toBeUndefined();
      expect(m.attributes?.["kalman.hpack_incomplete"]).toBe(true);
    }
    expect(stats.resyncBytes).toBe(lost);
    expect(stats.hpackIncomplete).toBe(3);
  });

  it("a HEADERS frame cut by the capture keeps the fields before the cut", () => {
    const chunks = conversation(nodeH2, 0).map((c) => ({ ...c }));
    const first = chunks[1] as Chunk;
    // preface (24) + SETTINGS (9) + HEADERS header (9) + 40 of its 111 payload bytes
    chunks[1] = { fromClient: true, data: first.data.subarray(0, 24 + 9 + 9 + 40), missing: 111 - 40 };
    const msgs = runParser(http2, chunks.slice(0, 8));
    expect(msgs[0]).toMatchObject({
      kind: "request",
      key: 1,
      requestType: "GET",
      bytes: 111,
      attributes: { "kalman.truncated": true },
    });
    expect(msgs[0]?.xRequestId).toBeUndefined();
    expect(msgs.map((m) => `${m.kind} ${m.key}`)).toEqual(["request 1", "response 1", "request 3", "response 3"]);
  });
});

describe("http2 parser on nghttp and curl traffic with padding, priorities and server push", () => {
  it("push: the PUSH_PROMISE is the pushed stream's request; padded frames count in full", () => {
    const msgs = runParser(http2, conversation(padded, 0));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        key: 13,
        version: "2",
        requestType: "GET",
        resource: "/push",
        endpoint: "/push",
        domain: "127.0.0.1:18442",
        bytes: 44,
      },
      {
        kind: "request",
        key: 15,
        version: "2",
        requestType: "GET",
        resource: "/hello",
        endpoint: "/hello",
        domain: "127.0.0.1:18442",
        bytes: 18,
      },
      {
        kind: "request",
        key: 2,
        version: "2",
        requestType: "GET",
        resource: "/pushed.css",
        endpoint: "/pushed.css",
        domain: "127.0.0.1:18442",
        bytes: 285,
        attributes: { "kalman.http2_push": true },
      },
      { kind: "response", key: 2, version: "2", code: 200, status: "ok", bytes: 266 + 263 },
      { kind: "response", key: 13, version: "2", code: 200, status: "ok", bytes: 281 + 263 + 256 + 256 },
      { kind: "response", key: 15, version: "2", code: 200, status: "ok", bytes: 267 + 272 + 256 + 256 },
    ]);
  });

  it("curl with prior knowledge: 404", () => {
    const msgs = runParser(http2, conversation(padded, 1));
    expect(summary(msgs)).toEqual(["request 1 GET/missing", "response 1 404 client_error"]);
    expect(msgs[1]?.bytes).toBe(281 + 261 + 256 + 256);
  });
});

describe("gRPC on grpc-js traffic", () => {
  const rpc = (method: string) => ({
    "rpc.system": "grpc",
    "rpc.service": "demo.Greeter",
    "rpc.method": method,
  });
  const request = (key: number, method: string, bytes: number) => ({
    kind: "request",
    key,
    version: "2",
    protocol: "grpc",
    requestType: `/demo.Greeter/${method}`,
    endpoint: `/demo.Greeter/${method}`,
    resource: `/demo.Greeter/${method}`,
    domain: "127.0.0.1:18443",
    bytes,
    attributes: rpc(method),
  });

  it("unary, server streaming, client streaming, NOT_FOUND and INTERNAL: full method, grpc-status, grpc-message", () => {
    const msgs = runParser(http2, conversation(grpcJs, 0));
    expect(fieldsOf(msgs)).toEqual([
      { ...request(1, "SayHello", 164 + 10), traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
      { kind: "response", key: 1, version: "2", protocol: "grpc", code: 0, status: "ok", bytes: 95 + 16 + 26 },
      request(3, "SayHello", 26 + 10),
      { kind: "response", key: 3, version: "2", protocol: "grpc", code: 0, status: "ok", bytes: 5 + 16 + 2 },
      request(5, "ListHellos", 27 + 6),
      { kind: "response", key: 5, version: "2", protocol: "grpc", code: 0, status: "ok", bytes: 5 + 3 * 13 + 2 },
      // client streaming: the request ends with the client's last message
      request(7, "Upload", 25 + 3 * 11),
      { kind: "response", key: 7, version: "2", protocol: "grpc", code: 0, status: "ok", bytes: 5 + 11 + 2 },
      request(9, "Find", 23 + 7),
      // trailers-only response; grpc-message is percent-encoded UTF-8
      {
        kind: "response",
        key: 9,
        version: "2",
        protocol: "grpc",
        code: 5,
        status: "client_error",
        exception: "user 42 not found: é",
        bytes: 34,
      },
      request(11, "Crash", 24 + 6),
      {
        kind: "response",
        key: 11,
        version: "2",
        protocol: "grpc",
        code: 13,
        status: "server_error",
        exception: "boom",
        bytes: 14,
      },
    ]);
    // the server-streaming response ends with its trailers, after the three messages
    expect(msgs[5]).toMatchObject({ startNs: 9000, endNs: 12500 });
  });
});

describe("http2 capture starting mid-connection (HPACK state unknown)", () => {
  it("gRPC: references to the unseen dynamic table stay unset and flagged; nothing is guessed", () => {
    // from the second SayHello on: the preface, SETTINGS and first call are not captured
    const { messages, stats } = runWithStats(conversation(grpcJs, 0).slice(5));
    const incomplete = { "kalman.hpack_incomplete": true };
    expect(fieldsOf(messages)).toEqual([
      // :method and :path are static/literal; content-type and :authority sit in the unknown table
      {
        kind: "request",
        key: 3,
        version: "2",
        requestType: "POST",
        resource: "/demo.Greeter/SayHello",
        endpoint: "/demo.Greeter/SayHello",
        bytes: 36,
        attributes: incomplete,
      },
      // :status 200 is static, but grpc-status in the trailers is unknown: status is not claimed
      { kind: "response", key: 3, version: "2", code: 200, status: "unknown", bytes: 23, attributes: incomplete },
      {
        kind: "request",
        key: 5,
        version: "2",
        requestType: "POST",
        resource: "/demo.Greeter/ListHellos",
        endpoint: "/demo.Greeter/ListHellos",
        bytes: 33,
        attributes: incomplete,
      },
      { kind: "response", key: 5, version: "2", code: 200, status: "unknown", bytes: 46, attributes: incomplete },
      {
        kind: "request",
        key: 7,
        version: "2",
        requestType: "POST",
        resource: "/demo.Greeter/Upload",
        endpoint: "/demo.Greeter/Upload",
        bytes: 58,
        attributes: incomplete,
      },
      { kind: "response", key: 7, version: "2", code: 200, status: "unknown", bytes: 18, attributes: incomplete },
      {
        kind: "request",
        key: 9,
        version: "2",
        requestType: "POST",
        resource: "/demo.Greeter/Find",
        endpoint: "/demo.Greeter/Find",
        bytes: 30,
        attributes: incomplete,
      },
      // NOT_FOUND hides behind names from the unknown table: not reported as ok, nor as 5
      { kind: "response", key: 9, version: "2", code: 200, status: "unknown", bytes: 34, attributes: incomplete },
      {
        kind: "request",
        key: 11,
        version: "2",
        requestType: "POST",
        resource: "/demo.Greeter/Crash",
        endpoint: "/demo.Greeter/Crash",
        bytes: 30,
        attributes: incomplete,
      },
      { kind: "response", key: 11, version: "2", code: 200, status: "unknown", bytes: 14, attributes: incomplete },
    ]);
    expect(stats).toMatchObject({ malformed: 0, resyncBytes: 0, hpackIncomplete: 10 });
  });

  it("HTTP: the request's :authority and x-request-id (dynamic) stay unset; statuses that are literal or static hold", () => {
    const { messages, stats } = runWithStats(conversation(nodeH2, 0).slice(11));
    expect(summary(messages)).toEqual([
      "request 7 GET/hello",
      "response 7 200 ok",
      "request 9 GET/error",
      "response 9 503 server_error",
      "request 11 GET/slow",
      "response 11 unknown",
      "request 13 GET/hello",
      "response 13 200 ok",
    ]);
    const first = messages[0] as L7Message;
    expect(first.domain).toBeUndefined();
    expect(first.xRequestId).toBeUndefined();
    expect(first.attributes).toEqual({ "kalman.hpack_incomplete": true });
    expect(stats.malformed).toBe(0);
  });

  it("starts on a chunk that is not a frame boundary: skipped, then resynchronised at the next write", () => {
    const chunks = conversation(grpcJs, 0).slice(5);
    const first = chunks[0] as Chunk;
    chunks[0] = { fromClient: true, data: first.data.subarray(13) };
    const { messages, stats } = runWithStats(chunks);
    // the cut request is gone; its response is an orphan; the rest parses
    expect(summary(messages).slice(0, 3)).toEqual([
      "response 3 200 unknown",
      "request 5 POST/demo.Greeter/ListHellos",
      "response 5 200 unknown",
    ]);
    expect(stats.resyncBytes).toBe(first.data.length - 13);
  });
});

describe("http2 parser: every split, every prefix, fuzz", () => {
  const small: Array<[string, Chunk[]]> = [
    ["node h2", conversation(nodeH2, 0)],
    ["nghttp padded + push", conversation(padded, 0)],
    ["curl", conversation(padded, 1)],
    ["grpc-js", conversation(grpcJs, 0)],
    ["grpc-js mid-connection", conversation(grpcJs, 0).slice(5)],
  ];
  for (const [name, chunks] of small) {
    it(`${name}: same messages split at every offset, byte by byte, and for every prefix`, () => {
      checkSplitsEverywhere(http2, chunks);
      checkByteByByte(http2, chunks);
      checkEveryPrefix(http2, chunks);
    });
  }

  it("CONTINUATION conversation (47 KB): byte by byte, and split at every 97th offset", () => {
    const chunks = conversation(nodeH2, 1);
    checkByteByByte(http2, chunks);
    const whole = fieldsOf(runParser(http2, chunks));
    chunks.forEach((c, i) => {
      for (let k = 1; k < c.data.length; k += 97) {
        const split = [
          ...chunks.slice(0, i),
          { fromClient: c.fromClient, data: c.data.subarray(0, k) },
          { fromClient: c.fromClient, data: c.data.subarray(k) },
          ...chunks.slice(i + 1),
        ];
        expect(fieldsOf(runParser(http2, split)), `chunk ${i} split at ${k}`).toEqual(whole);
      }
    });
  });

  it("never throws, stays bounded and is deterministic on random and mutated input", () => {
    checkFuzz(
      http2,
      small.map(([, chunks]) => chunks),
    );
  });
});

describe("http2 parser edge cases", () => {
  const PREFACE = "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a";
  const client = (h: string): Chunk => ({ fromClient: true, data: hex(h) });
  const server = (h: string): Chunk => ({ fromClient: false, data: hex(h) });
  // hand-written frames: HEADERS on stream 1, END_STREAM|END_HEADERS, block 82 84 86 (GET, /, http; RFC 7541 static table)
  const GET_SLASH = "000003 01 05 00000001 828486";

  it("RST_STREAM from the server (REFUSED_STREAM) answers the request", () => {
    const msgs = runParser(http2, [
      client(`${PREFACE} 000000 04 00 00000000 ${GET_SLASH}`),
      server("000000 04 00 00000000 000004 03 00 00000001 00000007"),
    ]);
    expect(fieldsOf(msgs)).toEqual([
      { kind: "request", key: 1, version: "2", requestType: "GET", resource: "/", endpoint: "/", bytes: 3 },
      { kind: "response", key: 1, version: "2", status: "unknown", exception: "RST_STREAM 7", bytes: 4 },
    ]);
  });

  it("a response that ends before the request does: the request is emitted first, as it stands", () => {
    const msgs = runParser(http2, [
      // HEADERS without END_STREAM: the client keeps its stream open
      client(`${PREFACE} 000003 01 04 00000001 838486`),
      // :status 200 (0x88) with END_STREAM
      server("000001 01 05 00000001 88"),
    ]);
    expect(msgs.map((m) => `${m.kind} ${m.requestType ?? m.code}`)).toEqual(["request POST", "response 200"]);
  });

  it("unknown frame types, PING, WINDOW_UPDATE, GOAWAY and PRIORITY make no records and keep framing", () => {
    const msgs = runParser(http2, [
      client(
        `${PREFACE} 000003 fa 00 00000000 010203 000008 06 00 00000000 0102030405060708 000004 08 00 00000000 00001000 000005 02 00 00000003 0000000110 ${GET_SLASH}`,
      ),
      server("000001 01 05 00000001 8d 000008 07 00 00000000 0000000100000000"),
    ]);
    expect(summary(msgs)).toEqual(["request 1 GET/", "response 1 404 client_error"]);
  });

  it("a CONTINUATION with no HEADERS before it is malformed but skipped by length", () => {
    const { messages, stats } = runWithStats([
      client(`${PREFACE} 000002 09 04 00000001 8284 ${GET_SLASH}`),
      server("000001 01 05 00000001 88"),
    ]);
    expect(summary(messages)).toEqual(["request 1 GET/", "response 1 200 ok"]);
    expect(stats.malformed).toBe(1);
  });

  it("an implausible frame header drops the rest of the write; the next write starts over", () => {
    const { messages, stats } = runWithStats([
      client(`${PREFACE} 000000 04 00 00000000`),
      // length 0xffffff is beyond the maximum frame size
      client("ffffff 00 00 00000001 00"),
      client(GET_SLASH),
      server("000001 01 05 00000001 88"),
    ]);
    expect(summary(messages)).toEqual(["request 1 GET/", "response 1 200 ok"]);
    expect(stats).toMatchObject({ malformed: 1, resyncBytes: 10 });
  });

  it("SETTINGS_HEADER_TABLE_SIZE bounds the peer's dynamic table size updates", () => {
    // the server's block: size update to 8192 (3f e1 3f), then :status 200 (88)
    const response = server("000000 04 00 00000000 000004 01 05 00000001 3fe13f88");
    const allowed = runWithStats([
      // the client allows 8192 bytes (SETTINGS id 1)
      client(`${PREFACE} 000006 04 00 00000000 0001 00002000 ${GET_SLASH}`),
      response,
    ]);
    expect(summary(allowed.messages)).toEqual(["request 1 GET/", "response 1 200 ok"]);
    expect(allowed.stats.malformed).toBe(0);
    // with the default 4096 the update is an error: the block is not trusted, nothing is taken from it
    const refused = runWithStats([client(`${PREFACE} 000000 04 00 00000000 ${GET_SLASH}`), response]);
    expect(summary(refused.messages)).toEqual(["request 1 GET/", "response 1 unknown"]);
    expect(refused.stats.malformed).toBe(1);
  });

  it("SETTINGS_MAX_FRAME_SIZE allows the peer bigger frames", () => {
    const bigData = `004e20 00 01 00000001 ${"00".repeat(20000)}`;
    const withSetting = runWithStats([
      client(`${PREFACE} 000006 04 00 00000000 0005 00008000 ${GET_SLASH}`),
      server(`000000 04 00 00000000 000001 01 04 00000001 88 ${bigData}`),
    ]);
    expect(withSetting.messages[1]).toMatchObject({ code: 200, bytes: 1 + 20000 });
    expect(withSetting.stats.malformed).toBe(0);
    const without = runWithStats([
      client(`${PREFACE} 000000 04 00 00000000 ${GET_SLASH}`),
      server(`000000 04 00 00000000 000001 01 04 00000001 88 ${bigData}`),
    ]);
    expect(without.messages).toHaveLength(1);
    expect(without.stats.malformed).toBe(1);
  });

  it("streams are bounded: past 1024 open streams the oldest are forgotten", () => {
    let frames = `${PREFACE} 000000 04 00 00000000`;
    // 1100 requests left open (HEADERS with END_HEADERS only), static-table block 82 84 86
    for (let id = 1; id < 2200; id += 2) frames += `000003 01 04 ${id.toString(16).padStart(8, "0")} 828486`;
    const session = http2.createSession(DEFAULT_SESSION) as Http2Session;
    const meta: ChunkMeta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
    const out: L7Message[] = [];
    session.feed(true, hex(frames), 0, meta, (m) => out.push(m));
    expect(out).toHaveLength(0);
    expect((session.stats as Http2Stats).streamsEvicted).toBe(1100 - 1024);
    // closing emits the requests the client never ended, for upstream to report unanswered
    session.close?.((m) => out.push(m), meta);
    expect(out).toHaveLength(1024);
    expect(out[0]?.key).toBe(2 * (1100 - 1024) + 1);
  });

  it("a gap before any data: the session waits for a plausible frame", () => {
    const { messages } = runWithStats([
      { fromClient: true, data: new Uint8Array(0), missing: 500 },
      { fromClient: true, data: text("garbage that is no frame") },
      client(GET_SLASH),
      server("000001 01 05 00000001 88"),
    ]);
    expect(summary(messages)).toEqual(["request 1 GET/", "response 1 200 ok"]);
  });
});

describe("http2 detect", () => {
  it("the client preface is sure, even cut short", () => {
    expect(detectHttp2(text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0"))).toEqual({
      confidence: Confidence.Sure,
      fromClient: true,
    });
    expect(detectHttp2(text("PRI * HTT")).confidence).toBe(Confidence.Sure);
  });

  it("recorded mid-connection writes are a maybe", () => {
    // grpc-js server's SETTINGS ack + HEADERS + DATA, and the client's next call
    expect(detectHttp2((conversation(grpcJs, 0)[3] as Chunk).data).confidence).toBe(Confidence.Maybe);
    expect(detectHttp2((conversation(grpcJs, 0)[5] as Chunk).data).confidence).toBe(Confidence.Maybe);
    // Node server's first write: its SETTINGS
    expect(detectHttp2((conversation(nodeH2, 0)[0] as Chunk).data).confidence).toBe(Confidence.Maybe);
  });

  it("other protocols are not HTTP/2", () => {
    const no = Confidence.No;
    expect(detectHttp2(text("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).confidence).toBe(no);
    expect(detectHttp2(text("HTTP/1.1 200 OK\r\n\r\n")).confidence).toBe(no);
    expect(detectHttp2(text("*1\r\n$4\r\nPING\r\n")).confidence).toBe(no);
    // TLS ClientHello, PostgreSQL startup, MySQL OK packet, a DNS-over-TCP query
    expect(detectHttp2(hex("16030100f4010000f00303")).confidence).toBe(no);
    expect(detectHttp2(hex("0000005200030000757365720070")).confidence).toBe(no);
    expect(detectHttp2(hex("0700000200000002000000")).confidence).toBe(no);
    expect(detectHttp2(hex("001dabcd0100000100000000000007")).confidence).toBe(no);
    // a CONTINUATION cannot start what we see
    expect(detectHttp2(hex("000002 09 04 00000001 8284")).confidence).toBe(no);
  });
});

describe("HPACK decoder on RFC 7541 Appendix C examples", () => {
  const decode = (d: HpackDecoder, block: string) => {
    const f = new HeaderFields();
    const b = hex(block);
    d.decode(b, 0, b.length, f);
    return f;
  };

  for (const [name, blocks] of [
    [
      "C.3 requests without Huffman",
      [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ],
    ],
    [
      "C.4 requests with Huffman",
      [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ],
    ],
  ] as const) {
    it(name, () => {
      const d = new HpackDecoder();
      d.start();
      const paths = ["/", "/", "/index.html"];
      const sizes = [57, 110, 164];
      blocks.forEach((block, i) => {
        const f = decode(d, block);
        expect([f.method, f.path, f.authority, f.unresolved]).toEqual(["GET", paths[i], "www.example.com", 0]);
        expect(d.tableSize).toBe(sizes[i]);
      });
      expect(d.knownEntries).toBe(3);
    });
  }

  for (const [name, blocks] of [
    [
      "C.5 responses with eviction, without Huffman",
      [
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
      ],
    ],
    [
      "C.6 responses with eviction, with Huffman",
      [
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
      ],
    ],
  ] as const) {
    it(name, () => {
      const d = new HpackDecoder();
      d.start();
      decode(d, "3fe101"); // dynamic table size update to 256, as the examples assume
      const statuses = ["302", "307", "200"];
      const sizes = [222, 222, 215];
      const counts = [4, 4, 3];
      blocks.forEach((block, i) => {
        const f = decode(d, block);
        expect([f.status, f.unresolved]).toEqual([statuses[i], 0]);
        expect([d.tableSize, d.knownEntries]).toEqual([sizes[i], counts[i]]);
      });
    });
  }

  it("mid-connection: unknown entries are unresolved until known ones shadow them; bad indexes are malformed once the table is known", () => {
    const d = new HpackDecoder();
    // index 62 (0xbe) is in the unseen table
    expect(decode(d, "be").unresolved).toBe(1);
    // insert ":authority: a" (literal with indexing, name index 1); then 62 is it, 63 unknown
    decode(d, "4101 61");
    expect(decode(d, "be").authority).toBe("a");
    expect(decode(d, "bf").unresolved).toBe(1);
    // a size update to 0 evicts everything, including what we never saw: now a reference past the end is an error
    decode(d, "20");
    expect(d.isPartial).toBe(false);
    const f = new HeaderFields();
    const b = hex("be");
    expect(d.decode(b, 0, 1, f)).toBe(2);
  });

  it("invalid Huffman (EOS inside a string) is malformed", () => {
    const d = new HpackDecoder();
    d.start();
    const f = new HeaderFields();
    const b = hex("4184 ffffffff");
    expect(d.decode(b, 0, b.length, f)).toBe(2);
  });
});
