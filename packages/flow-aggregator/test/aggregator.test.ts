import { describe, expect, it } from "vitest";
import { L7Aggregator } from "../src/aggregator.js";
import { http1 } from "../src/protocols/http1/index.js";
import { view } from "./support/fake-view.js";

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: h\r\n\r\n`;
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const MS = 1e6;

describe("L7Aggregator", () => {
  it("pairs in order per connection and fills the record from the server's point of view", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 1, egress: false, data: GET("/a") + GET("/b"), startNs: 10, endNs: 20, tid: 5 }));
    agg.ingest(view({ connId: 1, egress: true, data: OK + OK, startNs: 30, endNs: 40, tid: 6 }));
    const recs = agg.takeRecords();
    expect(recs.map((r) => r.resource)).toEqual(["/a", "/b"]);
    expect(recs[0]).toMatchObject({
      protocol: "http1",
      observationPoint: "server",
      serverAddr: "10.0.0.1",
      serverPort: 8080,
      clientAddr: "10.0.0.2",
      clientPort: 50000,
      // an ingress request starts when its read returned (20), not when the read began waiting (10)
      startNs: 20,
      endNs: 40,
      durationNs: 20,
      reqTid: 5,
      respTid: 6,
      pid: 77,
      comm: "svc",
      status: "ok",
      code: 200,
    });
    expect(agg.stats().records).toBe(2);
  });

  it("a client-side socket gives client records with the peer as server", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 2, role: 1, egress: true, data: GET("/c"), localPort: 50001, remotePort: 80 }));
    agg.ingest(view({ connId: 2, role: 1, egress: false, data: OK, localPort: 50001, remotePort: 80 }));
    expect(agg.takeRecords()[0]).toMatchObject({
      observationPoint: "client",
      serverPort: 80,
      clientPort: 50001,
      clientAddr: "10.0.0.1",
    });
  });

  it("unknown socket role: the side is inferred from which direction carried the request", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 3, role: 0, egress: true, data: GET("/d"), localPort: 40000, remotePort: 9999 }));
    agg.ingest(view({ connId: 3, role: 0, egress: false, data: OK, localPort: 40000, remotePort: 9999 }));
    expect(agg.takeRecords()[0]).toMatchObject({ observationPoint: "client", serverPort: 9999, resource: "/d" });
  });

  it("a request without a response becomes a timeout after the timeout, and not before", () => {
    const agg = new L7Aggregator({ parsers: [http1], requestTimeoutMs: 1000 });
    agg.ingest(view({ connId: 4, egress: false, data: GET("/slow"), startNs: 0, endNs: 0 }));
    agg.tick(999 * MS);
    expect(agg.takeRecords()).toEqual([]);
    agg.tick(1001 * MS);
    const [rec] = agg.takeRecords();
    expect(rec).toMatchObject({ resource: "/slow", status: "timeout", responseBytes: 0 });
    expect(agg.stats().timeouts).toBe(1);
  });

  it("a response without a request is kept and counted, not dropped", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 5, egress: true, data: "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n" }));
    const [rec] = agg.takeRecords();
    expect(rec).toMatchObject({ code: 503, status: "server_error", requestBytes: 0 });
    expect(rec?.resource).toBeUndefined();
    expect(agg.stats().orphanResponses).toBe(1);
  });

  it("closing a connection reports its unanswered requests", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 6, egress: false, data: GET("/never") }));
    agg.closeConnection(6);
    expect(agg.takeRecords()[0]).toMatchObject({
      resource: "/never",
      status: "unknown",
      exception: "no response: connection closed",
    });
    expect(agg.stats()).toMatchObject({ closedUnanswered: 1, connections: 0 });
  });

  it("bytes that match no protocol mark the connection unknown after a few chunks, counted", () => {
    const agg = new L7Aggregator({ parsers: [http1], maxDetectChunks: 3 });
    for (let i = 0; i < 5; i++) agg.ingest(view({ connId: 7, egress: i % 2 === 0, data: "\x00\x01binary" }));
    expect(agg.stats()).toMatchObject({ connectionsUnknown: 1, records: 0 });
    expect(agg.stats().ignoredBytes).toBe(5 * 8);
  });

  it("connections are bounded: the least recently used is evicted and counted", () => {
    const agg = new L7Aggregator({ parsers: [http1], maxConnections: 10 });
    for (let c = 0; c < 25; c++) agg.ingest(view({ connId: 100 + c, egress: false, data: GET(`/${c}`) }));
    const s = agg.stats();
    expect(s.connections).toBe(10);
    expect(s.connectionsEvicted).toBe(15);
    // evicted connections report their pending requests instead of losing them silently
    expect(agg.takeRecords()).toHaveLength(15);
  });

  it("a TCP seq gap is handed to the parser as missing bytes (it resynchronises)", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 8, egress: false, data: GET("/1"), tcpSeq: 100, seqValid: true }));
    agg.ingest(view({ connId: 8, egress: true, data: OK, tcpSeq: 900, seqValid: true }));
    // 50 lost bytes, then a fresh request
    agg.ingest(
      view({ connId: 8, egress: false, data: GET("/3"), tcpSeq: 100 + GET("/1").length + 50, seqValid: true }),
    );
    agg.ingest(view({ connId: 8, egress: true, data: OK, tcpSeq: 900 + OK.length, seqValid: true }));
    expect(agg.takeRecords().map((r) => r.resource)).toEqual(["/1", "/3"]);
    expect(agg.stats().gapBytes).toBe(50);
  });

  it("TLS: plaintext after a handshake replaces what the connection's syscalls showed; later ciphertext is ignored", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    const hello = Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    agg.ingest(view({ connId: 20, egress: false, data: hello, tcpSeq: 1, seqValid: true }));
    // TLS record seqs do not advance by the plaintext length: no gap may be reported
    agg.ingest(view({ connId: 20, egress: false, data: GET("/s1"), tcpSeq: 600, seqValid: true, tls: true }));
    agg.ingest(view({ connId: 20, egress: true, data: Uint8Array.from([0x17, 0x03, 0x03, 0x00, 0x30]) }));
    agg.ingest(view({ connId: 20, egress: true, data: OK, tcpSeq: 5000, seqValid: true, tls: true }));
    agg.ingest(view({ connId: 20, egress: false, data: GET("/s2"), tcpSeq: 700, seqValid: true, tls: true }));
    agg.ingest(view({ connId: 20, egress: true, data: OK, tcpSeq: 5100, seqValid: true, tls: true }));
    const recs = agg.takeRecords();
    expect(recs.map((r) => [r.resource, r.tls, r.reqTcpSeq])).toEqual([
      ["/s1", true, 600],
      ["/s2", true, 700],
    ]);
    const s = agg.stats();
    expect(s).toMatchObject({ tlsSwitches: 1, tlsCiphertextBytes: 5, gapBytes: 0 });
    // a plaintext connection's records carry no tls mark
    agg.ingest(view({ connId: 21, egress: false, data: GET("/plain") }));
    agg.ingest(view({ connId: 21, egress: true, data: OK }));
    expect(agg.takeRecords()[0]?.tls).toBeUndefined();
  });

  it("small chunks that match nothing yet are joined with the next one before giving up (split request line)", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 11, egress: false, data: "GE", tcpSeq: 500, seqValid: true }));
    agg.ingest(view({ connId: 11, egress: false, data: "T /joined HTTP/1.1\r\n\r\n", tcpSeq: 502, seqValid: true }));
    agg.ingest(view({ connId: 11, egress: true, data: OK, tcpSeq: 9000, seqValid: true }));
    const [rec] = agg.takeRecords();
    expect(rec).toMatchObject({
      resource: "/joined",
      reqTcpSeq: 500,
      requestBytes: 2 + "T /joined HTTP/1.1\r\n\r\n".length,
    });
  });

  it("UDP peers of one socket are separate conversations", () => {
    const agg = new L7Aggregator({ parsers: [http1] });
    agg.ingest(view({ connId: 9, transport: "udp", egress: false, data: GET("/x"), remoteAddr: "10.0.0.3" }));
    agg.ingest(view({ connId: 9, transport: "udp", egress: false, data: GET("/y"), remoteAddr: "10.0.0.4" }));
    expect(agg.stats().connections).toBe(2);
  });

  it("rejects an unknown protocol name in the options, naming the known ones", () => {
    expect(() => new L7Aggregator({ protocols: ["gopher" as never] })).toThrow(
      /protocols: unknown protocol 'gopher'; known: http1/,
    );
  });

  it("pending requests per connection are bounded and the overflow is counted", () => {
    const agg = new L7Aggregator({ parsers: [http1], maxPendingPerConnection: 4 });
    agg.ingest(view({ connId: 10, egress: false, data: Array.from({ length: 10 }, (_, i) => GET(`/${i}`)).join("") }));
    expect(agg.stats().pendingDropped).toBe(6);
  });
});
