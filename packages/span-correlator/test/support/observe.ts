// Observes real processes with the real eBPF receiver, the L7 aggregator and the span correlator.
import { SocketTracer } from "@kalman/ebpf-receiver";
import { L7Aggregator, type RequestRecord } from "@kalman/flow-aggregator";
import { type CorrelatorStats, SpanCorrelator } from "../../src/correlator.js";

export interface Linked {
  records: RequestRecord[];
  stats: CorrelatorStats;
  /** Records the kernel lost (ring full or stash full). */
  lost: number;
}

/** Runs `workload` while tracing `ports`; returns the records with their span links. Raw (unredacted) paths. */
export async function observeLinks(ports: number[], workload: () => Promise<unknown>, settleMs = 300): Promise<Linked> {
  const correlator = new SpanCorrelator();
  const agg = new L7Aggregator({ listener: correlator, redact: false });
  const tracer = SocketTracer.open({ ports, closeOnSignals: false });
  const records: RequestRecord[] = [];
  const pump = () => {
    for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) agg.ingestBatch(b);
    records.push(...agg.takeRecords());
  };
  const timer = setInterval(pump, 5);
  try {
    await workload();
    await new Promise((r) => setTimeout(r, settleMs));
    pump();
  } finally {
    clearInterval(timer);
    tracer.close();
  }
  const s = tracer.stats();
  return { records, stats: correlator.stats(), lost: s.lostRingFull + s.lostStashFull };
}
