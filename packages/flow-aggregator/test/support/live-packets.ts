// Live AF_PACKET capture into the packet path, for end-to-end tests.
import { PacketCapture, type PacketCaptureOptions } from "@kalman/ebpf-receiver";
import {
  captureObservations,
  type FlowRecord,
  PacketAggregator,
  type PacketAggregatorOptions,
} from "../../src/index.js";
import type { RequestRecord } from "../../src/types.js";

export interface Observed {
  flows: FlowRecord[];
  requests: RequestRecord[];
  aggregator: PacketAggregator;
  captureStats: ReturnType<PacketCapture["stats"]>;
}

/**
 * Captures while `during` runs (plus a short tail), feeding every drained batch to a
 * PacketAggregator; flushes the flow table at the end.
 */
export async function observePackets(
  capture: PacketCaptureOptions,
  during: () => Promise<void>,
  options: Omit<PacketAggregatorOptions, "flows"> & { flows?: PacketAggregatorOptions["flows"] } = {},
): Promise<Observed> {
  const cap = PacketCapture.open(capture);
  const aggregator = new PacketAggregator({
    ...options,
    flows: { describeObservation: captureObservations(cap), ...options.flows },
  });
  const flows: FlowRecord[] = [];
  const requests: RequestRecord[] = [];
  const pump = () => {
    for (let b = cap.drain(); b; b = cap.drain()) aggregator.ingest(b.cursor());
    flows.push(...aggregator.takeFlowRecords());
    requests.push(...aggregator.takeRequestRecords());
  };
  const timer = setInterval(pump, 10);
  try {
    await during();
    await new Promise((r) => setTimeout(r, 300));
    pump();
    aggregator.flush();
    flows.push(...aggregator.takeFlowRecords());
    requests.push(...aggregator.takeRequestRecords());
    return { flows, requests, aggregator, captureStats: cap.stats() };
  } finally {
    clearInterval(timer);
    cap.close();
  }
}
