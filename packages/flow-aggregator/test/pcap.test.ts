// Capture-file reader, pcap writer and per-flow packet retention on literal bytes written by hand
// (checked once against tshark 4.0.17: same times, lengths and interfaces as asserted below).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CaptureFileReader, MAX_CAPLEN, readCaptureFile } from "../src/pcap/reader.js";
import { PacketRetention } from "../src/pcap/retention.js";
import { PcapWriter } from "../src/pcap/writer.js";
import { hex } from "./support/harness.js";

interface Seen {
  linkType: number;
  interfaceId: number;
  realSec: number;
  realNsec: number;
  timeNs: number;
  capLen: number;
  wireLen: number;
  data: string;
}

function seen(r: CaptureFileReader): Seen {
  return {
    linkType: r.linkType,
    interfaceId: r.interfaceId,
    realSec: r.realSec,
    realNsec: r.realNsec,
    timeNs: r.timeNs,
    capLen: r.capLen,
    wireLen: r.wireLen,
    data: Buffer.from(r.buffer.subarray(r.dataOffset, r.dataOffset + r.capLen)).toString("hex"),
  };
}

/** Pushes the chunks in order, iterating after each, then ends the input. */
function readChunks(chunks: Uint8Array[]) {
  const r = new CaptureFileReader();
  const frames: Seen[] = [];
  for (const c of chunks) {
    r.push(c);
    while (r.next()) {
      // every frame lies inside its buffer, within the caplen bound
      expect(r.dataOffset + r.capLen).toBeLessThanOrEqual(r.buffer.length);
      expect(r.capLen).toBeLessThanOrEqual(MAX_CAPLEN);
      expect(r.wireLen).toBeGreaterThanOrEqual(r.capLen);
      expect(r.timeNs).toBeGreaterThanOrEqual(frames.at(-1)?.timeNs ?? 0);
      frames.push(seen(r));
    }
  }
  const status = r.end();
  return { frames, stats: r.stats(), status, reader: r };
}

const readAll = (bytes: Uint8Array) => readChunks([bytes]);

// ---- fixtures (all fields as the pcap / pcapng specs lay them out) ----

/** Classic pcap, little-endian, microseconds, Ethernet, snaplen 65535; 2 records. */
const pcapLeMicro = hex(`
  d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000
  00f15365 40e20100 04000000 3c000000 deadbeef
  01f15365 3f420f00 06000000 06000000 010203040506`);
/** Classic pcap, big-endian, microseconds, Linux SLL (113). */
const pcapBeMicro = hex(`
  a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000071
  6553f100 0001e240 00000004 0000003c deadbeef
  6553f101 000f423f 00000006 00000006 010203040506`);
/** Classic pcap, little-endian, nanoseconds, Ethernet, snaplen 262144 (what PcapWriter writes). */
const pcapLeNano = hex(`
  4d3cb2a1 0200 0400 00000000 00000000 00000400 01000000
  00f15365 15cd5b07 04000000 04000000 deadbeef
  01f15365 01000000 02000000 ea050000 cafe`);
/** Classic pcap, big-endian, nanoseconds, raw IP (101). */
const pcapBeNano = hex(`
  a1b23c4d 0002 0004 00000000 00000000 0000ffff 00000065
  6553f100 075bcd15 00000004 00000004 45000014
  6553f101 00000001 00000002 00000002 cafe`);

const micro: Seen[] = [
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000000,
    realNsec: 123456000,
    timeNs: 123456000,
    capLen: 4,
    wireLen: 60,
    data: "deadbeef",
  },
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000001,
    realNsec: 999999000,
    timeNs: 1999999000,
    capLen: 6,
    wireLen: 6,
    data: "010203040506",
  },
];
const nano: Seen[] = [
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000000,
    realNsec: 123456789,
    timeNs: 123456789,
    capLen: 4,
    wireLen: 4,
    data: "deadbeef",
  },
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000001,
    realNsec: 1,
    timeNs: 1e9 + 1,
    capLen: 2,
    wireLen: 1514,
    data: "cafe",
  },
];

/**
 * pcapng, little-endian: SHB; IDB 0 Ethernet "eth0" (µs); IDB 1 raw IP "tun0" with if_tsresol=9;
 * EPB on if 1; an unknown block (type 0xbad); EPB on if 0 with an epb_flags option.
 */
const pcapngTwoInterfaces = hex(`
  0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
  01000000 20000000 0100 0000 00000400 0200 0400 65746830 0000 0000 20000000
  01000000 28000000 6500 0000 ffff0000 0200 0400 74756e30 0900 0100 09000000 0000 0000 28000000
  06000000 24000000 01000000 fe9c9717 15cd853d 04000000 04000000 45000014 24000000
  ad0b0000 10000000 11223344 10000000
  06000000 34000000 00000000 240a0600 42822d18 05000000 3c000000 0102030405000000
    0200 0400 01000000 0000 0000 34000000`);
const pcapngTwoInterfacesBoundaries = [0, 28, 60, 100, 136, 152, 204];
const pcapngTwoInterfacesPackets = [136, 204];

/**
 * pcapng, two sections. Section 1 little-endian: IDB Ethernet with if_tsresol=0x8a (2^-10 s), EPB.
 * Section 2 big-endian: IDB Linux SLL "sll0", snaplen 8, if_tsoffset=100 s; an OPB; an SPB of a
 * 10-byte frame cut to the snaplen (no timestamp: it keeps the previous frame's time).
 */
const pcapngTwoSections = hex(`
  0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
  01000000 20000000 0100 0000 00000000 0900 0100 8a000000 0000 0000 20000000
  06000000 24000000 00000000 95010000 0002c44f 03000000 03000000 aabbcc00 24000000
  0a0d0d0a 0000001c 1a2b3c4d 0001 0000 ffffffffffffffff 0000001c
  00000001 0000002c 0071 0000 00000008 0002 0004 736c6c30 000e 0008 0000000000000064 0000 0000 0000002c
  00000002 00000028 0000 0000 00060a24 183cc483 00000005 00000005 0a0b0c0d 0e000000 00000028
  00000003 00000018 0000000a 00112233 44556677 00000018`);

const twoInterfacesFrames: Seen[] = [
  {
    linkType: 101,
    interfaceId: 1,
    realSec: 1700000000,
    realNsec: 123456789,
    timeNs: 123456789,
    capLen: 4,
    wireLen: 4,
    data: "45000014",
  },
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000001,
    realNsec: 2000,
    timeNs: 1000002000,
    capLen: 5,
    wireLen: 60,
    data: "0102030405",
  },
];
const twoSectionsFrames: Seen[] = [
  {
    linkType: 1,
    interfaceId: 0,
    realSec: 1700000000,
    realNsec: 500000000,
    timeNs: 500000000,
    capLen: 3,
    wireLen: 3,
    data: "aabbcc",
  },
  {
    linkType: 113,
    interfaceId: 0,
    realSec: 1700000102,
    realNsec: 3000,
    timeNs: 102000003000,
    capLen: 5,
    wireLen: 5,
    data: "0a0b0c0d0e",
  },
  {
    linkType: 113,
    interfaceId: 0,
    realSec: 1700000102,
    realNsec: 3000,
    timeNs: 102000003000,
    capLen: 8,
    wireLen: 10,
    data: "0011223344556677",
  },
];

const fixtures: Array<{ name: string; bytes: Uint8Array; frames: Seen[] }> = [
  { name: "pcap LE µs", bytes: pcapLeMicro, frames: micro },
  { name: "pcap BE µs", bytes: pcapBeMicro, frames: micro.map((f) => ({ ...f, linkType: 113 })) },
  { name: "pcap LE ns", bytes: pcapLeNano, frames: nano },
  {
    name: "pcap BE ns",
    bytes: pcapBeNano,
    frames: nano.map((f, i) => ({ ...f, linkType: 101, wireLen: f.capLen, data: i === 0 ? "45000014" : f.data })),
  },
  { name: "pcapng 2 interfaces", bytes: pcapngTwoInterfaces, frames: twoInterfacesFrames },
  { name: "pcapng 2 sections", bytes: pcapngTwoSections, frames: twoSectionsFrames },
];

/** Seeded PRNG (mulberry32): the random tests are repeatable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random bytes, `n` of them. */
function randomBytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A classic pcap of random records: mostly consistent lengths, now and then a wild caplen. */
function randomPcap(rand: () => number): Uint8Array {
  const le = rand() < 0.5;
  const nano = rand() < 0.5;
  const head = new DataView(new ArrayBuffer(24));
  head.setUint32(0, nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
  head.setUint16(4, 2, le);
  head.setUint16(6, 4, le);
  head.setUint32(16, 65535, le);
  head.setUint32(20, Math.floor(rand() * 300), le);
  const parts = [new Uint8Array(head.buffer)];
  const n = Math.floor(rand() * 12);
  for (let i = 0; i < n; i++) {
    const len = Math.floor(rand() * 80);
    const rec = new DataView(new ArrayBuffer(16));
    rec.setUint32(0, 1700000000 + Math.floor(rand() * 100), le);
    rec.setUint32(4, Math.floor(rand() * (rand() < 0.1 ? 4294967295 : 1e6)), le);
    rec.setUint32(8, rand() < 0.03 ? Math.floor(rand() * 4294967295) : len, le);
    rec.setUint32(12, len + Math.floor(rand() * 3) - 1, le);
    parts.push(new Uint8Array(rec.buffer), randomBytes(rand, len));
  }
  if (rand() < 0.3) parts.push(randomBytes(rand, Math.floor(rand() * 20)));
  return concat(parts);
}

/** A pcapng of random sections and blocks (IDB options, EPB/OPB/SPB, unknown) with occasional lies. */
function randomPcapng(rand: () => number): Uint8Array {
  const parts: Uint8Array[] = [];
  let le = true;
  const block = (type: number, body: Uint8Array) => {
    const len = 12 + body.length;
    const lie = rand();
    const v = new DataView(new ArrayBuffer(len));
    v.setUint32(0, type, le);
    v.setUint32(4, lie < 0.03 ? Math.floor(rand() * 70000) : len, le);
    new Uint8Array(v.buffer).set(body, 8);
    v.setUint32(len - 4, lie > 0.97 ? len + 4 : len, le);
    parts.push(new Uint8Array(v.buffer));
  };
  const pad = (n: number) => (n + 3) & ~3;
  const blocks = 1 + Math.floor(rand() * 14);
  for (let i = 0; i < blocks; i++) {
    const kind = i === 0 ? 0 : Math.floor(rand() * 7);
    if (kind === 0) {
      le = rand() < 0.5;
      const v = new DataView(new ArrayBuffer(16));
      v.setUint32(0, 0x1a2b3c4d, le);
      v.setUint16(4, 1, le);
      v.setInt32(8, -1, le);
      v.setInt32(12, -1, le);
      block(0x0a0d0d0a, new Uint8Array(v.buffer));
    } else if (kind === 1) {
      const name = randomBytes(rand, Math.floor(rand() * 6));
      const v = new DataView(new ArrayBuffer(8 + 8 + 4 + pad(name.length) + 4));
      v.setUint16(0, Math.floor(rand() * 300), le);
      v.setUint32(4, rand() < 0.5 ? 0 : Math.floor(rand() * 100), le);
      v.setUint16(8, 9, le);
      v.setUint16(10, rand() < 0.9 ? 1 : 200, le);
      v.setUint8(12, Math.floor(rand() * 256));
      v.setUint16(16, 2, le);
      v.setUint16(18, name.length, le);
      new Uint8Array(v.buffer).set(name, 20);
      block(1, new Uint8Array(v.buffer));
    } else if (kind <= 4) {
      const data = randomBytes(rand, Math.floor(rand() * 60));
      const obsolete = kind === 4;
      const v = new DataView(new ArrayBuffer(20 + pad(data.length)));
      const ifId = Math.floor(rand() * 3);
      if (obsolete) v.setUint16(0, ifId, le);
      else v.setUint32(0, ifId, le);
      v.setUint32(4, Math.floor(rand() * 4294967296), le);
      v.setUint32(8, Math.floor(rand() * 4294967296), le);
      v.setUint32(12, rand() < 0.05 ? data.length + 8 : data.length, le);
      v.setUint32(16, data.length + Math.floor(rand() * 10), le);
      new Uint8Array(v.buffer).set(data, 20);
      block(obsolete ? 2 : 6, new Uint8Array(v.buffer));
    } else if (kind === 5) {
      const data = randomBytes(rand, Math.floor(rand() * 40));
      const v = new DataView(new ArrayBuffer(4 + pad(data.length)));
      v.setUint32(0, data.length + Math.floor(rand() * 4), le);
      new Uint8Array(v.buffer).set(data, 4);
      block(3, new Uint8Array(v.buffer));
    } else {
      block(Math.floor(rand() * 0x40000000), randomBytes(rand, 4 * Math.floor(rand() * 8)));
    }
  }
  if (rand() < 0.3) parts.push(randomBytes(rand, Math.floor(rand() * 20)));
  return concat(parts);
}

describe("CaptureFileReader: literal fixtures", () => {
  for (const fx of fixtures) {
    it(`${fx.name}: every frame with its link type, interface, time and lengths`, () => {
      const { frames, stats, status } = readAll(fx.bytes);
      expect(status).toEqual({ ok: true });
      expect(frames).toEqual(fx.frames);
      expect(stats).toMatchObject({ packets: fx.frames.length, malformed: 0, truncatedBytes: 0, skippedBytes: 0 });
    });
  }

  it("pcapng: interface names from if_name, sections, skipped unknown blocks", () => {
    const a = readAll(pcapngTwoInterfaces);
    expect(a.reader.format).toBe("pcapng");
    expect([a.reader.interfaceName(0), a.reader.interfaceName(1), a.reader.interfaceName(2)]).toEqual([
      "eth0",
      "tun0",
      undefined,
    ]);
    expect([a.reader.interfaceLinkType(0), a.reader.interfaceLinkType(1)]).toEqual([1, 101]);
    expect(a.stats).toMatchObject({ sections: 1, interfaces: 2, skippedBlocks: 1 });
    const b = readAll(pcapngTwoSections);
    // names and link types are those of the current (second) section
    expect([b.reader.interfaceName(0), b.reader.interfaceLinkType(0)]).toEqual(["sll0", 113]);
    expect(b.stats).toMatchObject({ sections: 2, interfaces: 1, skippedBlocks: 0 });
    const c = readAll(pcapBeMicro);
    expect([c.reader.format, c.reader.interfaceLinkType(0), c.reader.interfaceName(0)]).toEqual([
      "pcap",
      113,
      undefined,
    ]);
  });

  it("not a capture file: the one error result, naming the magic", () => {
    const r = new CaptureFileReader();
    r.push(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    expect(r.next()).toBe(false);
    expect(r.status).toEqual({ ok: false, error: "not a pcap or pcapng file: magic 0x47455420" });
    expect(r.end()).toEqual({ ok: false, error: "not a pcap or pcapng file: magic 0x47455420" });
    expect(r.stats().packets).toBe(0);
    // the magic may arrive a byte at a time
    const s = new CaptureFileReader();
    for (const b of [0x7f, 0x45, 0x4c, 0x46, 0x02]) {
      s.push(Uint8Array.of(b));
      expect(s.next()).toBe(false);
    }
    expect(s.status).toEqual({ ok: false, error: "not a pcap or pcapng file: magic 0x7f454c46" });
  });

  it("timeNs never goes backwards when the file's timestamps do; realSec/realNsec stay as recorded", () => {
    const bytes = hex(`
      4d3cb2a1 0200 0400 00000000 00000000 00000400 01000000
      0af15365 00000000 01000000 01000000 aa
      00f15365 05000000 01000000 01000000 bb
      0bf15365 07000000 01000000 01000000 cc`);
    const { frames } = readAll(bytes);
    expect(frames.map((f) => [f.realSec - 1700000000, f.realNsec, f.timeNs])).toEqual([
      [10, 0, 0],
      [0, 5, 0],
      [11, 7, 1e9 + 7],
    ]);
  });

  it("pcapng ns timestamps beyond 2^53 units are split exactly (no float rounding)", () => {
    // EPB times 2^64-1 ns and 2^53+1 ns on an if_tsresol=9 interface
    const bytes = hex(`
      0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000
      01000000 1c000000 0100 0000 00000000 0900 0100 09000000 1c000000
      06000000 20000000 00000000 ffffffff ffffffff 00000000 00000000 20000000
      06000000 20000000 00000000 00002000 01000000 00000000 00000000 20000000`);
    const { frames, stats } = readAll(bytes);
    expect(stats.malformed).toBe(0);
    // 18446744073709551615 ns = 18446744073 s + 709551615 ns; 9007199254740993 ns = 9007199 s + 254740993 ns
    expect(frames.map((f) => [f.realSec, f.realNsec])).toEqual([
      [18446744073, 709551615],
      [9007199, 254740993],
    ]);
  });
});

describe("CaptureFileReader: chunks, prefixes, bad input", () => {
  it("every fixture split in two at every offset gives the same frames", () => {
    for (const fx of fixtures) {
      for (let k = 0; k <= fx.bytes.length; k++) {
        const { frames, stats } = readChunks([fx.bytes.subarray(0, k), fx.bytes.subarray(k)]);
        expect(frames, `${fx.name} split at ${k}`).toEqual(fx.frames);
        expect(stats.truncatedBytes).toBe(0);
      }
    }
  });

  it("one byte per chunk gives the same frames, and the stitch buffer stays as small as the largest record", () => {
    for (const fx of fixtures) {
      const bytes = Array.from(fx.bytes, (b) => Uint8Array.of(b));
      const { frames, stats } = readChunks(bytes);
      expect(frames, fx.name).toEqual(fx.frames);
      expect(stats.bufferedBytes).toBeLessThanOrEqual(256);
    }
  });

  it("pushing without iterating in between keeps every frame", () => {
    const r = new CaptureFileReader();
    const k = 37;
    r.push(pcapngTwoInterfaces.slice(0, k));
    r.push(pcapngTwoInterfaces.slice(k, 120));
    r.push(pcapngTwoInterfaces.slice(120));
    const frames: Seen[] = [];
    while (r.next()) frames.push(seen(r));
    expect(frames).toEqual(twoInterfacesFrames);
  });

  it("every prefix: never throws, yields only complete frames, counts the cut-off bytes", () => {
    const cases = [
      { bytes: pcapLeMicro, boundaries: [0, 24, 44, 66], packetEnds: [44, 66] },
      { bytes: pcapBeNano, boundaries: [0, 24, 44, 62], packetEnds: [44, 62] },
      {
        bytes: pcapngTwoInterfaces,
        boundaries: pcapngTwoInterfacesBoundaries,
        packetEnds: pcapngTwoInterfacesPackets,
      },
      { bytes: pcapngTwoSections, boundaries: [0, 28, 60, 96, 124, 168, 208, 232], packetEnds: [96, 208, 232] },
    ];
    for (const { bytes, boundaries, packetEnds } of cases) {
      const whole = readAll(bytes).frames;
      expect(boundaries.at(-1)).toBe(bytes.length);
      for (let k = 0; k <= bytes.length; k++) {
        const { frames, stats } = readAll(bytes.slice(0, k));
        const complete = packetEnds.filter((end) => end <= k).length;
        expect(frames, `prefix ${k}`).toEqual(whole.slice(0, complete));
        const lastBoundary = Math.max(...boundaries.filter((b) => b <= k));
        expect(stats.truncatedBytes, `prefix ${k}`).toBe(k - lastBoundary);
      }
    }
  });

  it("classic pcap: a caplen beyond 256 KiB stops the file, counted; what came before is kept", () => {
    const bytes = hex(`
      d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000
      00f15365 40e20100 04000000 3c000000 deadbeef
      01f15365 3f420f00 01000400 06000000 010203040506
      01f15365 3f420f00 06000000 06000000 010203040506`);
    const { frames, stats } = readAll(bytes);
    expect(frames.map((f) => f.data)).toEqual(["deadbeef"]);
    expect(stats).toMatchObject({ packets: 1, malformed: 1, skippedBytes: 44, truncatedBytes: 0 });
  });

  it("pcapng: bad trailing length, unknown interface, caplen beyond the block are skipped; a bad length resyncs at the next section", () => {
    const shb = "0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000";
    const idb = "01000000 14000000 0100 0000 00000000 14000000";
    const epb = (ifId: string, data: string, trailer = "24000000", capLen = "04000000") =>
      `06000000 24000000 ${ifId} 00000000 00000000 ${capLen} 04000000 ${data} ${trailer}`;
    const bytes = hex(`${shb} ${idb}
      ${epb("00000000", "11111111", "20000000")}
      ${epb("05000000", "22222222")}
      ${epb("00000000", "33333333", "24000000", "09000000")}
      ${epb("00000000", "44444444")}
      06000000 23000000 00000000
      ffffffff ${shb} ${idb}
      ${epb("00000000", "55555555")}`);
    const { frames, stats } = readAll(bytes);
    expect(frames.map((f) => f.data)).toEqual(["44444444", "55555555"]);
    expect(stats).toMatchObject({ packets: 2, malformed: 4, sections: 2, skippedBytes: 16, truncatedBytes: 0 });
  });

  it("random bytes behind every magic: no throw, bounded, same frames however the input is split", () => {
    const rand = prng(4);
    const magics = ["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d", "0a0d0d0a", "0a0d0d0a1c0000004d3c2b1a"];
    let framesSeen = 0;
    for (let run = 0; run < 1500; run++) {
      const magic = hex(magics[run % magics.length] as string);
      const body = Uint8Array.from({ length: Math.floor(rand() * 600) }, () => Math.floor(rand() * 256));
      // small lengths make records that parse: bias some u32 fields toward small values
      for (let i = 0; i + 4 <= body.length; i += 4) if (rand() < 0.3) body[i + 1] = body[i + 2] = body[i + 3] = 0;
      const input = new Uint8Array(magic.length + body.length);
      input.set(magic);
      input.set(body, magic.length);
      const whole = readAll(input);
      framesSeen += whole.frames.length;
      expect(whole.frames.length).toBeLessThanOrEqual(input.length / 12);
      expect(whole.stats.bufferedBytes).toBeLessThanOrEqual(MAX_CAPLEN + 64 * 1024);
      const k = Math.floor(rand() * (input.length + 1));
      const split = readChunks([input.subarray(0, k), input.subarray(k)]);
      expect(split.frames).toEqual(whole.frames);
      expect(split.stats).toEqual({ ...whole.stats, bufferedBytes: split.stats.bufferedBytes });
    }
    expect(framesSeen).toBeGreaterThan(50);
  });

  it("random well-shaped records (some lengths, trailers and interfaces wrong): split-invariant, counted", () => {
    const rand = prng(21);
    let framesSeen = 0;
    let malformedSeen = 0;
    for (let run = 0; run < 600; run++) {
      const input = run % 2 ? randomPcapng(rand) : randomPcap(rand);
      const whole = readAll(input);
      framesSeen += whole.frames.length;
      malformedSeen += whole.stats.malformed;
      expect(whole.frames.length).toBeLessThanOrEqual(input.length / 12);
      for (let t = 0; t < 3; t++) {
        const k = Math.floor(rand() * (input.length + 1));
        const j = Math.floor(rand() * (input.length + 1));
        const [a, b] = k < j ? [k, j] : [j, k];
        const split = readChunks([input.subarray(0, a), input.subarray(a, b), input.subarray(b)]);
        expect(split.frames).toEqual(whole.frames);
        expect(split.stats).toEqual({ ...whole.stats, bufferedBytes: split.stats.bufferedBytes });
      }
    }
    // the generator reaches both the frame path and the malformed paths
    expect(framesSeen).toBeGreaterThan(1000);
    expect(malformedSeen).toBeGreaterThan(100);
  });

  it("byte mutations of every fixture: no throw, deterministic, split-invariant", () => {
    const rand = prng(7);
    for (const fx of fixtures) {
      for (let i = 0; i < fx.bytes.length; i++) {
        for (const v of [0x00, 0xff, (fx.bytes[i] as number) ^ 0x80, Math.floor(rand() * 256)]) {
          const m = fx.bytes.slice();
          m[i] = v;
          const a = readAll(m);
          const b = readChunks(
            Array.from({ length: 5 }, (_, j) => m.subarray((j * m.length) / 5, ((j + 1) * m.length) / 5)),
          );
          expect(b.frames).toEqual(a.frames);
          expect(b.status).toEqual(a.status);
          expect(a.frames.length).toBeLessThanOrEqual(m.length / 16);
        }
      }
    }
  });

  it("a huge random input is read with a bounded buffer and ends", () => {
    const rand = prng(11);
    const input = Uint8Array.from({ length: 4 << 20 }, () => Math.floor(rand() * 256));
    input.set(hex("0a0d0d0a1c0000004d3c2b1a"));
    const r = new CaptureFileReader();
    let frames = 0;
    for (let off = 0; off < input.length; off += 65536) {
      r.push(input.subarray(off, off + 65536));
      while (r.next()) frames++;
    }
    r.end();
    const stats = r.stats();
    expect(stats.packets).toBe(frames);
    expect(stats.bufferedBytes).toBeLessThanOrEqual(MAX_CAPLEN + 64 * 1024);
    expect(stats.malformed).toBeGreaterThan(0);
  });
});

describe("PcapWriter", () => {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `kalman-pcap-${process.pid}-`));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("writes the nanosecond pcap byte for byte", () => {
    const w = PcapWriter.toMemory({ linkType: 1, snapLen: 262144 });
    w.write(1700000000, 123456789, hex("deadbeef"), 4);
    w.write(1700000001, 1, hex("cafe"), 1514);
    expect(Buffer.from(w.bytes()).toString("hex")).toBe(Buffer.from(pcapLeNano).toString("hex"));
    expect(w.stats()).toEqual({ packets: 2, truncated: 0, bytes: pcapLeNano.length });
  });

  it("cuts frames at snapLen and keeps the wire length", () => {
    const w = PcapWriter.toMemory({ linkType: 101, snapLen: 3 });
    w.write(5, 6, hex("0102030405"));
    const { frames } = readAll(w.bytes());
    expect(frames).toEqual([
      { linkType: 101, interfaceId: 0, realSec: 5, realNsec: 6, timeNs: 6, capLen: 3, wireLen: 5, data: "010203" },
    ]);
    expect(w.stats().truncated).toBe(1);
  });

  it("rejects a bad link type or snapLen, naming the option", () => {
    expect(() => PcapWriter.toMemory({ linkType: 70000 })).toThrow(/linkType must be an integer 0..65535/);
    expect(() => PcapWriter.toMemory({ linkType: 1, snapLen: 0 })).toThrow(/snapLen must be a positive integer/);
  });

  it("a file of many frames (one bigger than the write buffer) reads back the same, in any chunk size", () => {
    const path = join(dir, "many.pcap");
    const w = PcapWriter.toFile(path, { linkType: 1 });
    const rand = prng(3);
    const expected: Array<[number, number, number, number]> = [];
    for (let i = 0; i < 5000; i++) {
      const len = i === 2500 ? 200_000 : 1 + Math.floor(rand() * 1500);
      const frame = Uint8Array.from({ length: len }, (_, j) => (i + j) & 0xff);
      w.write(1700000000 + Math.floor(i / 1000), (i % 1000) * 1_000_000 + 7, frame, len + (i % 3));
      expected.push([i, len, len + (i % 3), (i % 1000) * 1_000_000 + 7]);
    }
    w.close();
    expect(w.stats().packets).toBe(5000);
    for (const chunkBytes of [4093, 1 << 20]) {
      const got: Array<[number, number, number, number]> = [];
      let dataOk = true;
      const result = readCaptureFile(
        path,
        (r) => {
          while (r.next()) {
            const i = got.length;
            got.push([i, r.capLen, r.wireLen, r.realNsec]);
            const b = r.buffer;
            if (b[r.dataOffset] !== (i & 0xff) || b[r.dataOffset + r.capLen - 1] !== ((i + r.capLen - 1) & 0xff)) {
              dataOk = false;
            }
          }
        },
        { chunkBytes },
      );
      expect(result).toMatchObject({ ok: true, stats: { packets: 5000, malformed: 0, truncatedBytes: 0 } });
      expect(got).toEqual(expected);
      expect(dataOk).toBe(true);
    }
  });

  it("readCaptureFile on a file that is not a capture gives the error result", () => {
    const path = join(dir, "not.pcap");
    writeFileSync(path, "hello world\n");
    const result = readCaptureFile(path, (r) => {
      while (r.next()) throw new Error("no frame expected");
    });
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ error: "not a pcap or pcapng file: magic 0x68656c6c" });
  });
});

describe("PacketRetention", () => {
  const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it("keeps the newest maxPacketsPerFlow packets of a flow, oldest first, cut to maxBytesPerPacket", () => {
    const r = new PacketRetention({ maxPacketsPerFlow: 4, maxBytesPerPacket: 8 });
    for (let i = 0; i < 10; i++) r.add(7, 100 + i, i, 1, frame(i + 5, i), 1000 + i);
    const kept = r.packets(7);
    expect(kept.map((p) => [p.realSec, p.realNsec, p.wireLen, p.data.length, p.data[0]])).toEqual([
      [106, 6, 1006, 8, 6],
      [107, 7, 1007, 8, 7],
      [108, 8, 1008, 8, 8],
      [109, 9, 1009, 8, 9],
    ]);
    expect(r.packets(8)).toEqual([]);
    expect(r.stats()).toMatchObject({ flows: 1, packets: 4, added: 10, overwritten: 6, truncated: 6 });
  });

  it("evicts the least recently used flow when the byte budget is full", () => {
    const slot = 16 + 26;
    const r = new PacketRetention({ maxBytesPerPacket: 16, byteBudget: 10 * slot });
    for (let i = 0; i < 5; i++) r.add(1, i, 0, 1, frame(16, 1));
    for (let i = 0; i < 5; i++) r.add(2, i, 0, 1, frame(16, 2));
    r.add(1, 9, 0, 1, frame(16, 1)); // flow 1 used last: flow 2 is now the LRU... but the budget is full
    // flow 1 needed a 6th slot: flow 2 (least recently used) went
    expect([r.packetCount(1), r.packetCount(2)]).toEqual([6, 0]);
    r.add(3, 0, 0, 1, frame(16, 3));
    expect(r.stats()).toMatchObject({ flows: 2, packets: 7, evictedFlows: 1, evictedPackets: 5 });
    expect(r.stats().bytesAllocated).toBe(10 * slot);
    // forget returns slots for reuse without allocating more
    expect(r.forget(1)).toBe(true);
    expect(r.forget(1)).toBe(false);
    for (let i = 0; i < 9; i++) r.add(4, i, 0, 1, frame(16, 4));
    expect(r.stats()).toMatchObject({
      flows: 2,
      packets: 10,
      forgotten: 1,
      evictedFlows: 1,
      bytesAllocated: 10 * slot,
    });
    // a single flow larger than the whole budget recycles its own oldest packets
    for (let i = 0; i < 30; i++) r.add(5, 100 + i, 0, 1, frame(16, 5));
    expect(r.packets(5).map((p) => p.realSec)).toEqual(Array.from({ length: 10 }, (_, i) => 120 + i));
  });

  it("writePcap merges flows by time into one pcap; packets of another link type are counted, not written", () => {
    const r = new PacketRetention();
    r.add(1, 10, 500, 1, hex("aa01"), 60);
    r.add(2, 10, 100, 1, hex("bb01"));
    r.add(1, 11, 0, 1, hex("aa02"));
    r.add(2, 10, 900, 1, hex("bb02"));
    r.add(2, 10, 950, 113, hex("cc01"));
    r.add(3, 10, 200, 1, hex("dd01"));
    expect(r.linkTypes([1, 2])).toEqual([1, 113]);
    const w = PcapWriter.toMemory({ linkType: 1 });
    expect(r.writePcap([1, 2, 2, 99], w)).toEqual({ written: 4, skippedLinkType: 1 });
    const { frames } = readAll(w.bytes());
    expect(frames.map((f) => [f.realSec, f.realNsec, f.data, f.wireLen])).toEqual([
      [10, 100, "bb01", 2],
      [10, 500, "aa01", 60],
      [10, 900, "bb02", 2],
      [11, 0, "aa02", 2],
    ]);
  });

  it("addFrame copies the cursor's current frame", () => {
    const reader = CaptureFileReader.fromBytes(pcapngTwoInterfaces);
    const r = new PacketRetention();
    while (reader.next()) r.addFrame(reader.interfaceId, reader);
    expect(r.packets(1).map((p) => [p.linkType, Buffer.from(p.data).toString("hex"), p.realNsec])).toEqual([
      [101, "45000014", 123456789],
    ]);
    expect(r.packets(0).map((p) => [p.linkType, Buffer.from(p.data).toString("hex"), p.wireLen])).toEqual([
      [1, "0102030405", 60],
    ]);
  });

  it("rejects bad options, naming the key", () => {
    expect(() => new PacketRetention({ maxPacketsPerFlow: 0 })).toThrow(/maxPacketsPerFlow must be a positive integer/);
    expect(() => new PacketRetention({ byteBudget: 100 })).toThrow(/byteBudget 100 holds no packet/);
  });

  it("100k flows x 30 packets: stays within the byte budget, evictions counted, every packet accounted for", () => {
    const before = process.memoryUsage().arrayBuffers;
    const r = new PacketRetention();
    const pkt = frame(300, 0x5a);
    const flows = 100_000;
    const rounds = 30;
    for (let round = 0; round < rounds; round++) {
      for (let f = 0; f < flows; f++) r.add(f * 7919 + 1, 1700000000 + round, f, 1, pkt, 1500);
    }
    const s = r.stats();
    expect(s.added).toBe(flows * rounds);
    expect(s.bytesAllocated).toBeLessThanOrEqual(s.byteBudget);
    expect(s.bytesUsed).toBeLessThanOrEqual(s.bytesAllocated);
    expect(s.packets * (256 + 26)).toBe(s.bytesUsed);
    // no packet unaccounted for: held + overwritten in rings + lost with evicted flows = added
    expect(s.packets + s.overwritten + s.evictedPackets).toBe(s.added);
    expect(s.evictedFlows).toBeGreaterThan(0);
    expect(s.truncated).toBe(s.added);
    expect(s.packets).toBeGreaterThan(0.99 * Math.floor(s.byteBudget / (256 + 26)));
    // external memory grew by about the budget (slabs) plus the flow index arrays, not per packet
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(s.byteBudget + 16 * 1024 * 1024);
  });

  it("100k single-packet flows in a small budget: exact LRU eviction count", () => {
    const r = new PacketRetention({ maxBytesPerPacket: 64, byteBudget: 1000 * (64 + 26) });
    for (let f = 0; f < 100_000; f++) r.add(f, f, 0, 1, frame(40, 1));
    expect(r.stats()).toMatchObject({ flows: 1000, packets: 1000, evictedFlows: 99_000, evictedPackets: 99_000 });
    // the survivors are the 1000 most recent flows
    expect([r.packetCount(98_999), r.packetCount(99_000), r.packetCount(99_999)]).toEqual([0, 1, 1]);
  });
});
