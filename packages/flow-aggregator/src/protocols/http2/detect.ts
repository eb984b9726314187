import { Confidence, type Detection, NOT_DETECTED } from "../parser.js";
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME,
  FRAME_HEADER_BYTES,
  frameLength,
  frameStreamId,
  plausibleFrame,
  reservedBitSet,
} from "./frame.js";

const MAX_FRAMES_CHECKED = 16;

/** The client connection preface, or as much of it as `b` holds (at least 4 bytes). */
export function startsWithPreface(b: Uint8Array): boolean {
  const n = Math.min(b.length, CLIENT_PREFACE.length);
  if (n < 4) return false;
  for (let i = 0; i < n; i++) if (b[i] !== CLIENT_PREFACE[i]) return false;
  return true;
}

/**
 * The preface is sure (and the client's). Mid-connection, frames that all look plausible up to the
 * end of the chunk are a maybe.
 */
export function detectHttp2(b: Uint8Array): Detection {
  if (startsWithPreface(b)) return { confidence: Confidence.Sure, fromClient: true };
  if (b.length < FRAME_HEADER_BYTES) return NOT_DETECTED;
  let at = 0;
  for (let frames = 0; frames < MAX_FRAMES_CHECKED && at + FRAME_HEADER_BYTES <= b.length; frames++) {
    const length = frameLength(b, at);
    const type = b[at + 3] as number;
    const flags = b[at + 4] as number;
    if (!plausibleFrame(type, flags, frameStreamId(b, at), length, DEFAULT_MAX_FRAME, reservedBitSet(b, at))) {
      return NOT_DETECTED;
    }
    at += FRAME_HEADER_BYTES + length;
  }
  return { confidence: Confidence.Maybe };
}
