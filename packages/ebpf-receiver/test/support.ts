// Test support: privileged gating and materialised records (tests only; the hot path never copies).
import { describePrivileged as describeWithChecks } from "@kalman/examples";
import { RecordType, receiverPreflight, type SocketTracer } from "../src/index.js";

/** A describe block that needs root and BPF: fails loudly without them, unless KALMAN_SKIP_PRIVILEGED=1. */
export function describePrivileged(name: string, body: () => void): void {
  describeWithChecks(name, receiverPreflight, body);
}

export interface Rec {
  type: number;
  flags: number;
  tgid: number;
  tid: number;
  comm: string;
  fd: number;
  sockId: number;
  role: number;
  family: number;
  l4proto: number;
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  netns: number;
  cgroupId: number;
  // data
  direction?: number;
  syscall: number;
  bytes?: number;
  capLen?: number;
  tcpSeq?: number;
  enterNs?: number;
  exitNs?: number;
  payload?: Buffer;
  // sock
  ret?: number;
  oldState?: number;
  newState?: number;
}

/** Drains everything queued now into plain objects. */
export function drainAll(tracer: SocketTracer, into: Rec[] = []): Rec[] {
  for (let batch = tracer.drainOnce(); batch; batch = tracer.drainOnce()) {
    const c = batch.cursor();
    while (c.next()) {
      const r: Rec = {
        type: c.type,
        flags: c.flags,
        tgid: c.tgid,
        tid: c.tid,
        comm: c.comm(),
        fd: c.fd,
        sockId: c.sockId,
        role: c.role,
        family: c.family,
        l4proto: c.l4proto,
        saddr: c.saddr(),
        daddr: c.daddr(),
        sport: c.sport,
        dport: c.dport,
        netns: c.netns,
        cgroupId: c.cgroupId,
        syscall: c.syscall,
      };
      if (c.type === RecordType.data) {
        r.direction = c.direction;
        r.bytes = c.bytes;
        r.capLen = c.capLen;
        r.tcpSeq = c.tcpSeq;
        r.enterNs = c.enterNs;
        r.exitNs = c.exitNs;
        r.payload = Buffer.from(c.payload());
      } else {
        r.ret = c.ret;
        r.oldState = c.oldState;
        r.newState = c.newState;
      }
      into.push(r);
    }
  }
  return into;
}

/** Waits briefly for the kernel to publish, then drains. */
export async function settleAndDrain(tracer: SocketTracer, into: Rec[] = [], ms = 100): Promise<Rec[]> {
  await new Promise((r) => setTimeout(r, ms));
  return drainAll(tracer, into);
}
