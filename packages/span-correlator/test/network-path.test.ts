import type { RequestRecord } from "@kalman/flow-aggregator";
import { describe, expect, it } from "vitest";
import { MonotonicClock } from "../src/clock.js";
import { NETWORK_OBSERVER, NetworkPathJoiner } from "../src/network-path.js";
import type { Span } from "../src/types.js";

const clock = new MonotonicClock();

function record(over: Partial<RequestRecord>): RequestRecord {
  return {
    protocol: "http1",
    requestType: "GET",
    resource: "/items",
    endpoint: "/items",
    status: "ok",
    code: 200,
    startNs: 1_000,
    endNs: 2_000,
    durationNs: 1_000,
    requestBytes: 40,
    responseBytes: 60,
    reqTcpSeq: 777,
    pid: 1,
    reqTid: 1,
    comm: "x",
    observationPoint: "server",
    transport: "tcp",
    clientAddr: "198.18.0.1",
    clientPort: 40000,
    serverAddr: "198.18.0.2",
    serverPort: 80,
    connId: 1,
    netns: 0,
    cgroupId: 0,
    ...over,
  } as RequestRecord;
}

function span(kind: Span["kind"], spanId: string, parentSpanId?: string): Span {
  return {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId,
    parentSpanId,
    name: "GET /items",
    kind,
    start: [0, 0],
    end: [0, 1],
    durationNs: 1,
    status: { code: "unset" },
    attributes: {},
    service: { serviceName: kind, attributes: {} },
  };
}

const net = (iface: string, startNs: number, seq = 777) =>
  record({ observationPoint: "network", interface: iface, startNs, endNs: startNs + 500, pid: 0, reqTcpSeq: seq });

describe("NetworkPathJoiner", () => {
  it("chains the interfaces a request crossed, in time order, between the client span and the server span", () => {
    const j = new NetworkPathJoiner(clock, { holdMs: 100 });
    const client = span("client", "c000000000000001");
    const server = span("server", "5000000000000001", client.spanId);
    j.addNetwork([net("p-b", 1_300), net("p-a", 1_200)], 0);
    j.addSpans([server, client], [record({}), record({ observationPoint: "client" })], 10);
    expect(j.release(50)).toEqual([]); // still held
    const out = j.release(120);
    const hops = out.filter((s) => s.kind === "internal");
    expect(hops.map((s) => s.attributes["network.interface.name"])).toEqual(["p-a", "p-b"]);
    expect(hops[0]?.parentSpanId).toBe(client.spanId);
    expect(hops[1]?.parentSpanId).toBe(hops[0]?.spanId);
    expect(server.parentSpanId).toBe(hops[1]?.spanId);
    expect(client.parentSpanId).toBeUndefined();
    expect(hops.every((s) => s.traceId === client.traceId && s.service === NETWORK_OBSERVER)).toBe(true);
    expect(hops[0]?.attributes).toMatchObject({ "kalman.observation_point": "network", "http.request.method": "GET" });
    expect(out).toHaveLength(4);
    expect(j.stats()).toMatchObject({ joined: 2, unclaimed: 0, held: 0 });
  });

  it("hangs the path under a client span whose server is not observed, and never joins another request's hops", () => {
    const j = new NetworkPathJoiner(clock, { holdMs: 0 });
    const client = span("client", "c000000000000002");
    j.addNetwork([net("eth0", 1_100), net("eth0", 5_000, 999)], 0);
    j.addSpans([client], [record({ observationPoint: "client" })], 0);
    const out = j.release(1);
    const mine = out.filter((s) => s.kind === "internal" && s.parentSpanId === client.spanId);
    expect(mine).toHaveLength(1);
    // the other request's hop (seq 999): no socket span claims it, so it is its own trace
    const all = j.release(10, true);
    const other = all.find((s) => s.kind === "internal");
    expect(other?.traceId).not.toBe(client.traceId);
    expect(other?.parentSpanId).toBeUndefined();
    expect(j.stats()).toMatchObject({ joined: 1, unclaimed: 1 });
  });

  it("stays bounded: the oldest waiting hops are dropped and counted", () => {
    const j = new NetworkPathJoiner(clock, { maxNetworkRecords: 10 });
    for (let i = 0; i < 25; i++) j.addNetwork([net("eth0", i, 1000 + i)], 0);
    expect(j.stats().dropped).toBe(15);
    expect(j.release(1e9, true).length).toBe(10);
  });
});
