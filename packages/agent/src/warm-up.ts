import { Direction, EventBatchWriter, SocketRole } from "@kalman/ebpf-receiver";
import { L7Aggregator, type RequestRecord } from "@kalman/flow-aggregator";
import { warmUpEncoders } from "@kalman/otlp-bridge";
import { MonotonicClock, recordToSpan, ServiceResolver, type Span, SpanCorrelator } from "@kalman/span-correlator";

const CONNECTIONS = 64;
const EVENTS_PER_BATCH = 1024;

/**
 * Synthetic HTTP/1 keep-alive traffic, both ends of each request in the kernel's record layout, run
 * through throwaway copies of the agent's stages: cursor, parser, correlator, spans, and the OTLP
 * encoders. Started cold, the agent needs about a second of a 20k req/s load to compile them, and
 * its sinks overflow meanwhile; after this, the first real burst meets compiled code. Nothing is
 * kept, sent or counted. Returns the requests the stages recorded (two per synthetic request).
 */
export function warmUp(requests = 1000): number {
  const correlator = new SpanCorrelator();
  const aggregator = new L7Aggregator({ listener: correlator });
  const clock = new MonotonicClock();
  const services = new ServiceResolver();
  const writer = new EventBatchWriter(1 << 20);
  const pid = process.pid;
  let ns = Number(process.hrtime.bigint());
  let recorded = 0;
  const spans: Span[] = [];
  const records: RequestRecord[] = [];
  const flush = () => {
    aggregator.ingestBatch(writer.batch());
    writer.reset();
    for (const r of aggregator.takeRecords()) {
      recorded++;
      records.push(r);
      const s = recordToSpan(r, clock, services);
      if (s) spans.push(s);
    }
    if (records.length >= 2048) {
      warmUpEncoders(spans, records);
      spans.length = 0;
      records.length = 0;
    }
  };
  const response = Buffer.from(
    "HTTP/1.1 200 OK\r\nServer: kalman-warm-up\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n",
    "latin1",
  );
  /** One end of synthetic connection c: a client (connect) or server (accept) socket of this process. */
  const end = (c: number, role: SocketRole) => {
    const client = role === SocketRole.Client;
    return {
      sockId: (client ? 1 : 1001) + c,
      tgid: pid,
      tid: pid + (client ? 1 : 101) + c,
      role,
      saddr: "127.0.0.1",
      daddr: "127.0.0.1",
      sport: client ? 40000 + c : 8080,
      dport: client ? 8080 : 40000 + c,
      comm: "warm-up",
    };
  };
  for (let i = 0; i < requests; i++) {
    const c = i % CONNECTIONS;
    const round = Math.floor(i / CONNECTIONS);
    const request = Buffer.from(
      `GET /api/items/${i % 97} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kalman-warm-up\r\nAccept: */*\r\n\r\n`,
      "latin1",
    );
    const requestSeq = (1000 + c * 1_000_000 + round * 200) >>> 0;
    const responseSeq = (5000 + c * 1_000_000 + round * 300) >>> 0;
    const client = end(c, SocketRole.Client);
    const server = end(c, SocketRole.Server);
    const event = (
      side: ReturnType<typeof end>,
      afterNs: number,
      direction: Direction,
      tcpSeq: number,
      payload: Uint8Array,
    ) => writer.data({ ...side, enterNs: ns + afterNs, exitNs: ns + afterNs + 1000, direction, tcpSeq, payload });
    event(client, 0, Direction.Egress, requestSeq, request);
    event(server, 5000, Direction.Ingress, requestSeq, request);
    event(server, 20000, Direction.Egress, responseSeq, response);
    event(client, 25000, Direction.Ingress, responseSeq, response);
    ns += 50_000;
    if (((i + 1) * 4) % EVENTS_PER_BATCH === 0) flush();
  }
  flush();
  if (records.length) warmUpEncoders(spans, records);
  return recorded;
}
