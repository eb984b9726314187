import type { ChunkMeta, L7Message, L7ProtocolName } from "../types.js";

/** How sure detect() is that bytes start a message of its protocol. */
export const Confidence = { No: 0, Maybe: 1, Sure: 2 } as const;
export type Confidence = (typeof Confidence)[keyof typeof Confidence];

export interface Detection {
  confidence: Confidence;
  /** Which side sent the bytes, when the protocol tells (a request line is the client's). */
  fromClient?: boolean;
}

export const NOT_DETECTED: Detection = { confidence: Confidence.No };

export interface SessionOptions {
  /** Redact secrets (Authorization/Cookie values, SQL literals). Default true. */
  redact: boolean;
  /** The connection's transport (datagram parsers get one datagram per feed on UDP). */
  transport?: "tcp" | "udp";
  /** Upper bound of bytes a session may buffer per direction. */
  maxBufferBytes: number;
}

export type Emit = (message: L7Message) => void;

/**
 * Per-connection parser state. Bounded whatever it is fed; never throws.
 * Stream protocols get each direction's bytes in order; datagram protocols get one datagram per feed.
 */
export interface ProtocolSession {
  /**
   * Feeds the next bytes one side sent. `missing` counts bytes that side sent right after `data`
   * but that were not captured (truncated capture, or a gap). The session skips them when it
   * knows where it is (inside a body of known length), else resynchronises at the next message.
   * A gap before any data is fed as empty `data` with `missing` > 0.
   */
  feed(fromClient: boolean, data: Uint8Array, missing: number, meta: ChunkMeta, emit: Emit): void;
  /** Bytes held in buffers right now (must stay ≤ options.maxBufferBytes per direction). */
  buffered(): number;
  /** The connection closed: emit what the close completes (a body read until close). */
  close?(emit: Emit, meta: ChunkMeta): void;
  /** Malformed input seen and bytes skipped while resynchronising. */
  readonly stats: SessionStats;
}

export interface SessionStats {
  malformed: number;
  resyncBytes: number;
}

/** One protocol: a cheap detect() and a session factory. */
export interface ProtocolParser {
  readonly name: L7ProtocolName;
  readonly transports: ReadonlyArray<"tcp" | "udp">;
  /** Well-known server ports: a hint for inference, never a requirement. */
  readonly ports: readonly number[];
  /** Looks at the first bytes one side sent (fromClient when the socket role is known). */
  detect(data: Uint8Array, fromClient: boolean | undefined): Detection;
  createSession(options: SessionOptions): ProtocolSession;
}
