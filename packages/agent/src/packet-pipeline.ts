import { PacketCapture, type PacketCaptureStats, type PacketCaptureTarget } from "@kalman/ebpf-receiver";
import {
  captureObservations,
  type FlowRecord,
  type L7AggregatorOptions,
  PacketAggregator,
  type PacketAggregatorStats,
  type RequestRecord,
} from "@kalman/flow-aggregator";

export interface PacketPipelineOptions {
  targets?: PacketCaptureTarget[];
  filter?: string;
  snapLen?: number;
  /** Flow log period of a live flow (default 60 s). */
  flowLogIntervalS?: number;
  /** Flow log records as they are produced (periodic and at close). */
  onFlows(records: FlowRecord[]): void;
  /** Parse L7 from the packets and hand the request records seen at each interface here (default: no L7). */
  onRequests?(records: RequestRecord[]): void;
  /** L7 options (protocols, redaction) when onRequests is set. */
  l7?: L7AggregatorOptions;
}

const NS_PER_S = 1e9;

/** Live packets -> L4 flow table -> flow records: AF_PACKET capture drained on the agent's loop. */
export class PacketPipeline {
  readonly capture: PacketCapture;
  readonly aggregator: PacketAggregator;
  private readonly onFlows: (records: FlowRecord[]) => void;
  private readonly onRequests: ((records: RequestRecord[]) => void) | undefined;
  private lastTickNs = 0;
  packets = 0;

  constructor(options: PacketPipelineOptions) {
    this.capture = PacketCapture.open({ targets: options.targets, filter: options.filter, snapLen: options.snapLen });
    this.aggregator = new PacketAggregator({
      // requests seen on the wire: network spans between the socket path's client and server spans
      l7: options.onRequests ? (options.l7 ?? {}) : false,
      flows: {
        describeObservation: captureObservations(this.capture),
        reportIntervalMs: (options.flowLogIntervalS ?? 60) * 1000,
      },
    });
    this.onFlows = options.onFlows;
    this.onRequests = options.onRequests;
  }

  /** Drains every capture handle; once a second, expires flows and emits flow records. */
  pump(): void {
    for (let b = this.capture.drain(); b; b = this.capture.drain()) {
      this.packets += b.count;
      this.aggregator.ingest(b.cursor());
    }
    if (this.onRequests) {
      const requests = this.aggregator.takeRequestRecords();
      if (requests.length) this.onRequests(requests);
    }
    const now = monotonicNs();
    if (now - this.lastTickNs >= NS_PER_S) {
      this.lastTickNs = now;
      this.aggregator.tick(now);
      this.emit();
    }
  }

  /** Final records for every open flow, then the capture sockets are closed. */
  close(): void {
    try {
      this.pump();
      this.aggregator.flush(monotonicNs());
      this.emit();
    } finally {
      this.capture.close();
    }
  }

  stats(): { capture: PacketCaptureStats; flows: PacketAggregatorStats } {
    return { capture: this.capture.stats(), flows: this.aggregator.stats() };
  }

  private emit(): void {
    const records = this.aggregator.takeFlowRecords();
    if (records.length) this.onFlows(records);
    if (this.onRequests) {
      const requests = this.aggregator.takeRequestRecords();
      if (requests.length) this.onRequests(requests);
    }
  }
}

/** CLOCK_MONOTONIC in ns: the packets' clock (process.hrtime reads the same clock). */
function monotonicNs(): number {
  const [s, ns] = process.hrtime();
  return s * NS_PER_S + ns;
}
