import { Direction, type RecordCursor, RecordFlag, SocketRole } from "@kalman/ebpf-receiver";

/**
 * One observed payload (a syscall's bytes, or later a packet's) as the aggregator reads it.
 * Implementations are re-pointed views: the aggregator reads fields during ingest() and keeps
 * nothing but copies of the bytes it must buffer.
 */
export interface PayloadView {
  /** Connection id: socket id on the syscall path, flow id on the packet path. */
  readonly connId: number;
  /** True when the observed process sent the bytes. */
  readonly egress: boolean;
  /** 1 client (connect), 2 server (accept), 0 unknown. */
  readonly role: number;
  readonly transport: "tcp" | "udp";
  readonly startNs: number;
  readonly endNs: number;
  /** Bytes moved; may exceed payload().length when the capture was truncated. */
  readonly bytes: number;
  readonly tcpSeq: number;
  readonly seqValid: boolean;
  readonly pid: number;
  readonly tid: number;
  readonly localPort: number;
  readonly remotePort: number;
  readonly netns: number;
  readonly cgroupId: number;
  /** Packet path only: the interface the bytes were captured on. */
  readonly interfaceName?: string;
  /** Plaintext read from a TLS library; its connection's other (ciphertext) payloads are ignored. */
  readonly tls?: boolean;
  payload(): Uint8Array;
  localAddr(): string;
  remoteAddr(): string;
  comm(): string;
}

/** Adapts the receiver's RecordCursor (a data record) to PayloadView without copying. */
export class SocketPayloadView implements PayloadView {
  constructor(private readonly c: RecordCursor) {}
  get connId(): number {
    return this.c.sockId;
  }
  get egress(): boolean {
    return this.c.direction === Direction.Egress;
  }
  get role(): number {
    return this.c.role === SocketRole.Unknown ? 0 : this.c.role;
  }
  get transport(): "tcp" | "udp" {
    return this.c.l4proto === 17 ? "udp" : "tcp";
  }
  get startNs(): number {
    return this.c.enterNs;
  }
  get endNs(): number {
    return this.c.exitNs;
  }
  get bytes(): number {
    return this.c.bytes;
  }
  get tcpSeq(): number {
    return this.c.tcpSeq;
  }
  get seqValid(): boolean {
    return (this.c.flags & RecordFlag.seqValid) !== 0;
  }
  get pid(): number {
    return this.c.tgid;
  }
  get tid(): number {
    return this.c.tid;
  }
  get localPort(): number {
    return this.c.sport;
  }
  get remotePort(): number {
    return this.c.dport;
  }
  get netns(): number {
    return this.c.netns;
  }
  get cgroupId(): number {
    return this.c.cgroupId;
  }
  get tls(): boolean {
    return (this.c.flags & RecordFlag.tls) !== 0;
  }
  payload(): Uint8Array {
    return this.c.payload();
  }
  localAddr(): string {
    return this.c.saddr();
  }
  remoteAddr(): string {
    return this.c.daddr();
  }
  comm(): string {
    return this.c.comm();
  }
}
