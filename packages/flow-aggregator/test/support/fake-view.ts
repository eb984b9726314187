// A PayloadView built by hand, for unit tests of the aggregator's pure logic.
import type { PayloadView } from "../../src/payload.js";

export interface FakeEvent {
  connId: number;
  egress: boolean;
  data: string | Uint8Array;
  role?: number;
  transport?: "tcp" | "udp";
  bytes?: number;
  startNs?: number;
  endNs?: number;
  tcpSeq?: number;
  seqValid?: boolean;
  tid?: number;
  localPort?: number;
  remotePort?: number;
  remoteAddr?: string;
  tls?: boolean;
}

export function view(e: FakeEvent): PayloadView {
  const data = typeof e.data === "string" ? Uint8Array.from(e.data, (c) => c.charCodeAt(0)) : e.data;
  return {
    connId: e.connId,
    egress: e.egress,
    role: e.role ?? 2,
    transport: e.transport ?? "tcp",
    startNs: e.startNs ?? 1000,
    endNs: e.endNs ?? e.startNs ?? 1000,
    bytes: e.bytes ?? data.length,
    tcpSeq: e.tcpSeq ?? 0,
    seqValid: e.seqValid ?? false,
    pid: 77,
    tid: e.tid ?? 77,
    localPort: e.localPort ?? 8080,
    remotePort: e.remotePort ?? 50000,
    netns: 1,
    cgroupId: 1,
    tls: e.tls,
    payload: () => data,
    localAddr: () => "10.0.0.1",
    remoteAddr: () => e.remoteAddr ?? "10.0.0.2",
    comm: () => "svc",
  };
}
