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
  for (let i = 0; i < requests; i++) {
    const c = i % CONNECTIONS;
    const round = Math.floor(i / CONNECTIONS);
    const request = Buffer.from(
      `GET /api/items/${i % 97} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: kalman-warm-up\r\nAccept: */*\r\n\r\n`,
      "latin1",
    );
    const response = Buffer.from(
      "HTTP/1.1 200 OK\r\nServer: kalman-warm-up\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n",
      "latin1",
    );
    const requestSeq = (1000 + c * 1_000_000 + round * 200) >>> 0;
    const responseSeq = (5000 + c * 1_000_000 + round * 300) >>> 0;
    const client = { sockId: 1 + c, tgid: pid, tid: pid + 1 + c, role: SocketRole.Client, comm: "warm-up" };
    const server = { sockId: 1001 + c, tgid: pid, tid: pid + 101 + c, role: SocketRole.Server, comm: "warm-up" };
    const ends = { saddr: "127.0.0.1", daddr: "127.0.0.1" };
    const clientPorts = { sport: 40000 + c, dport: 8080 };
    const serverPorts = { sport: 8080, dport: 40000 + c };
    const at = (d: number) => ({ enterNs: ns + d, exitNs: ns + d + 1000 });
    writer.data({
      ...client,
      ...ends,
      ...clientPorts,
      ...at(0),
      direction: Direction.Egress,
      tcpSeq: requestSeq,
      payload: request,
    });
    writer.data({
      ...server,
      ...ends,
      ...serverPorts,
      ...at(5000),
      direction: Direction.Ingress,
      tcpSeq: requestSeq,
      payload: request,
    });
    writer.data({
      ...server,
      ...ends,
      ...serverPorts,
      ...at(20000),
      direction: Direction.Egress,
      tcpSeq: responseSeq,
      payload: response,
    });
    writer.data({
      ...client,
      ...ends,
      ...clientPorts,
      ...at(25000),
      direction: Direction.Ingress,
      tcpSeq: responseSeq,
      payload: response,
    });
    ns += 50_000;
    if (((i + 1) * 4) % EVENTS_PER_BATCH === 0) flush();
  }
  flush();
  if (records.length) warmUpEncoders(spans, records);
  return recorded;
}
