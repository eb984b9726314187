// End-to-end support: trace real processes with the real receiver and turn what it saw into records.

import { type ReceiverStats, receiverPreflight, SocketTracer, type SocketTracerOptions } from "@kalman/ebpf-receiver";
import { describePrivileged as describeWithChecks } from "@kalman/examples";
import { L7Aggregator, type L7AggregatorOptions, type L7Stats } from "../../src/aggregator.js";
import type { RequestRecord } from "../../src/types.js";

export function describePrivileged(name: string, body: () => void): void {
  describeWithChecks(name, receiverPreflight, body);
}

export interface Observed {
  records: RequestRecord[];
  stats: L7Stats;
  receiver: ReceiverStats;
}

export interface ObserveOptions extends L7AggregatorOptions {
  /** Ports to trace (a server's port: both its sides are seen). */
  ports: number[];
  /** Payload bytes captured per syscall (default 1024). */
  captureBytes?: number;
  /** Wait after the workload before the last drain (default 200 ms). */
  settleMs?: number;
  /** TLS plaintext capture (the receiver's default: on). */
  tls?: SocketTracerOptions["tls"];
}

/**
 * Runs `workload` while the socket tracer watches `ports`, feeding every batch into an
 * L7Aggregator as it arrives; returns the records (after closing pending connections
 * is NOT forced: only what the traffic itself completed).
 */
export async function observe(options: ObserveOptions, workload: () => Promise<unknown>): Promise<Observed> {
  const { ports, captureBytes, settleMs, tls, ...aggOptions } = options;
  const tracer = SocketTracer.open({ ports, captureBytes: captureBytes ?? 1024, closeOnSignals: false, tls });
  const agg = new L7Aggregator(aggOptions);
  const records: RequestRecord[] = [];
  const pump = () => {
    for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) agg.ingestBatch(b);
    records.push(...agg.takeRecords());
  };
  const timer = setInterval(pump, 5);
  try {
    await workload();
    await new Promise((r) => setTimeout(r, settleMs ?? 200));
    pump();
    return { records, stats: agg.stats(), receiver: tracer.stats() };
  } finally {
    clearInterval(timer);
    tracer.close();
  }
}

/** Records seen at the server side only (each request is seen twice on loopback: client and server). */
export const serverSide = (records: RequestRecord[]) => records.filter((r) => r.observationPoint === "server");
export const clientSide = (records: RequestRecord[]) => records.filter((r) => r.observationPoint === "client");
