import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { http1 } from "../src/protocols/http1/index.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  fieldsOf,
  runParser,
  text,
} from "./support/harness.js";

/** Conversations recorded from curl <-> nginx (see the fixture's header). */
function recorded(): Map<number, Chunk[]> {
  const streams = new Map<number, Chunk[]>();
  const file = new URL("fixtures/http1/nginx-curl.tsv", import.meta.url);
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [stream, port, hexPayload] = line.split("\t");
    const chunks = streams.get(Number(stream)) ?? [];
    chunks.push({ fromClient: port !== "18181", data: Uint8Array.from(Buffer.from(hexPayload ?? "", "hex")) });
    streams.set(Number(stream), chunks);
  }
  return streams;
}

const streams = recorded();
const conversation = (n: number) => streams.get(n) as Chunk[];
/** Length of chunk i of stream n: each recorded write holds exactly one message here. */
const len = (n: number, i: number) => conversation(n)[i]?.data.length ?? -1;

describe("http1 parser on recorded nginx traffic", () => {
  it("keep-alive: two requests with traceparent, 200 then 404; Authorization never recorded", () => {
    const msgs = runParser(http1, conversation(0));
    expect(fieldsOf(msgs)).toEqual([
      {
        kind: "request",
        version: "1.1",
        requestType: "GET",
        resource: "/ok",
        endpoint: "/ok",
        domain: "127.0.0.1:18181",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        bytes: len(0, 0),
      },
      { kind: "response", version: "1.1", code: 200, status: "ok", bytes: len(0, 1) },
      {
        kind: "request",
        version: "1.1",
        requestType: "GET",
        resource: "/missing",
        endpoint: "/missing",
        domain: "127.0.0.1:18181",
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        bytes: len(0, 2),
      },
      { kind: "response", version: "1.1", code: 404, status: "client_error", exception: "Not Found", bytes: len(0, 3) },
    ]);
    expect(JSON.stringify(msgs)).not.toContain("secret");
    // the request's seq is the chunk's seq (first byte), timing from its chunk
    expect(msgs[0]).toMatchObject({ tcpSeq: 1000, startNs: 0, tid: 100 });
    expect(msgs[2]).toMatchObject({ tcpSeq: 1000 + len(0, 0), startNs: 2000, tid: 102 });
  });

  it("500 is a server error", () => {
    const msgs = runParser(http1, conversation(1));
    expect(msgs.map((m) => [m.kind, m.code, m.status])).toEqual([
      ["request", undefined, undefined],
      ["response", 500, "server_error"],
    ]);
  });

  it("chunked gzip response is framed by its chunks", () => {
    const msgs = runParser(http1, conversation(2));
    expect(msgs).toHaveLength(2);
    expect(msgs[1]).toMatchObject({ kind: "response", code: 200, bytes: conversation(2)[1]?.data.length });
  });

  it("POST body by content-length; the query string (a token) is dropped unless redaction is off", () => {
    const msgs = runParser(http1, conversation(3));
    expect(msgs[0]).toMatchObject({
      requestType: "POST",
      resource: "/ok",
      endpoint: "/ok",
      bytes: conversation(3)[0]?.data.length,
    });
    const raw = runParser(http1, conversation(3), { redact: false, maxBufferBytes: 65536 });
    expect(raw[0]?.resource).toBe("/ok?token=abc");
  });

  it("HEAD response has no body even with Content-Length", () => {
    const [head] = streams.get(4) as Chunk[];
    const [, resp] = streams.get(4) as Chunk[];
    // followed by another request/response on the same connection: framing must hold
    const again = conversation(0).slice(0, 2);
    const msgs = runParser(http1, [head as Chunk, resp as Chunk, ...again]);
    expect(msgs.map((m) => m.kind)).toEqual(["request", "response", "request", "response"]);
    expect(msgs[1]).toMatchObject({ code: 200, bytes: (resp as Chunk).data.length });
    expect(msgs[2]).toMatchObject({ resource: "/ok" });
  });

  for (const [n, chunks] of streams) {
    it(`stream ${n}: same messages split at every offset, byte by byte, and for every prefix`, () => {
      checkSplitsEverywhere(http1, chunks);
      checkByteByByte(http1, chunks);
      checkEveryPrefix(http1, chunks);
    });
  }

  it("never throws, stays bounded and is deterministic on random and mutated input", () => {
    checkFuzz(http1, [...streams.values()]);
  });
});

describe("http1 parser edge cases", () => {
  const req = (s: string): Chunk => ({ fromClient: true, data: text(s) });
  const resp = (s: string): Chunk => ({ fromClient: false, data: text(s) });

  it("pipelined requests in one chunk and responses in one chunk", () => {
    const msgs = runParser(http1, [
      req("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"),
      resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(msgs.map((m) => m.resource ?? m.code)).toEqual(["/a", "/b", 200, 503]);
    expect(msgs[3]?.status).toBe("server_error");
    // the second pipelined request's seq is offset within the chunk
    expect(msgs[1]?.tcpSeq).toBe(1000 + "GET /a HTTP/1.1\r\nHost: x\r\n\r\n".length);
  });

  it("100-continue: the interim response is not the answer", () => {
    const msgs = runParser(http1, [
      req("PUT /up HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"),
      resp("HTTP/1.1 100 Continue\r\n\r\n"),
      req("data"),
      resp("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(msgs.map((m) => `${m.kind}:${m.code ?? m.requestType}`)).toEqual(["request:PUT", "response:201"]);
  });

  it("204 and 304 have no body", () => {
    const msgs = runParser(http1, [
      req("DELETE /x HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 204 No Content\r\n\r\n"),
      req("GET /y HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
      req("GET /z HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
    ]);
    expect(msgs.filter((m) => m.kind === "response").map((m) => m.code)).toEqual([204, 304, 200]);
  });

  it("a body truncated by the capture is skipped by length and the next message still parses", () => {
    const msgs = runParser(http1, [
      { fromClient: true, data: text("POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\nxxxx"), missing: 4996 },
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
      req("GET /next HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(msgs.map((m) => m.resource ?? m.code)).toEqual(["/big", 200, "/next", 200]);
    expect(msgs[0]?.bytes).toBe("POST /big HTTP/1.1\r\nContent-Length: 5000\r\n\r\n".length + 5000);
    expect(msgs[0]?.attributes?.["kalman.truncated"]).toBe(true);
  });

  it("a head cut by the capture keeps method and path, then resynchronises", () => {
    const msgs = runParser(http1, [
      { fromClient: true, data: text("GET /long/path?q=1 HTTP/1.1\r\nHost: h\r\nX-Big: aaaa"), missing: 3000 },
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
      req("GET /after HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(msgs.map((m) => m.resource ?? m.code)).toEqual(["/long/path", 200, "/after", 200]);
  });

  it("capture starting mid-body resynchronises at the next message", () => {
    const msgs = runParser(http1, [
      req("tail of a previous body"),
      req("GET /fresh HTTP/1.1\r\n\r\n"),
      resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(msgs.map((m) => m.resource ?? m.code)).toEqual(["/fresh", 200]);
  });

  it("a response read until close is emitted at close", () => {
    const msgs = runParser(http1, [req("GET / HTTP/1.0\r\n\r\n"), resp("HTTP/1.0 200 OK\r\n\r\nbody until close")]);
    expect(msgs.map((m) => m.kind)).toEqual(["request", "response"]);
    expect(msgs[1]?.bytes).toBe("HTTP/1.0 200 OK\r\n\r\nbody until close".length);
  });

  it("101 Switching Protocols ends HTTP/1 parsing on the connection", () => {
    const msgs = runParser(http1, [
      req("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
      resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"),
      req("\x81\x85GET / HTTP/1.1 binary frames"),
    ]);
    expect(msgs.map((m) => m.code ?? m.requestType)).toEqual(["GET", 101]);
  });
});
