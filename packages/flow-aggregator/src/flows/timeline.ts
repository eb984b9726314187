import { type DecodedPacket, TcpFlag } from "../packets/decode.js";

/** One TCP segment in a connection's header timeline (DeepFlow's "TCP 包头时序图"). */
export interface TimelineRow {
  index: number;
  /** Time since the first segment, ns. */
  timeNs: number;
  /** Time since the previous segment, ns. */
  deltaNs: number;
  interface: string;
  fromClient: boolean;
  flags: string;
  /** Sequence and acknowledgement numbers relative to each side's initial sequence number. */
  seq: number;
  ack: number;
  payload: number;
  window: number;
  options: string;
}

const FLAG_NAMES: Array<[number, string]> = [
  [TcpFlag.syn, "SYN"],
  [TcpFlag.fin, "FIN"],
  [TcpFlag.rst, "RST"],
  [TcpFlag.psh, "PSH"],
  [TcpFlag.ack, "ACK"],
  [TcpFlag.urg, "URG"],
];

/**
 * Collects the TCP headers of one connection, possibly seen at several interfaces, into a timeline
 * with relative sequence numbers. The client is the side that sent the first SYN (else the first
 * segment's sender).
 */
export class TcpTimeline {
  private readonly list: TimelineRow[] = [];
  private readonly client = [0, 0, 0, 0];
  private clientPort = -1;
  private readonly isn: [number, number] = [-1, -1];
  private readonly synSeen: [boolean, boolean] = [false, false];
  private firstNs = -1;
  private lastNs = -1;

  /** Adds a decoded TCP segment (frame bytes still valid: options are read from them). */
  add(p: DecodedPacket, frame: Uint8Array, ns: number, interfaceName: string): void {
    if (p.protocol !== 6) return;
    const syn = (p.tcpFlags & TcpFlag.syn) !== 0;
    const ack = (p.tcpFlags & TcpFlag.ack) !== 0;
    const c = this.client;
    if (this.clientPort < 0) {
      const fromServer = syn && ack;
      c[0] = fromServer ? p.dst0 : p.src0;
      c[1] = fromServer ? p.dst1 : p.src1;
      c[2] = fromServer ? p.dst2 : p.src2;
      c[3] = fromServer ? p.dst3 : p.src3;
      this.clientPort = fromServer ? p.dstPort : p.srcPort;
    }
    const fromClient =
      p.srcPort === this.clientPort && p.src0 === c[0] && p.src1 === c[1] && p.src2 === c[2] && p.src3 === c[3];
    const me = fromClient ? 0 : 1;
    if (this.isn[me] < 0 || (syn && !this.synSeen[me])) this.isn[me] = p.seq;
    if (syn) this.synSeen[me] = true;
    if (this.firstNs < 0) this.firstNs = ns;
    const other = this.isn[1 - me] as number;
    this.list.push({
      index: this.list.length + 1,
      timeNs: ns - this.firstNs,
      deltaNs: this.lastNs < 0 ? 0 : ns - this.lastNs,
      interface: interfaceName,
      fromClient,
      flags: FLAG_NAMES.filter(([bit]) => (p.tcpFlags & bit) !== 0)
        .map(([, name]) => name)
        .join(", "),
      seq: (p.seq - (this.isn[me] as number)) >>> 0,
      ack: ack && other >= 0 ? (p.ack - other) >>> 0 : ack ? p.ack : 0,
      payload: p.payloadBytes,
      window: p.window,
      options: tcpOptionsText(frame, p.l4Offset + 20, p.l4Offset + p.l4HeaderLength),
    });
    this.lastNs = ns;
  }

  rows(): TimelineRow[] {
    return this.list;
  }
}

/** TCP options of a header as text: "MSS=1460, WS=7, SACK_PERM, TS=123/0". */
export function tcpOptionsText(b: Uint8Array, start: number, end: number): string {
  const out: string[] = [];
  let p = start;
  while (p < end) {
    const kind = b[p] as number;
    if (kind === 0) break;
    if (kind === 1) {
      p++;
      continue;
    }
    const len = b[p + 1] as number;
    if (p + 1 >= end || len < 2 || p + len > end) {
      out.push("malformed");
      break;
    }
    const u16 = (at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
    const u32 = (at: number) => (u16(at) * 65536 + u16(at + 2)) >>> 0;
    if (kind === 2 && len === 4) out.push(`MSS=${u16(p + 2)}`);
    else if (kind === 3 && len === 3) out.push(`WS=${b[p + 2]}`);
    else if (kind === 4) out.push("SACK_PERM");
    else if (kind === 5) {
      const blocks: string[] = [];
      for (let q = p + 2; q + 8 <= p + len; q += 8) blocks.push(`${u32(q)}-${u32(q + 4)}`);
      out.push(`SACK=${blocks.join(",")}`);
    } else if (kind === 8 && len === 10) out.push(`TS=${u32(p + 2)}/${u32(p + 6)}`);
    else out.push(`opt${kind}`);
    p += len;
  }
  return out.join(", ");
}

/** The timeline as an aligned text table (one row per segment). */
export function formatTimeline(rows: readonly TimelineRow[]): string {
  const header = [
    "#",
    "time (s)",
    "delta (s)",
    "interface",
    "dir",
    "flags",
    "seq",
    "ack",
    "payload",
    "window",
    "options",
  ];
  const body = rows.map((r) => [
    String(r.index),
    (r.timeNs / 1e9).toFixed(6),
    (r.deltaNs / 1e9).toFixed(6),
    r.interface,
    r.fromClient ? "c→s" : "s→c",
    r.flags,
    String(r.seq),
    String(r.ack),
    String(r.payload),
    String(r.window),
    r.options || "--",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join("  ")
      .trimEnd();
  return [line(header), ...body.map(line)].join("\n");
}
