// Generic parser checks every protocol's unit tests share: split at every offset, every prefix,
// mutations and random input (no throw, bounded buffers, deterministic output).
import fc from "fast-check";
import { expect } from "vitest";
import type { ProtocolParser, SessionOptions } from "../../src/protocols/parser.js";
import type { ChunkMeta, L7Message } from "../../src/types.js";

/** One write by one side; `missing` bytes after it were not captured. */
export interface Chunk {
  fromClient: boolean;
  data: Uint8Array;
  missing?: number;
}

export const DEFAULT_SESSION: SessionOptions = { redact: true, maxBufferBytes: 64 * 1024 };

/** Feeds chunks in order (chunk i gets startNs = 1000*i, endNs = 1000*i + 500, tid = 100 + i). */
export function runParser(
  parser: ProtocolParser,
  chunks: Chunk[],
  options: SessionOptions = DEFAULT_SESSION,
): L7Message[] {
  const session = parser.createSession(options);
  const out: L7Message[] = [];
  const seq = [1000, 5000];
  chunks.forEach((c, i) => {
    const dir = c.fromClient ? 0 : 1;
    const meta: ChunkMeta = {
      startNs: 1000 * i,
      endNs: 1000 * i + 500,
      tcpSeq: seq[dir] as number,
      seqValid: true,
      tid: 100 + i,
    };
    session.feed(c.fromClient, c.data, c.missing ?? 0, meta, (m) => out.push(structuredClone(m)));
    seq[dir] = ((seq[dir] as number) + c.data.length + (c.missing ?? 0)) >>> 0;
    expect(session.buffered()).toBeLessThanOrEqual(2 * options.maxBufferBytes);
  });
  session.close?.((m) => out.push(structuredClone(m)), {
    startNs: 1e9,
    endNs: 1e9,
    tcpSeq: 0,
    seqValid: false,
    tid: 0,
  });
  return out;
}

/** The protocol fields of messages, without timing/thread/seq (which depend on chunking). */
export function fieldsOf(messages: L7Message[]): Array<Partial<L7Message>> {
  return messages.map(({ startNs: _s, endNs: _e, tid: _t, tcpSeq: _q, ...rest }) => rest);
}

/** Each chunk split in two at every offset gives the same messages as the whole chunk. */
export function checkSplitsEverywhere(parser: ProtocolParser, chunks: Chunk[]): void {
  const whole = fieldsOf(runParser(parser, chunks));
  chunks.forEach((c, i) => {
    for (let k = 1; k < c.data.length; k++) {
      const split = [
        ...chunks.slice(0, i),
        { fromClient: c.fromClient, data: c.data.subarray(0, k) },
        { fromClient: c.fromClient, data: c.data.subarray(k), missing: c.missing ?? 0 },
        ...chunks.slice(i + 1),
      ];
      expect(fieldsOf(runParser(parser, split)), `chunk ${i} split at ${k}`).toEqual(whole);
    }
  });
}

/** The same bytes one byte per chunk give the same messages. */
export function checkByteByByte(parser: ProtocolParser, chunks: Chunk[]): void {
  const whole = fieldsOf(runParser(parser, chunks));
  const bytes: Chunk[] = [];
  for (const c of chunks)
    for (let k = 0; k < c.data.length; k++) bytes.push({ fromClient: c.fromClient, data: c.data.subarray(k, k + 1) });
  expect(fieldsOf(runParser(parser, bytes))).toEqual(whole);
}

/** Every prefix of the conversation parses without throwing, into a prefix of the full result. */
export function checkEveryPrefix(parser: ProtocolParser, chunks: Chunk[]): void {
  const whole = fieldsOf(runParser(parser, chunks));
  const flat = chunks.flatMap((c) => Array.from(c.data, () => c.fromClient));
  let total = 0;
  for (const c of chunks) total += c.data.length;
  for (let n = 0; n <= total; n++) {
    const prefix: Chunk[] = [];
    let left = n;
    for (const c of chunks) {
      if (left <= 0) break;
      prefix.push({ fromClient: c.fromClient, data: c.data.subarray(0, Math.min(left, c.data.length)) });
      left -= c.data.length;
    }
    const got = fieldsOf(runParser(parser, prefix));
    expect(got.length, `prefix ${n}`).toBeLessThanOrEqual(whole.length);
  }
  expect(flat.length).toBe(total);
}

/** Random bytes and mutated fixtures: never throws, buffers stay bounded, output is deterministic. */
export function checkFuzz(parser: ProtocolParser, fixtures: Chunk[][], runs = 300): void {
  const small: SessionOptions = { redact: true, maxBufferBytes: 4096 };
  const chunkArb = fc.record({
    fromClient: fc.boolean(),
    data: fc.uint8Array({ maxLength: 600 }),
    missing: fc.nat(3000),
  });
  fc.assert(
    fc.property(fc.array(chunkArb, { maxLength: 30 }), (chunks) => {
      const a = runParser(parser, chunks, small);
      const b = runParser(parser, chunks, small);
      expect(a).toEqual(b);
    }),
    { numRuns: runs },
  );
  const mutated = fc
    .tuple(fc.constantFrom(...fixtures), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 8 }))
    .map(([fixture, flips]) => {
      const copy = fixture.map((c) => ({ ...c, data: Uint8Array.from(c.data) }));
      for (const [pos, value] of flips) {
        const c = copy[pos % copy.length];
        if (c?.data.length) c.data[pos % c.data.length] = value;
      }
      return copy;
    });
  fc.assert(
    fc.property(mutated, (chunks) => {
      expect(runParser(parser, chunks, small)).toEqual(runParser(parser, chunks, small));
    }),
    { numRuns: runs },
  );
}

export const text = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
export const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
