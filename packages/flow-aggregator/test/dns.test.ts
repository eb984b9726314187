import { describe, expect, it } from "vitest";
import { L7Aggregator } from "../src/aggregator.js";
import type { PayloadView } from "../src/payload.js";
import { dns } from "../src/protocols/dns/index.js";
import type { DnsSessionOptions } from "../src/protocols/dns/parser.js";
import { decodeName, NAME_CUT, NAME_MALFORMED, type NameOut } from "../src/protocols/dns/wire.js";
import { Confidence } from "../src/protocols/parser.js";
import type { ChunkMeta, L7Message } from "../src/types.js";
import { tcp, udp } from "./fixtures/dns/dnsmasq.js";
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

type UdpName = keyof typeof udp;
type TcpName = keyof typeof tcp;

/** A recorded UDP exchange: query datagram, then response datagram. */
const udpChunks = (name: UdpName): Chunk[] => [
  { fromClient: true, data: hex(udp[name][0]) },
  { fromClient: false, data: hex(udp[name][1]) },
];
/** Recorded TCP segments, alternating client and server. */
const tcpChunks = (name: TcpName): Chunk[] => tcp[name].map((h, i) => ({ fromClient: i % 2 === 0, data: hex(h) }));

const UDP_OPTIONS: DnsSessionOptions = { ...DEFAULT_SESSION, transport: "udp" };

interface Expected {
  type: string;
  name: string;
  rcode: number;
  answers: number;
}

const request = (id: number, e: Expected, bytes: number): Partial<L7Message> => ({
  kind: "request",
  key: id,
  requestType: e.type,
  resource: e.name,
  domain: e.name,
  endpoint: e.name,
  bytes,
  attributes: { "dns.question.name": e.name },
});

const STATUS: Record<number, string> = { 0: "ok", 2: "server_error", 3: "client_error", 5: "client_error" };
const RCODE: Record<number, string> = { 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED" };

const response = (id: number, e: Expected, bytes: number, truncated = false): Partial<L7Message> => ({
  kind: "response",
  key: id,
  code: e.rcode,
  status: STATUS[e.rcode] as L7Message["status"],
  ...(e.rcode !== 0 ? { exception: RCODE[e.rcode] } : {}),
  endpoint: e.name,
  bytes,
  attributes: {
    "dns.question.name": e.name,
    "dns.answers": e.answers,
    ...(truncated ? { "kalman.truncated": true } : {}),
  },
});

const UDP_CASES: Array<[UdpName, Expected]> = [
  ["udpA", { type: "A", name: "kalman.test", rcode: 0, answers: 1 }],
  ["udpAaaa", { type: "AAAA", name: "kalman.test", rcode: 5, answers: 0 }],
  ["udpNxdomain", { type: "A", name: "nope.kalman.invalid", rcode: 3, answers: 0 }],
  ["udpMx", { type: "MX", name: "kalman.test", rcode: 0, answers: 1 }],
  ["udpTxt", { type: "TXT", name: "info.kalman.test", rcode: 0, answers: 1 }],
  ["udpCname", { type: "CNAME", name: "alias.kalman.test", rcode: 0, answers: 1 }],
  ["udpSrv", { type: "SRV", name: "_http._tcp.kalman.test", rcode: 0, answers: 1 }],
  ["udpPtr", { type: "PTR", name: "10.0.18.198.in-addr.arpa", rcode: 0, answers: 1 }],
  ["udpMixedCase", { type: "A", name: "kalman.test", rcode: 0, answers: 1 }],
  ["udpHttps", { type: "HTTPS", name: "kalman.test", rcode: 5, answers: 0 }],
  ["udpTruncated", { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 10 }],
  ["udpServfail", { type: "A", name: "x.servfail.test", rcode: 2, answers: 0 }],
];

const TCP_A: Expected = { type: "A", name: "kalman.test", rcode: 0, answers: 1 };
const TCP_KEEPOPEN: Array<Partial<L7Message>> = [
  request(0x6aaa, TCP_A, 54),
  response(0x6aaa, TCP_A, 58),
  request(0xdba9, { type: "A", name: "nope.kalman.invalid", rcode: 3, answers: 0 }, 62),
  response(0xdba9, { type: "A", name: "nope.kalman.invalid", rcode: 3, answers: 0 }, 50),
  request(0x568f, { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 16 }, 58),
  response(0x568f, { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 16 }, 1845),
  request(0x28db, { type: "A", name: "alias.kalman.test", rcode: 0, answers: 1 }, 60),
  response(0x28db, { type: "A", name: "alias.kalman.test", rcode: 0, answers: 1 }, 77),
];

const meta = (): ChunkMeta => ({ startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 });

describe("dns parser: UDP (dnsmasq + dig fixtures)", () => {
  it.each(UDP_CASES)("%s: query and response fields", (name, e) => {
    const [q, r] = udpChunks(name);
    const expected = [
      request(u16(q?.data, 0), e, q?.data.length ?? 0),
      response(u16(r?.data, 0), e, r?.data.length ?? 0),
    ];
    expect(fieldsOf(runParser(dns, udpChunks(name), UDP_OPTIONS))).toEqual(expected);
    // the same when the session is not told the transport (datagrams carry no TCP seq)
    const session = dns.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    for (const c of udpChunks(name)) session.feed(c.fromClient, c.data, 0, meta(), (m) => out.push(m));
    expect(fieldsOf(out)).toEqual(expected);
  });

  it("fills timing, thread and seq from the datagram's chunk", () => {
    const out = runParser(dns, udpChunks("udpA"), UDP_OPTIONS);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ startNs: 0, endNs: 500, tid: 100, tcpSeq: 1000, key: 0x0fe0 });
    expect(out[1]).toMatchObject({ startNs: 1000, endNs: 1500, tid: 101, tcpSeq: 5000, key: 0x0fe0 });
  });

  it("keeps no record data (addresses, TXT strings) in messages", () => {
    const all = JSON.stringify([
      ...runParser(dns, udpChunks("udpTxt"), UDP_OPTIONS),
      ...runParser(dns, tcpChunks("tcpKeepOpen")),
    ]);
    expect(all).not.toContain("v=kalman1");
    expect(all).not.toContain("kalman-large-record");
    expect(all).not.toContain("mail");
  });

  it("a datagram cut by the capture still gives the header and question", () => {
    const r = hex(udp.udpTruncated[1]);
    const out = runParser(dns, [{ fromClient: false, data: r.subarray(0, 100), missing: r.length - 100 }], UDP_OPTIONS);
    expect(fieldsOf(out)).toEqual([
      response(0xc555, { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 10 }, 1171, true),
    ]);
    // cut inside the question: the message is kept without a name
    const cutName = runParser(
      dns,
      [{ fromClient: true, data: hex(udp.udpA[0]).subarray(0, 16), missing: 36 }],
      UDP_OPTIONS,
    );
    expect(fieldsOf(cutName)).toEqual([
      { kind: "request", key: 0x0fe0, bytes: 52, attributes: { "kalman.truncated": true } },
    ]);
  });

  it("reads the extended RCODE from the OPT record", () => {
    const r = hex(udp.udpA[1]);
    // OPT is the last record: ... 00 | 00 29 | 04 d0 | EXT-RCODE ...; set EXT-RCODE = 1 -> BADVERS (16)
    r[r.length - 6] = 0x01;
    const out = runParser(dns, [{ fromClient: false, data: r }], UDP_OPTIONS);
    expect(out[0]).toMatchObject({ code: 16, status: "server_error", exception: "BADVERS" });
  });

  it("counts datagrams that are not DNS and goes on", () => {
    const session = dns.createSession(UDP_OPTIONS);
    const out: L7Message[] = [];
    const emit = (m: L7Message) => out.push(m);
    session.feed(true, text("GET / HTTP/1.1\r\n\r\n"), 0, meta(), emit);
    session.feed(true, new Uint8Array(5), 0, meta(), emit);
    session.feed(true, new Uint8Array(0), 40, meta(), emit);
    session.feed(true, hex(udp.udpA[0]), 0, meta(), emit);
    expect(out.map((m) => m.resource)).toEqual(["kalman.test"]);
    expect(session.stats.malformed).toBe(2);
    expect(session.stats.resyncBytes).toBe(18 + 5 + 40);
  });

  it("every prefix of each datagram parses without throwing", () => {
    for (const [name] of UDP_CASES) checkEveryPrefix(dns, udpChunks(name));
  });
});

describe("dns parser: TCP (dnsmasq + dig +tcp fixtures)", () => {
  it("dig +tcp: one query, one response, lengths include the prefix", () => {
    expect(fieldsOf(runParser(dns, tcpChunks("tcpA")))).toEqual([
      request(0xb5f5, TCP_A, 54),
      response(0xb5f5, TCP_A, 58),
    ]);
    const any: Expected = { type: "ANY", name: "kalman.test", rcode: 0, answers: 1 };
    expect(fieldsOf(runParser(dns, tcpChunks("tcpAny")))).toEqual([
      request(0x8fe6, any, 54),
      response(0x8fe6, any, 74),
    ]);
  });

  it("keep-open connection: four exchanges, a 1845-byte response", () => {
    const out = runParser(dns, tcpChunks("tcpKeepOpen"));
    expect(fieldsOf(out)).toEqual(TCP_KEEPOPEN);
    // seq of each message's first byte (the harness starts at 1000 / 5000)
    expect(out.map((m) => m.tcpSeq)).toEqual([1000, 5000, 1054, 5058, 1116, 5108, 1174, 6953]);
  });

  it("several messages per chunk (pipelined) give the same messages", () => {
    const segments = tcpChunks("tcpKeepOpen");
    const joined = (fromClient: boolean) =>
      Buffer.concat(segments.filter((c) => c.fromClient === fromClient).map((c) => c.data));
    const out = runParser(dns, [
      { fromClient: true, data: joined(true) },
      { fromClient: false, data: joined(false) },
    ]);
    expect(fieldsOf(out)).toEqual([0, 2, 4, 6, 1, 3, 5, 7].map((i) => TCP_KEEPOPEN[i]));
  });

  it("splits at every offset, byte by byte and every prefix", () => {
    for (const name of ["tcpA", "tcpAny"] as const) {
      checkSplitsEverywhere(dns, tcpChunks(name));
      checkByteByByte(dns, tcpChunks(name));
      checkEveryPrefix(dns, tcpChunks(name));
    }
    checkSplitsEverywhere(dns, tcpChunks("tcpKeepOpen"));
    checkByteByByte(dns, tcpChunks("tcpKeepOpen"));
  });

  it("a length prefix read apart (dnsmasq reads 2 bytes, then the message)", () => {
    const c = tcpChunks("tcpKeepOpen");
    const split: Chunk[] = [];
    for (const chunk of c) {
      if (chunk.fromClient)
        split.push({ ...chunk, data: chunk.data.subarray(0, 2) }, { ...chunk, data: chunk.data.subarray(2) });
      else split.push(chunk);
    }
    expect(fieldsOf(runParser(dns, split))).toEqual(TCP_KEEPOPEN);
    // inference ignored the lone prefix: the session first sees a message without it, whose prefix
    // still counts in bytes and seq (the harness gives that chunk seq 1000)
    const out = runParser(dns, split.slice(1));
    expect(fieldsOf(out)).toEqual(TCP_KEEPOPEN);
    expect(out[0]?.tcpSeq).toBe(998);
  });

  it("skips bytes the capture missed inside a message, then goes on", () => {
    const c = tcpChunks("tcpKeepOpen");
    const big = c[5] as Chunk;
    c[5] = { fromClient: false, data: big.data.subarray(0, 1024), missing: big.data.length - 1024 };
    const out = runParser(dns, c);
    const expected = TCP_KEEPOPEN.map((m) => ({ ...m }));
    expected[5] = response(0x568f, { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 16 }, 1845, true);
    expect(fieldsOf(out)).toEqual(expected);
  });

  it("resynchronises after a gap that runs past the message", () => {
    const c = tcpChunks("tcpKeepOpen");
    const session = dns.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    const emit = (m: L7Message) => out.push(m);
    // the first query with 10 more uncaptured bytes than it has: lost place until the next message
    const q = (c[0] as Chunk).data;
    session.feed(true, q.subarray(0, 20), q.length - 20 + 10, meta(), emit);
    session.feed(true, new Uint8Array(7), 0, meta(), emit); // tail of something we cannot frame
    session.feed(true, (c[2] as Chunk).data, 0, meta(), emit);
    expect(out.map((m) => [m.key, m.attributes?.["kalman.truncated"] === true])).toEqual([
      [0x6aaa, true],
      [0xdba9, false],
    ]);
    expect(session.stats.resyncBytes).toBe(10 + 7);
    // a gap before any data
    session.feed(false, new Uint8Array(0), 100, meta(), emit);
    session.feed(false, (c[3] as Chunk).data, 0, meta(), emit);
    expect(out.at(-1)).toMatchObject({ kind: "response", key: 0xdba9, code: 3 });
  });

  it("counts a malformed length prefix and resynchronises at the next message", () => {
    const session = dns.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    const emit = (m: L7Message) => out.push(m);
    // the prefix split over two chunks: 5 is shorter than a header
    session.feed(true, hex("00"), 0, meta(), emit);
    session.feed(true, hex("05 0102030405 0011"), 0, meta(), emit);
    expect(session.stats.malformed).toBe(1);
    expect(session.stats.resyncBytes).toBe(7);
    // a whole chunk that cannot start a message
    session.feed(true, hex("0005 0102030405 0011"), 0, meta(), emit);
    session.feed(true, hex(tcp.tcpA[0]), 0, meta(), emit);
    expect(out.map((m) => m.endpoint)).toEqual(["kalman.test"]);
    expect(session.stats.malformed).toBe(1);
    expect(session.stats.resyncBytes).toBe(7 + 9);
  });

  it("rejects a framed message whose header is not DNS as soon as the header is in", () => {
    const session = dns.createSession(DEFAULT_SESSION);
    const out: L7Message[] = [];
    // a 4000-byte length, then an HTTP request: the header check fails at 12 bytes, nothing is held
    const bytes = Buffer.concat([hex("0fa0"), text("GET / HTTP/1.1\r\nHost: x\r\n")]);
    session.feed(true, bytes.subarray(0, 4), 0, meta(), (m) => out.push(m));
    expect(session.buffered()).toBe(2);
    session.feed(true, bytes.subarray(4), 0, meta(), (m) => out.push(m));
    expect(out).toEqual([]);
    expect(session.stats.malformed).toBe(1);
    expect(session.buffered()).toBe(0);
  });

  it("keeps only the first bytes of a message larger than the buffer bound", () => {
    const small = { ...DEFAULT_SESSION, maxBufferBytes: 64 };
    const c = tcpChunks("tcpKeepOpen");
    const bytes = c.flatMap((chunk) =>
      Array.from(chunk.data, (_, k) => ({ ...chunk, data: chunk.data.subarray(k, k + 1) })),
    );
    const out = runParser(dns, bytes, small);
    const expected = TCP_KEEPOPEN.map((m) => ({ ...m }));
    // the 1843- and 75-byte messages are cut to their first 64 bytes
    expected[5] = response(0x568f, { type: "TXT", name: "big.kalman.test", rcode: 0, answers: 16 }, 1845, true);
    expected[7] = response(0x28db, { type: "A", name: "alias.kalman.test", rcode: 0, answers: 1 }, 77, true);
    expect(fieldsOf(out)).toEqual(expected);
  });
});

describe("dns names", () => {
  const out: NameOut = { name: "" };

  it("follows compression pointers (the answer name of a recorded response)", () => {
    const r = hex(udp.udpA[1]);
    // header 12 + question "kalman.test" (13) + type/class (4): the answer's name is c0 0c
    expect(decodeName(r, 29, out)).toBe(31);
    expect(out.name).toBe("kalman.test");
    expect(decodeName(r, 12, out)).toBe(25);
  });

  it("root, cut names, loops, bad labels and the 255-byte cap", () => {
    expect(decodeName(hex("00"), 0, out)).toBe(1);
    expect(out.name).toBe(".");
    expect(decodeName(hex("066b616c6d61"), 0, out)).toBe(NAME_CUT);
    expect(decodeName(hex("03616263c0"), 0, out)).toBe(NAME_CUT);
    // a pointer to itself, a forward pointer, and a label + pointer back to it (a loop)
    expect(decodeName(hex("c000"), 0, out)).toBe(NAME_MALFORMED);
    expect(decodeName(hex("c00200"), 0, out)).toBe(NAME_MALFORMED);
    expect(decodeName(hex("03616263c000"), 0, out)).toBe(NAME_MALFORMED);
    expect(decodeName(hex("4161"), 0, out)).toBe(NAME_MALFORMED);
    // labels "abcd": 50 of them make 251 bytes on the wire (accepted), 51 make 256 (refused)
    const long = new Uint8Array(5 * 51 + 1);
    for (let i = 0; i < 51; i++) long.set([4, 0x61, 0x62, 0x63, 0x64], i * 5);
    expect(decodeName(long, 0, out)).toBe(NAME_MALFORMED);
    expect(decodeName(long.subarray(5), 0, out)).toBe(251);
    expect(out.name).toBe(Array(50).fill("abcd").join("."));
  });
});

describe("dns detect", () => {
  it("recorded queries and responses: Sure, and the QR bit tells the side", () => {
    for (const [name] of UDP_CASES) {
      expect(dns.detect(hex(udp[name][0]), undefined), name).toEqual({ confidence: Confidence.Sure, fromClient: true });
      expect(dns.detect(hex(udp[name][1]), undefined), name).toEqual({
        confidence: Confidence.Sure,
        fromClient: false,
      });
    }
    for (const name of ["tcpA", "tcpAny", "tcpKeepOpen"] as const) {
      tcp[name].forEach((h, i) => {
        expect(dns.detect(hex(h), i % 2 === 0)).toEqual({ confidence: Confidence.Sure, fromClient: i % 2 === 0 });
      });
    }
  });

  it("Maybe when the TCP length does not match the chunk, No for what cannot be DNS", () => {
    const q = hex(tcp.tcpA[0]);
    expect(dns.detect(q.subarray(0, 30), undefined).confidence).toBe(Confidence.Maybe);
    expect(dns.detect(Buffer.concat([q, q]), undefined).confidence).toBe(Confidence.Maybe);
    expect(dns.detect(q.subarray(0, 2), undefined).confidence).toBe(Confidence.No);
    // a query said to come from the server
    expect(dns.detect(hex(udp.udpA[0]), false).confidence).toBe(Confidence.No);
    expect(dns.detect(text("GET / HTTP/1.1\r\nHost: kalman.test\r\n\r\n"), true).confidence).toBe(Confidence.No);
    expect(dns.detect(new Uint8Array(64), undefined).confidence).toBe(Confidence.No);
    const notify = hex(udp.udpA[0]);
    notify[2] = 0x20; // opcode 4 (NOTIFY): not a standard query
    expect(dns.detect(notify, undefined).confidence).toBe(Confidence.No);
  });
});

describe("dns robustness", () => {
  it("random input and mutated fixtures: no throw, bounded, deterministic", () => {
    const fixtures: Chunk[][] = [
      ...UDP_CASES.map(([name]) => udpChunks(name)),
      tcpChunks("tcpA"),
      tcpChunks("tcpAny"),
      tcpChunks("tcpKeepOpen"),
    ];
    checkFuzz(dns, fixtures);
  });
});

describe("dns through the aggregator", () => {
  const view = (over: Partial<PayloadView> & { data: Uint8Array }): PayloadView => ({
    connId: 7,
    egress: true,
    role: 0,
    transport: "udp",
    startNs: 1_000,
    endNs: 2_000,
    bytes: over.data.length,
    tcpSeq: 0,
    seqValid: false,
    pid: 42,
    tid: 43,
    localPort: 40000,
    remotePort: 53,
    netns: 1,
    cgroupId: 1,
    payload: () => over.data,
    localAddr: () => "127.0.0.1",
    remoteAddr: () => "127.0.0.1",
    comm: () => "dig",
    ...over,
  });

  it("UDP client side: detected from the query, paired by transaction id", () => {
    const agg = new L7Aggregator({ parsers: [dns] });
    agg.ingest(view({ data: hex(udp.udpNxdomain[0]) }));
    agg.ingest(view({ data: hex(udp.udpNxdomain[1]), egress: false, startNs: 3_000, endNs: 4_000 }));
    const records = agg.takeRecords();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      protocol: "dns",
      transport: "udp",
      observationPoint: "client",
      requestType: "A",
      resource: "nope.kalman.invalid",
      status: "client_error",
      code: 3,
      exception: "NXDOMAIN",
      requestBytes: 60,
      responseBytes: 48,
      durationNs: 3_000,
      serverPort: 53,
      attributes: { "dns.question.name": "nope.kalman.invalid", "dns.answers": 0 },
    });
  });

  it("TCP server side: dnsmasq reads the 2-byte length one byte at a time, then the message", () => {
    const agg = new L7Aggregator({ parsers: [dns] });
    const server = { transport: "tcp" as const, role: 2, localPort: 53, remotePort: 40000, comm: () => "dnsmasq" };
    let seq = 100;
    const read = (data: Uint8Array) => {
      agg.ingest(view({ ...server, egress: false, data, tcpSeq: seq, seqValid: true }));
      seq += data.length;
    };
    const c = tcpChunks("tcpKeepOpen");
    for (let i = 0; i < c.length; i += 2) {
      const q = (c[i] as Chunk).data;
      read(q.subarray(0, 1));
      read(q.subarray(1, 2));
      read(q.subarray(2));
      agg.ingest(view({ ...server, egress: true, data: (c[i + 1] as Chunk).data }));
    }
    const records = agg.takeRecords();
    expect(
      records.map((r) => [
        r.resource,
        r.code,
        r.attributes?.["dns.answers"],
        r.observationPoint,
        r.requestBytes,
        r.reqTcpSeq,
      ]),
    ).toEqual([
      ["kalman.test", 0, 1, "server", 54, 100],
      ["nope.kalman.invalid", 3, 0, "server", 62, 154],
      ["big.kalman.test", 0, 16, "server", 58, 216],
      ["alias.kalman.test", 0, 1, "server", 60, 274],
    ]);
    expect(agg.stats()).toMatchObject({ malformed: 0, orphanResponses: 0 });
  });
});

function u16(b: Uint8Array | undefined, at: number): number {
  return b ? ((b[at] as number) << 8) | (b[at + 1] as number) : -1;
}
