// HTTP/2 framing constants (RFC 9113 §4 and §6).

export const FRAME_HEADER_BYTES = 9;
/** SETTINGS_MAX_FRAME_SIZE default. */
export const DEFAULT_MAX_FRAME = 16384;
export const LARGEST_MAX_FRAME = 0xffffff;

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  GoAway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const FrameFlag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
  Padded: 0x8,
  Priority: 0x20,
} as const;

export const Setting = {
  HeaderTableSize: 0x1,
  MaxFrameSize: 0x5,
} as const;

/** "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
export const CLIENT_PREFACE = Uint8Array.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (c) => c.charCodeAt(0));

/**
 * Whether a frame header looks like one a peer would send where framing is uncertain (the first
 * bytes seen, or after lost bytes): known type, valid flags, stream id and length for the type.
 * CONTINUATION never qualifies: the HEADERS it continues was not seen.
 */
export function plausibleFrame(
  type: number,
  flags: number,
  streamId: number,
  length: number,
  maxFrame: number,
  reserved: boolean,
): boolean {
  if (length > maxFrame || reserved) return false;
  switch (type) {
    case FrameType.Data:
      return streamId !== 0 && (flags & ~(FrameFlag.EndStream | FrameFlag.Padded)) === 0;
    case FrameType.Headers: {
      if (streamId === 0) return false;
      if ((flags & ~(FrameFlag.EndStream | FrameFlag.EndHeaders | FrameFlag.Padded | FrameFlag.Priority)) !== 0) {
        return false;
      }
      const prefix = (flags & FrameFlag.Padded ? 1 : 0) + (flags & FrameFlag.Priority ? 5 : 0);
      return length > prefix;
    }
    case FrameType.Priority:
      return streamId !== 0 && length === 5 && flags === 0;
    case FrameType.RstStream:
      return streamId !== 0 && length === 4 && flags === 0;
    case FrameType.Settings:
      return streamId === 0 && (flags === 0 ? length % 6 === 0 : flags === FrameFlag.Ack && length === 0);
    case FrameType.PushPromise:
      return streamId !== 0 && (flags & ~(FrameFlag.EndHeaders | FrameFlag.Padded)) === 0 && length >= 4;
    case FrameType.Ping:
      return streamId === 0 && length === 8 && (flags & ~FrameFlag.Ack) === 0;
    case FrameType.GoAway:
      return streamId === 0 && length >= 8 && flags === 0;
    case FrameType.WindowUpdate:
      return length === 4 && flags === 0;
    default:
      return false;
  }
}

/** Payload length of the frame header at b[i]. */
export function frameLength(b: Uint8Array, i: number): number {
  return ((b[i] as number) << 16) | ((b[i + 1] as number) << 8) | (b[i + 2] as number);
}

/** Stream id of the frame header at b[i] (the reserved bit masked off). */
export function frameStreamId(b: Uint8Array, i: number): number {
  return (
    ((b[i + 5] as number) & 0x7f) * 0x1000000 +
    ((b[i + 6] as number) << 16) +
    ((b[i + 7] as number) << 8) +
    (b[i + 8] as number)
  );
}

/** Whether the reserved bit of the frame header at b[i] is set (peers never set it). */
export const reservedBitSet = (b: Uint8Array, i: number): boolean => ((b[i + 5] as number) & 0x80) !== 0;
