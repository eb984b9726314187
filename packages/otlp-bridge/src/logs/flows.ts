import type { FlowRecord } from "@kalman/flow-aggregator";
import { NETWORK_OBSERVER } from "@kalman/span-correlator";
import { type LogAttributes, SeverityNumber } from "@opentelemetry/api-logs";
import type { ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { KALMAN_SCOPE, type SpanConverter } from "../spans.js";

export { NETWORK_OBSERVER };

const FAILURES = new Set(["connection_refused", "server_syn_miss", "client_ack_miss", "server_rst", "client_rst"]);

/** "tcp 198.18.0.1:40000 → 198.18.0.2:80 [eth0] fin 12.3ms" */
export function flowLogBody(f: FlowRecord): string {
  const state = f.closed ? (f.closeType ?? "closed") : "active";
  return `${f.transport} ${f.clientAddr}:${f.clientPort} → ${f.serverAddr}:${f.serverPort} [${f.interface}] ${state} ${(f.durationNs / 1e6).toFixed(1)}ms`;
}

/** Every flow field as an attribute: semconv names for the tuple, `kalman.flow.*` / `kalman.tcp.*` for the counters. */
export function flowLogAttributes(f: FlowRecord): LogAttributes {
  const a: LogAttributes = {
    "log.event.name": "kalman.flow",
    "network.transport": f.transport,
    "network.type": f.clientAddr.includes(":") ? "ipv6" : "ipv4",
    "client.address": f.clientAddr,
    "client.port": f.clientPort,
    "server.address": f.serverAddr,
    "server.port": f.serverPort,
    "network.interface.name": f.interface,
    "kalman.flow.id": f.flowId,
    "kalman.flow.direction_from": f.directionFrom,
    "kalman.flow.start_ns": f.flowStartNs,
    "kalman.flow.report_start_ns": f.reportStartNs,
    "kalman.flow.report_end_ns": f.reportEndNs,
    "kalman.flow.duration_ns": f.durationNs,
    "kalman.flow.new": f.newFlow,
    "kalman.flow.closed": f.closed,
    "kalman.flow.packets_tx": f.packetsTx,
    "kalman.flow.packets_rx": f.packetsRx,
    "kalman.flow.bytes_tx": f.bytesTx,
    "kalman.flow.bytes_rx": f.bytesRx,
    "kalman.flow.payload_tx": f.payloadTx,
    "kalman.flow.payload_rx": f.payloadRx,
    "kalman.flow.total_packets_tx": f.totalPacketsTx,
    "kalman.flow.total_packets_rx": f.totalPacketsRx,
    "kalman.flow.total_bytes_tx": f.totalBytesTx,
    "kalman.flow.total_bytes_rx": f.totalBytesRx,
  };
  if (f.netns) a["kalman.netns"] = f.netns;
  if (f.vlanId !== undefined) a["kalman.flow.vlan_id"] = f.vlanId;
  if (f.vni !== undefined) a["kalman.flow.vxlan_vni"] = f.vni;
  if (f.closeType) a["kalman.flow.close_type"] = f.closeType;
  if (f.transport === "tcp") {
    a["kalman.tcp.syn_count"] = f.synCount;
    a["kalman.tcp.syn_ack_count"] = f.synAckCount;
    if (f.rttNs !== undefined) a["kalman.tcp.rtt_ns"] = f.rttNs;
    if (f.rttClientNs !== undefined) a["kalman.tcp.rtt_client_ns"] = f.rttClientNs;
    if (f.rttServerNs !== undefined) a["kalman.tcp.rtt_server_ns"] = f.rttServerNs;
    for (const [name, s] of [
      ["srt", f.srt],
      ["art", f.art],
      ["cit", f.cit],
    ] as const) {
      if (s.count === 0) continue;
      a[`kalman.tcp.${name}_sum_ns`] = s.sumNs;
      a[`kalman.tcp.${name}_count`] = s.count;
      a[`kalman.tcp.${name}_max_ns`] = s.maxNs;
    }
    a["kalman.tcp.retrans_tx"] = f.retransTx;
    a["kalman.tcp.retrans_rx"] = f.retransRx;
    a["kalman.tcp.zero_window_tx"] = f.zeroWindowTx;
    a["kalman.tcp.zero_window_rx"] = f.zeroWindowRx;
    a["kalman.tcp.out_of_order_tx"] = f.outOfOrderTx;
    a["kalman.tcp.out_of_order_rx"] = f.outOfOrderRx;
    a["kalman.tcp.lost_tx"] = f.lostTx;
    a["kalman.tcp.lost_rx"] = f.lostRx;
    a["kalman.tcp.rst_client"] = f.rstClient;
    a["kalman.tcp.rst_server"] = f.rstServer;
    a["kalman.tcp.fin_client"] = f.finClient;
    a["kalman.tcp.fin_server"] = f.finServer;
    if (f.establishFailure) a["kalman.tcp.establish_failure"] = f.establishFailure;
  }
  return a;
}

/**
 * FlowRecord -> ReadableLogRecord: the flow log (DeepFlow's l4_flow_log) as an OTel log. Times are
 * the report interval's; failed or reset connections are WARN, the rest INFO.
 */
export function flowLogRecord(
  f: FlowRecord,
  toHrTime: (monoNs: number) => [number, number],
  converter: SpanConverter,
): ReadableLogRecord {
  const warn = f.establishFailure !== undefined || (f.closeType !== undefined && FAILURES.has(f.closeType));
  return {
    hrTime: toHrTime(f.reportStartNs),
    hrTimeObserved: toHrTime(f.reportEndNs),
    severityNumber: warn ? SeverityNumber.WARN : SeverityNumber.INFO,
    severityText: warn ? "WARN" : "INFO",
    body: flowLogBody(f),
    resource: converter.resourceFor(NETWORK_OBSERVER),
    instrumentationScope: KALMAN_SCOPE,
    attributes: flowLogAttributes(f),
    droppedAttributesCount: 0,
  };
}
