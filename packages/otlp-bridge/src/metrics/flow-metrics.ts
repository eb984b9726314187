// FlowRecords (L4 flows from packets) -> kalman.flow.* and kalman.tcp.* metrics.
import type { FlowRecord } from "@kalman/flow-aggregator";
import type { Attributes, Counter, Histogram, MeterProvider } from "@opentelemetry/api";
import { VERSION } from "../version.js";
import type { Attrs } from "./attributes.js";
import { SeriesLimiter } from "./recorder.js";
import { OVERFLOW_ATTRIBUTES } from "./semconv.js";

/** Seconds: handshake and response times on the network are µs to seconds. */
export const TCP_LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export interface FlowMetricsOptions {
  /** Distinct attribute sets per metric; the rest go to one overflow series (default 2000). */
  maxSeriesPerMetric?: number;
  /** Record client.address (default true; turn off on hosts with very many clients). */
  clientAddress?: boolean;
}

export interface FlowMetricsStats {
  records: number;
  /** Measurements sent to an overflow series by the series cap. */
  overflow: number;
}

const NS_PER_S = 1e9;

interface Capped<T> {
  inst: T;
  limiter: SeriesLimiter;
}

/**
 * L4 metrics from flow log records (one record per flow per report interval):
 *
 * - kalman.flow.bytes / kalman.flow.packets (counters; `kalman.flow.direction` client_to_server or server_to_client)
 * - kalman.flow.opened / kalman.flow.closed (counters; closed carries `kalman.flow.close_type`)
 * - kalman.tcp.rtt (histogram, s: the handshake RTT, once per flow)
 * - kalman.tcp.srt / kalman.tcp.art (histograms, s: each flow's mean over the interval)
 * - kalman.tcp.retransmits, kalman.tcp.zero_windows, kalman.tcp.out_of_order, kalman.tcp.lost_segments
 *   (counters, by direction), kalman.tcp.resets (by `kalman.tcp.reset_side`),
 *   kalman.tcp.connection_failures (by `kalman.tcp.establish_failure`)
 *
 * Attributes: network.transport, server.address, server.port, client.address, network.interface.name.
 */
export class FlowMetricsRecorder {
  private readonly counters: Record<string, Capped<Counter>>;
  private readonly histograms: Record<"rtt" | "srt" | "art", Capped<Histogram>>;
  private readonly clientAddress: boolean;
  private readonly counts = { records: 0, overflow: 0 };

  constructor(meterProvider: MeterProvider, options: FlowMetricsOptions = {}) {
    const meter = meterProvider.getMeter("kalman.network", VERSION);
    const max = Math.max(1, Math.floor(options.maxSeriesPerMetric ?? 2000));
    this.clientAddress = options.clientAddress !== false;
    const counter = (name: string, unit: string, description: string): Capped<Counter> => ({
      inst: meter.createCounter(name, { unit, description }),
      limiter: new SeriesLimiter(max),
    });
    const histogram = (name: string, description: string): Capped<Histogram> => ({
      inst: meter.createHistogram(name, {
        unit: "s",
        description,
        advice: { explicitBucketBoundaries: TCP_LATENCY_BUCKETS },
      }),
      limiter: new SeriesLimiter(max),
    });
    this.counters = {
      bytes: counter("kalman.flow.bytes", "By", "Frame bytes seen on the wire, by direction."),
      packets: counter("kalman.flow.packets", "{packet}", "Packets seen, by direction."),
      opened: counter("kalman.flow.opened", "{flow}", "Flows seen for the first time."),
      closed: counter("kalman.flow.closed", "{flow}", "Flows ended, by close type."),
      retransmits: counter("kalman.tcp.retransmits", "{segment}", "TCP segments sent again, by direction."),
      zeroWindows: counter(
        "kalman.tcp.zero_windows",
        "{segment}",
        "TCP segments advertising a zero window, by direction.",
      ),
      outOfOrder: counter(
        "kalman.tcp.out_of_order",
        "{segment}",
        "TCP segments that arrived out of order, by direction.",
      ),
      lost: counter(
        "kalman.tcp.lost_segments",
        "{segment}",
        "TCP segments the observation point never saw, by direction.",
      ),
      resets: counter("kalman.tcp.resets", "{segment}", "TCP RST segments, by the side that sent them."),
      failures: counter(
        "kalman.tcp.connection_failures",
        "{connection}",
        "TCP connections that never got established, by reason.",
      ),
    };
    this.histograms = {
      rtt: histogram("kalman.tcp.rtt", "TCP handshake round trip (SYN to ACK) at the observation point."),
      srt: histogram("kalman.tcp.srt", "Per flow and interval: mean time from data to the peer's pure ACK."),
      art: histogram(
        "kalman.tcp.art",
        "Per flow and interval: mean time from request data to the first response data.",
      ),
    };
  }

  /** Never throws. */
  record(records: readonly FlowRecord[]): void {
    for (const f of records) {
      this.counts.records++;
      const base: Attrs = {
        "network.transport": f.transport,
        "server.address": f.serverAddr,
        "server.port": f.serverPort,
        "network.interface.name": f.interface,
      };
      if (this.clientAddress) base["client.address"] = f.clientAddr;
      const c = this.counters;
      this.both(c.bytes as Capped<Counter>, base, f.bytesTx, f.bytesRx);
      this.both(c.packets as Capped<Counter>, base, f.packetsTx, f.packetsRx);
      if (f.newFlow) this.add(c.opened as Capped<Counter>, base, 1);
      if (f.closed)
        this.add(c.closed as Capped<Counter>, { ...base, "kalman.flow.close_type": f.closeType ?? "unknown" }, 1);
      if (f.transport !== "tcp") continue;
      this.both(c.retransmits as Capped<Counter>, base, f.retransTx, f.retransRx);
      this.both(c.zeroWindows as Capped<Counter>, base, f.zeroWindowTx, f.zeroWindowRx);
      this.both(c.outOfOrder as Capped<Counter>, base, f.outOfOrderTx, f.outOfOrderRx);
      this.both(c.lost as Capped<Counter>, base, f.lostTx, f.lostRx);
      if (f.rstClient)
        this.add(c.resets as Capped<Counter>, { ...base, "kalman.tcp.reset_side": "client" }, f.rstClient);
      if (f.rstServer)
        this.add(c.resets as Capped<Counter>, { ...base, "kalman.tcp.reset_side": "server" }, f.rstServer);
      if (f.establishFailure && f.closed) {
        this.add(c.failures as Capped<Counter>, { ...base, "kalman.tcp.establish_failure": f.establishFailure }, 1);
      }
      const h = this.histograms;
      if (f.newFlow && f.rttNs !== undefined) this.observe(h.rtt, base, f.rttNs / NS_PER_S);
      if (f.srt.count > 0) this.observe(h.srt, base, f.srt.sumNs / f.srt.count / NS_PER_S);
      if (f.art.count > 0) this.observe(h.art, base, f.art.sumNs / f.art.count / NS_PER_S);
    }
  }

  stats(): FlowMetricsStats {
    return { ...this.counts };
  }

  private both(m: Capped<Counter>, base: Attrs, tx: number, rx: number): void {
    if (tx > 0) this.add(m, { ...base, "kalman.flow.direction": "client_to_server" }, tx);
    if (rx > 0) this.add(m, { ...base, "kalman.flow.direction": "server_to_client" }, rx);
  }

  private add(m: Capped<Counter>, attrs: Attrs, value: number): void {
    m.inst.add(value, this.capped(m, attrs));
  }

  private observe(m: Capped<Histogram>, attrs: Attrs, seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) m.inst.record(seconds, this.capped(m, attrs));
  }

  private capped(m: Capped<unknown>, attrs: Attrs): Attributes {
    if (m.limiter.admit(attrs)) return attrs;
    this.counts.overflow++;
    return OVERFLOW_ATTRIBUTES;
  }
}
