import { L7Aggregator, type PayloadView, type RequestRecord } from "@kalman/flow-aggregator";
import { describe, expect, it } from "vitest";
import { SpanCorrelator } from "../src/correlator.js";
import { LocalLinkIndex } from "../src/link-index.js";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: h\r\n${extra}\r\n`;
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

interface Ev {
  conn: number;
  pid: number;
  tid: number;
  role: 1 | 2;
  egress: boolean;
  data: string;
  t: number;
  seq?: number;
}

function view(e: Ev): PayloadView {
  const data = bytes(e.data);
  return {
    connId: e.conn,
    egress: e.egress,
    role: e.role,
    transport: "tcp",
    startNs: e.t,
    endNs: e.t + 5,
    bytes: data.length,
    tcpSeq: e.seq ?? 0,
    seqValid: e.seq !== undefined,
    pid: e.pid,
    tid: e.tid,
    localPort: e.role === 2 ? 8080 : 40000 + e.conn,
    remotePort: e.role === 2 ? 40000 + e.conn : 8080,
    netns: 1,
    cgroupId: 1,
    payload: () => data,
    localAddr: () => "127.0.0.1",
    remoteAddr: () => "127.0.0.1",
    comm: () => `p${e.pid}`,
  };
}

function setup(options: ConstructorParameters<typeof SpanCorrelator>[0] = {}) {
  const correlator = new SpanCorrelator(options);
  const agg = new L7Aggregator({ listener: correlator });
  const feed = (...evs: Ev[]) => {
    for (const e of evs) agg.ingest(view(e));
    agg.endBatch();
  };
  return { correlator, agg, feed };
}

const find = (rs: RequestRecord[], pid: number, path: string) =>
  rs.find((r) => r.pid === pid && r.resource === path) as RequestRecord;

describe("SpanCorrelator", () => {
  // A (pid 10, thread 11) serves /front and calls B (pid 20, thread 21) for /back
  const chain = (order: "causal" | "server-read-first"): Ev[] => {
    const aIn: Ev = { conn: 1, pid: 10, tid: 11, role: 2, egress: false, data: GET("/front"), t: 100, seq: 1 };
    const aOut: Ev = { conn: 2, pid: 10, tid: 11, role: 1, egress: true, data: GET("/back"), t: 120, seq: 5000 };
    // B's read returns (t=121..126) after A's write started (t=120): on loopback it can still be drained first
    const bIn: Ev = { conn: 3, pid: 20, tid: 21, role: 2, egress: false, data: GET("/back"), t: 121, seq: 5000 };
    const rest: Ev[] = [
      { conn: 3, pid: 20, tid: 21, role: 2, egress: true, data: OK, t: 140, seq: 9000 },
      { conn: 2, pid: 10, tid: 11, role: 1, egress: false, data: OK, t: 150, seq: 9000 },
      { conn: 1, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 160, seq: 7000 },
    ];
    return order === "causal" ? [aIn, aOut, bIn, ...rest] : [aIn, bIn, aOut, ...rest];
  };

  for (const order of ["causal", "server-read-first"] as const) {
    it(`links server → client (same thread) → server (TCP seq) into one trace (${order})`, () => {
      const { agg, feed, correlator } = setup();
      feed(...chain(order));
      const rs = agg.takeRecords();
      const aServer = find(rs, 10, "/front");
      const aClient = find(rs, 10, "/back");
      const bServer = find(rs, 20, "/back");
      expect(aServer.span).toMatchObject({ unlinkedReason: "no caller observed" });
      expect(aServer.span?.parentSpanId).toBeUndefined();
      expect(aClient.span).toMatchObject({
        traceId: aServer.span?.traceId,
        parentSpanId: aServer.span?.spanId,
        linkedBy: "thread",
      });
      expect(bServer.span).toMatchObject({
        traceId: aServer.span?.traceId,
        parentSpanId: aClient.span?.spanId,
        linkedBy: "tcp_seq",
      });
      expect(new Set(rs.map((r) => r.span?.spanId)).size).toBe(3);
      expect(correlator.stats()).toMatchObject({ linkedThread: 1, linkedTcpSeq: 1, serverRoots: 1, ambiguous: 0 });
    });
  }

  it("adopts an incoming traceparent's trace id and parent", () => {
    const { agg, feed } = setup();
    const tp = "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n";
    feed(
      { conn: 1, pid: 10, tid: 11, role: 2, egress: false, data: GET("/x", tp), t: 100, seq: 1 },
      { conn: 1, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 110, seq: 2 },
    );
    expect(agg.takeRecords()[0]?.span).toMatchObject({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      parentSpanId: "b7ad6b7169203331",
      linkedBy: "traceparent",
    });
  });

  it("an event-loop thread serving two requests at once: its outgoing call is left unlinked, with the reason", () => {
    const { agg, feed, correlator } = setup();
    feed(
      { conn: 1, pid: 10, tid: 11, role: 2, egress: false, data: GET("/one"), t: 100, seq: 1 },
      { conn: 4, pid: 10, tid: 11, role: 2, egress: false, data: GET("/two"), t: 105, seq: 1 },
      { conn: 2, pid: 10, tid: 11, role: 1, egress: true, data: GET("/down"), t: 120, seq: 5000 },
      { conn: 2, pid: 10, tid: 11, role: 1, egress: false, data: OK, t: 130, seq: 9 },
      { conn: 1, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 140, seq: 9 },
      { conn: 4, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 141, seq: 9 },
    );
    const rs = agg.takeRecords();
    const down = find(rs, 10, "/down");
    expect(down.span?.parentSpanId).toBeUndefined();
    expect(down.span?.unlinkedReason).toBe("ambiguous: 2 requests in flight on thread 11");
    expect(correlator.stats().ambiguous).toBe(1);
    // after both answered, the thread serves one request again: linking resumes
    feed(
      { conn: 1, pid: 10, tid: 11, role: 2, egress: false, data: GET("/three"), t: 200, seq: 50 },
      { conn: 2, pid: 10, tid: 11, role: 1, egress: true, data: GET("/down2"), t: 210, seq: 5100 },
      { conn: 2, pid: 10, tid: 11, role: 1, egress: false, data: OK, t: 220, seq: 19 },
      { conn: 1, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 230, seq: 19 },
    );
    const rs2 = agg.takeRecords();
    expect(find(rs2, 10, "/down2").span?.parentSpanId).toBe(find(rs2, 10, "/three").span?.spanId);
  });

  it("a call made from another thread than the one serving is not linked by thread", () => {
    const { agg, feed } = setup();
    feed(
      { conn: 1, pid: 10, tid: 11, role: 2, egress: false, data: GET("/front"), t: 100, seq: 1 },
      { conn: 2, pid: 10, tid: 99, role: 1, egress: true, data: GET("/elsewhere"), t: 120, seq: 5000 },
    );
    const rs = agg.takeRecords();
    expect(rs).toHaveLength(0); // nothing answered yet
    feed(
      { conn: 2, pid: 10, tid: 99, role: 1, egress: false, data: OK, t: 130, seq: 9 },
      { conn: 1, pid: 10, tid: 11, role: 2, egress: true, data: OK, t: 140, seq: 9 },
    );
    const done = agg.takeRecords();
    expect(find(done, 10, "/elsewhere").span).toMatchObject({
      unlinkedReason: "no server request in flight on thread",
    });
  });

  it("counts client spans the full TCP-seq index dropped early; their servers stay roots, never misparented", () => {
    const { agg, feed, correlator } = setup({ linkIndex: new LocalLinkIndex(4, 1e12) });
    // ten client requests (pid 30) on ten connections, none read by a server yet
    for (let i = 0; i < 10; i++)
      feed({
        conn: 100 + i,
        pid: 30,
        tid: 31,
        role: 1,
        egress: true,
        data: GET(`/c${i}`),
        t: 1000 + i * 10,
        seq: 100 * i,
      });
    expect(correlator.stats().linksEvicted).toBeGreaterThan(0);
    // the oldest request is read now: its client span was evicted, so the server span starts a trace of its own
    feed({ conn: 200, pid: 40, tid: 41, role: 2, egress: false, data: GET("/c0"), t: 2000, seq: 0 });
    feed({ conn: 200, pid: 40, tid: 41, role: 2, egress: true, data: OK, t: 2010, seq: 50 });
    const server = agg.takeRecords().find((r) => r.pid === 40) as RequestRecord;
    expect(server.span?.parentSpanId).toBeUndefined();
    expect(server.span?.unlinkedReason).toBe("no caller observed");
  });
});
