/**
 * One captured frame at a time: a cursor re-pointed by `next()` instead of an object per packet.
 * The capture-file reader and live capture both yield this shape; the packet decoder consumes it.
 * The fields describe the current frame only until the next call to `next()` (or a new chunk).
 */
export interface FrameCursor {
  /** Moves to the next frame; false when none is available (yet). */
  next(): boolean;
  /** Backing bytes of the current frame (shared, not a copy). */
  readonly buffer: Uint8Array;
  /** Frame start in `buffer`. */
  readonly dataOffset: number;
  /** Captured bytes (`buffer[dataOffset, dataOffset + capLen)`). */
  readonly capLen: number;
  /** Length on the wire (never below `capLen`). */
  readonly wireLen: number;
  /** pcap LINKTYPE: 1 Ethernet, 113 Linux SLL, 276 Linux SLL2, 101 raw IP, 0 BSD loopback, ... */
  readonly linkType: number;
  /**
   * The observation point: pcapng interface index within its section (0 for classic pcap); for live
   * capture, one number per (capture handle, interface).
   */
  readonly interfaceId: number;
  /** Capture time: seconds since the epoch. */
  readonly realSec: number;
  /** Capture time: nanoseconds within the second. */
  readonly realNsec: number;
  /** ns since the first frame's whole second; never decreases in file order (exact in a double for ~104 days). */
  readonly timeNs: number;
}
