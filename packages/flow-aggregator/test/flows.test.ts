import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FlowRecord } from "../src/index.js";
import {
  DecodedPacket,
  DecodeStatus,
  formatTimeline,
  LinkType,
  PacketAggregator,
  PacketDecoder,
  TcpTimeline,
} from "../src/index.js";
import { Conversation, ethernet, frame, frames, ipPacket, type TimedFrame, vxlan } from "./support/frames.js";

const MS = 1e6;

function run(list: TimedFrame[], options: ConstructorParameters<typeof PacketAggregator>[0] = {}) {
  const agg = new PacketAggregator({ l7: false, ...options });
  agg.ingest(frames(list));
  agg.flush();
  return { agg, records: agg.takeFlowRecords() };
}

function only(records: FlowRecord[]): FlowRecord {
  expect(records).toHaveLength(1);
  return records[0] as FlowRecord;
}

describe("packet decoder", () => {
  it("decodes IPv4 TCP with handshake options", () => {
    const d = new PacketDecoder();
    const p = new DecodedPacket();
    const f = frame({
      src: "198.18.0.1",
      dst: "198.18.0.2",
      sport: 40000,
      dport: 80,
      flags: "S",
      seq: 0xfffffff0,
      options: [2, 4, 0x05, 0xb4, 3, 3, 7, 4, 2],
    });
    expect(d.decode(f, 0, f.length, LinkType.ethernet, p)).toBe(DecodeStatus.ok);
    expect([p.family, p.protocol, p.srcPort, p.dstPort, p.seq, p.tcpFlags]).toEqual([4, 6, 40000, 80, 0xfffffff0, 2]);
    expect([p.mss, p.windowScale, p.sackPermitted]).toEqual([1460, 7, true]);
    expect(p.src0).toBe(0xc6120001);
  });

  it("decodes IPv6, VLAN tags and VXLAN's inner packet", () => {
    const d = new PacketDecoder();
    const p = new DecodedPacket();
    const v6 = frame({ src: "fd00::1", dst: "fd00::2", sport: 1234, dport: 53, udp: true, payload: "abc" });
    expect(d.decode(v6, 0, v6.length, LinkType.ethernet, p)).toBe(DecodeStatus.ok);
    expect([p.family, p.protocol, p.dst3, p.payloadBytes]).toEqual([6, 17, 2, 3]);

    const tagged = frame({ src: "198.18.0.1", dst: "198.18.0.2", sport: 1, dport: 2, vlan: 42 });
    expect(d.decode(tagged, 0, tagged.length, LinkType.ethernet, p)).toBe(DecodeStatus.ok);
    expect(p.vlanId).toBe(42);

    const inner = frame({
      src: "198.19.0.1",
      dst: "198.19.0.2",
      sport: 5555,
      dport: 6379,
      flags: "PA",
      payload: "PING\r\n",
    });
    const outer = vxlan(inner, 77, "198.18.0.1", "198.18.0.2");
    expect(d.decode(outer, 0, outer.length, LinkType.ethernet, p)).toBe(DecodeStatus.ok);
    expect([p.vni, p.srcPort, p.dstPort, p.payloadBytes, p.src0]).toEqual([77, 5555, 6379, 6, 0xc6130001]);
  });

  it("reads raw IP and Linux cooked captures", () => {
    const d = new PacketDecoder();
    const p = new DecodedPacket();
    const ip = Uint8Array.from(ipPacket({ src: "198.18.0.1", dst: "198.18.0.2", sport: 9, dport: 10, udp: true }));
    expect(d.decode(ip, 0, ip.length, LinkType.raw, p)).toBe(DecodeStatus.ok);
    const sll = Uint8Array.from([0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00, ...ip]);
    expect(d.decode(sll, 0, sll.length, LinkType.linuxSll, p)).toBe(DecodeStatus.ok);
    expect(p.dstPort).toBe(10);
  });

  it("counts bad headers and truncation instead of throwing", () => {
    const d = new PacketDecoder();
    const p = new DecodedPacket();
    const good = frame({ src: "198.18.0.1", dst: "198.18.0.2", sport: 1, dport: 2, flags: "PA", payload: "xyz" });
    const badIhl = good.slice();
    badIhl[14] = 0x43;
    expect(d.decode(badIhl, 0, badIhl.length, LinkType.ethernet, p)).toBe(DecodeStatus.malformed);
    const badOffset = good.slice();
    badOffset[14 + 20 + 12] = 0x20; // data offset 2 words
    expect(d.decode(badOffset, 0, badOffset.length, LinkType.ethernet, p)).toBe(DecodeStatus.malformed);
    const badLength = good.slice();
    badLength[16] = 0;
    badLength[17] = 10; // total length shorter than the header
    expect(d.decode(badLength, 0, badLength.length, LinkType.ethernet, p)).toBe(DecodeStatus.malformed);
    expect(d.decode(good, 0, 30, LinkType.ethernet, p)).toBe(DecodeStatus.truncated);
    const arp = ethernet([0, 1, 8, 0]);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(d.decode(arp, 0, arp.length, LinkType.ethernet, p)).toBe(DecodeStatus.notTcpUdp);
    expect(d.counters).toMatchObject({ malformed: 3, truncated: 1, notTcpUdp: 1 });
  });

  it("never throws on random or mutated frames, and the flow table stays bounded", () => {
    const seed = frame({
      src: "198.18.0.1",
      dst: "198.18.0.2",
      sport: 40000,
      dport: 80,
      flags: "PA",
      payload: "GET / HTTP/1.1\r\n\r\n",
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 120 }),
            fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, v]) => {
              const m = seed.slice();
              m[i] = v;
              return m;
            }),
          ),
          { maxLength: 40 },
        ),
        (list) => {
          const agg = new PacketAggregator({ flows: { maxFlows: 8 } });
          agg.ingest(frames(list.map((bytes, i) => ({ ns: i * MS, bytes }))));
          agg.flush();
          const s = agg.stats();
          expect(s.flows.flows).toBe(0);
          expect(s.decode.frames).toBe(list.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("flow table", () => {
  it("measures the handshake and picks the client from it", () => {
    const c = new Conversation()
      .handshake(1, 2)
      .send("c", 1, "PA", "hello")
      .send("s", 4, "A")
      .send("s", 1, "PA", "world");
    const r = only(run(c.out).records);
    expect(r).toMatchObject({
      transport: "tcp",
      clientAddr: "198.18.0.1",
      clientPort: 40000,
      serverAddr: "198.18.0.2",
      serverPort: 80,
      directionFrom: "handshake",
      rttServerNs: 1 * MS,
      rttClientNs: 2 * MS,
      rttNs: 3 * MS,
      packetsTx: 3,
      packetsRx: 3,
      payloadTx: 5,
      payloadRx: 5,
      synCount: 1,
      synAckCount: 1,
      closeType: "flushed",
      newFlow: true,
    });
    expect(r.srt).toEqual({ sumNs: 4 * MS, count: 1, maxNs: 4 * MS });
    expect(r.art).toEqual({ sumNs: 5 * MS, count: 1, maxNs: 5 * MS });
  });

  it("takes the client from a SYN-ACK when the SYN was not seen, and from ports without a handshake", () => {
    const c = new Conversation();
    c.send("c", 0, "S");
    const late = new Conversation().send("s", 0, "SA").send("c", 1, "A");
    expect(only(run(late.out).records)).toMatchObject({ clientPort: 40000, directionFrom: "handshake" });
    const mid = new Conversation().send("s", 0, "PA", "response first");
    expect(only(run(mid.out).records)).toMatchObject({ clientPort: 40000, serverPort: 80, directionFrom: "ports" });
  });

  it("counts retransmissions, out-of-order segments, lost segments and keep-alives like tshark", () => {
    const c = new Conversation().handshake();
    const s0 = c.seq("c");
    c.send("c", 1, "PA", "aaaa"); // seq s0
    c.send("c", 300, "PA", "aaaa", { seq: s0 }); // RTO retransmission
    // a hole: segment 2 skipped, segment 3 arrives, segment 2 arrives right after (out of order)
    c.send("c", 1, "PA", "bbbb", { seq: s0 + 8 });
    c.send("c", 0.1, "PA", "cccc", { seq: s0 + 4 });
    // a hole filled much later: a retransmission
    c.send("c", 1, "PA", "dddd", { seq: s0 + 16 });
    c.send("c", 200, "PA", "eeee", { seq: s0 + 12 });
    // keep-alive: one byte below the next expected seq
    c.send("c", 1000, "A", "", { seq: s0 + 19 });
    const r = only(run(c.out).records);
    expect(r.retransTx).toBe(2);
    expect(r.outOfOrderTx).toBe(1);
    expect(r.lostTx).toBe(2);
    expect(r.retransRx).toBe(0);
  });

  it("counts zero windows and resets by side", () => {
    const c = new Conversation().handshake().send("s", 1, "A", "", { window: 0 }).send("s", 1, "A", "", { window: 0 });
    c.send("c", 1, "RA");
    const r = only(run(c.out).records);
    expect(r).toMatchObject({ zeroWindowRx: 2, zeroWindowTx: 0, rstClient: 1, rstServer: 0, closeType: "client_rst" });
  });

  it("reports establishment failures", () => {
    const refused = new Conversation().send("c", 0, "S").send("s", 0.05, "RA");
    expect(only(run(refused.out).records)).toMatchObject({
      closeType: "connection_refused",
      establishFailure: "connection_refused",
      rstServer: 1,
    });
    const unanswered = new Conversation().send("c", 0, "S").send("c", 1000, "S", "", { seq: 1000 });
    const r = only(run(unanswered.out).records);
    expect(r).toMatchObject({ closeType: "server_syn_miss", establishFailure: "server_syn_miss", synCount: 2 });
    expect(r.retransTx).toBe(1); // the repeated SYN
    const noAck = new Conversation().send("c", 0, "S").send("s", 1, "SA");
    expect(only(run(noAck.out).records)).toMatchObject({
      closeType: "client_ack_miss",
      establishFailure: "client_ack_miss",
    });
  });

  it("closes on timeouts with the right close type, and reports live flows periodically", () => {
    const c = new Conversation().handshake().send("c", 1, "PA", "x").send("s", 1, "PA", "y");
    const agg = new PacketAggregator({ l7: false, flows: { reportIntervalMs: 2500, establishedTimeoutMs: 10_000 } });
    agg.ingest(frames(c.out));
    agg.tick(c.t + 2600 * MS); // periodic report
    const first = agg.takeFlowRecords();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ closed: false, newFlow: true, packetsTx: 3, packetsRx: 2 });
    c.send("c", 2000, "FA").send("s", 1, "FA").send("c", 1, "A");
    agg.ingest(frames(c.out.slice(-3)));
    agg.tick(c.t + 1000 * MS); // within the closing wait: still open
    expect(agg.takeFlowRecords()).toHaveLength(0);
    agg.tick(c.t + 3000 * MS);
    const last = agg.takeFlowRecords();
    expect(last).toHaveLength(1);
    expect(last[0]).toMatchObject({
      closed: true,
      closeType: "fin",
      newFlow: false,
      packetsTx: 2,
      packetsRx: 1,
      totalPacketsTx: 5,
      totalPacketsRx: 3,
      finClient: 1,
      finServer: 1,
    });
    expect(agg.stats().flows.flows).toBe(0);

    const idle = new Conversation().handshake();
    const t2 = new PacketAggregator({ l7: false, flows: { establishedTimeoutMs: 5000 } });
    t2.ingest(frames(idle.out));
    t2.tick(idle.t + 4000 * MS);
    expect(t2.takeFlowRecords()).toHaveLength(0);
    t2.tick(idle.t + 6000 * MS);
    expect(t2.takeFlowRecords()[0]).toMatchObject({ closeType: "timeout" });
  });

  it("keeps separate flows per observation point, VLAN and VXLAN id, and evicts the oldest past the bound", () => {
    const base = { src: "198.18.0.1", dst: "198.18.0.2", sport: 40000, dport: 80, flags: "PA", payload: "x" };
    const list: TimedFrame[] = [
      { ns: 1, bytes: frame(base), interfaceId: 1 },
      { ns: 2, bytes: frame(base), interfaceId: 2 },
      { ns: 3, bytes: frame({ ...base, vlan: 7 }), interfaceId: 1 },
      { ns: 4, bytes: vxlan(frame(base), 9, "198.18.1.1", "198.18.1.2"), interfaceId: 1 },
      {
        ns: 5,
        bytes: frame({ ...base, src: "198.18.0.2", dst: "198.18.0.1", sport: 80, dport: 40000 }),
        interfaceId: 1,
      },
    ];
    const { agg, records } = run(list, {
      flows: { describeObservation: (id) => ({ interface: `veth${id}`, netns: "4026531840" }) },
    });
    expect(agg.stats().flows.flowsCreated).toBe(4);
    const plain = records.find((r) => r.interface === "veth1" && r.vlanId === undefined && r.vni === undefined);
    expect(plain).toMatchObject({ packetsTx: 1, packetsRx: 1, netns: "4026531840" });
    expect(records.find((r) => r.vni === 9)).toMatchObject({ clientAddr: "198.18.0.1", serverPort: 80 });

    const many: TimedFrame[] = [];
    for (let i = 0; i < 100; i++) many.push({ ns: i, bytes: frame({ ...base, sport: 10000 + i }) });
    const bounded = new PacketAggregator({ l7: false, flows: { maxFlows: 10 } });
    bounded.ingest(frames(many));
    expect(bounded.stats().flows).toMatchObject({ flows: 10, flowsEvicted: 90 });
    const evicted = bounded.takeFlowRecords();
    expect(evicted.every((r) => r.closeType === "evicted")).toBe(true);
    expect(evicted[0]?.clientPort).toBe(10000); // least recently seen goes first
  });

  it("tracks UDP flows and IPv6", () => {
    const q = frame({ src: "fd00::1", dst: "fd00::53", sport: 45000, dport: 53, udp: true, payload: "q" });
    const a = frame({ src: "fd00::53", dst: "fd00::1", sport: 53, dport: 45000, udp: true, payload: "answer" });
    const r = only(
      run([
        { ns: 0, bytes: q },
        { ns: 2 * MS, bytes: a },
      ]).records,
    );
    expect(r).toMatchObject({
      transport: "udp",
      clientAddr: "fd00::1",
      serverAddr: "fd00::53",
      serverPort: 53,
      payloadRx: 6,
    });
  });
});

describe("L7 from packets", () => {
  it("parses HTTP from both directions of a flow, with retransmissions fed once", () => {
    const c = new Conversation().handshake();
    c.send("c", 1, "PA", "GET /items/42 HTTP/1.1\r\nHost: shop\r\n");
    const s0 = c.seq("c");
    c.send("c", 0.1, "PA", "\r\n");
    c.send("c", 300, "PA", "\r\n", { seq: s0 }); // retransmitted tail
    const body = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno";
    c.send("s", 2, "PA", body);
    const agg = new PacketAggregator({
      flows: { describeObservation: () => ({ interface: "veth-srv", netns: "4026532000" }) },
    });
    agg.ingest(frames(c.out));
    agg.tick(c.t);
    const recs = agg.takeRequestRecords();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({
      protocol: "http1",
      requestType: "GET",
      resource: "/items/42",
      code: 404,
      status: "client_error",
      observationPoint: "network",
      interface: "veth-srv",
      netns: 4026532000,
      clientAddr: "198.18.0.1",
      clientPort: 40000,
      serverAddr: "198.18.0.2",
      serverPort: 80,
      pid: 0,
    });
    expect(agg.stats().l7DuplicateBytes).toBe(2);
  });
});

describe("TCP reassembly for L7", () => {
  it("holds segments that arrive after a hole and feeds them in order once it fills", () => {
    const c = new Conversation().handshake();
    const s0 = c.seq("c");
    const parts = ["GET /orders/7", " HTTP/1.1\r\nHost: s", "hop\r\n\r\n"];
    const at = [0, parts[0]?.length ?? 0, (parts[0]?.length ?? 0) + (parts[1]?.length ?? 0)];
    c.send("c", 1, "PA", parts[0], { seq: s0 });
    c.send("c", 0.1, "PA", parts[2], { seq: s0 + (at[2] as number) }); // arrives before the middle one
    c.send("c", 0.1, "PA", parts[1], { seq: s0 + (at[1] as number) });
    c.send("s", 1, "PA", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {});
    const agg = new PacketAggregator();
    agg.ingest(frames(c.out));
    agg.tick(c.t);
    expect(agg.takeRequestRecords()).toMatchObject([
      { requestType: "GET", resource: "/orders/7", domain: "shop", code: 200 },
    ]);
    expect(agg.stats()).toMatchObject({ l7HeldSegments: 1, l7Reordered: 1, l7HolesGivenUp: 0 });
    expect(agg.l7?.stats().gapBytes).toBe(0);
  });

  it("gives up on a hole that never fills: the parsers see missing bytes, nothing is held past the bound", () => {
    const c = new Conversation().handshake();
    const s0 = c.seq("c");
    c.send("c", 1, "PA", "GET /a HTTP/1.1\r\n\r\n", { seq: s0 });
    for (let i = 0; i < 40; i++) c.send("c", 0.1, "PA", "x".repeat(100), { seq: s0 + 1000 + i * 100 });
    const agg = new PacketAggregator();
    agg.ingest(frames(c.out));
    const s = agg.stats();
    expect(s.l7HeldSegments).toBe(33); // the 33rd exceeds the bound: the hole is given up, later segments are in order
    expect(s.l7HolesGivenUp).toBe(1);
    expect(s.l7Reordered).toBe(32); // the rest of the held run, in order after the hole
    agg.flush();
    expect(agg.l7?.stats().gapBytes).toBeGreaterThan(0);
  });
});

describe("TCP header timeline", () => {
  it("lists a connection's headers with relative seq/ack, flags, windows and options", () => {
    const c = new Conversation(undefined, undefined, { client: 2_000_000_000, server: 4_294_967_000 });
    c.send("c", 0, "S", "", { options: [2, 4, 0xff, 0xd7, 4, 2, 3, 3, 7] });
    c.send("s", 0.025, "SA", "", { options: [2, 4, 0xff, 0xd7, 4, 2, 3, 3, 7] });
    c.send("c", 0.011, "A", "", { window: 342 });
    c.send("c", 0.166, "PA", "x".repeat(261), { window: 342 });
    c.send("s", 0.014, "A", "", { window: 350 });
    const timeline = new TcpTimeline();
    const d = new PacketDecoder();
    const p = new DecodedPacket();
    for (const f of c.out) {
      expect(d.decode(f.bytes, 0, f.bytes.length, LinkType.ethernet, p)).toBe(DecodeStatus.ok);
      timeline.add(p, f.bytes, f.ns, "eth0");
    }
    const rows = timeline.rows();
    expect(rows.map((r) => [r.flags, r.seq, r.ack, r.payload, r.fromClient])).toEqual([
      ["SYN", 0, 0, 0, true],
      ["SYN, ACK", 0, 1, 0, false],
      ["ACK", 1, 1, 0, true],
      ["PSH, ACK", 1, 1, 261, true],
      ["ACK", 1, 262, 0, false],
    ]);
    expect(rows[0]?.options).toBe("MSS=65495, SACK_PERM, WS=7");
    expect(rows[3]?.timeNs).toBe(202_000);
    const text = formatTimeline(rows);
    expect(text.split("\n")).toHaveLength(6);
    expect(text).toMatch(/^#\s+time \(s\)/);
    expect(text).toContain("0.000202");
  });
});
