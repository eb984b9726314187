// PacketCursor over hand-built records (layout from native/packet_record.h via layout.generated.ts).
import { describe, expect, it } from "vitest";
import { LinkType, PacketBatch, PacketFlag, PacketType } from "../src/index.js";
import { PacketRecord } from "../src/layout.generated.js";

function record(frame: Buffer, fields: { monoNs: number; wireLen?: number; captureId?: number }): Buffer {
  const recLen = (PacketRecord.sizeof + frame.length + 7) & ~7;
  const b = Buffer.alloc(recLen);
  b.writeUInt32LE(fields.monoNs % 2 ** 32, PacketRecord.monoNs);
  b.writeUInt32LE(Math.floor(fields.monoNs / 2 ** 32), PacketRecord.monoNs + 4);
  b.writeUInt32LE(1_700_000_000, PacketRecord.realSec);
  b.writeUInt32LE(123, PacketRecord.realNsec);
  b.writeUInt32LE(recLen, PacketRecord.recLen);
  b.writeUInt32LE(fields.wireLen ?? frame.length, PacketRecord.wireLen);
  b.writeUInt32LE(frame.length, PacketRecord.capLen);
  b.writeUInt32LE(7, PacketRecord.ifindex);
  b.writeUInt16LE(LinkType.ethernet, PacketRecord.linkType);
  b.writeUInt8(PacketType.outgoing, PacketRecord.pktType);
  b.writeUInt8((fields.wireLen ?? 0) > frame.length ? PacketFlag.truncated : 0, PacketRecord.flags);
  b.writeUInt16LE(fields.captureId ?? 0, PacketRecord.captureId);
  frame.copy(b, PacketRecord.sizeof);
  return b;
}

describe("PacketCursor", () => {
  it("walks records, reads every field, and views frames without copying", () => {
    const a = record(Buffer.from("first frame"), { monoNs: 2 ** 40 + 5, wireLen: 1500, captureId: 3 });
    const b = record(Buffer.from("second"), { monoNs: 9 });
    const buf = Buffer.concat([a, b]);
    const c = new PacketBatch(buf, buf.length, 2).cursor();
    expect(c.next()).toBe(true);
    expect([c.monoNs, c.realSec, c.realNsec, c.wireLen, c.capLen, c.ifindex]).toEqual([
      2 ** 40 + 5,
      1_700_000_000,
      123,
      1500,
      11,
      7,
    ]);
    expect([c.linkType, c.pktType, c.flags, c.captureId]).toEqual([
      LinkType.ethernet,
      PacketType.outgoing,
      PacketFlag.truncated,
      3,
    ]);
    expect(Buffer.from(c.data()).toString()).toBe("first frame");
    expect(c.dataOffset).toBe(PacketRecord.sizeof);
    expect(c.data().buffer).toBe(buf.buffer); // a view, not a copy
    const firstAt = c.offset;
    expect(c.next()).toBe(true);
    expect(Buffer.from(c.data()).toString()).toBe("second");
    expect(c.next()).toBe(false);
    expect(c.seek(firstAt)).toBe(true);
    expect(c.capLen).toBe(11);
  });

  it("stops, without throwing, at a cut or malformed record", () => {
    const good = record(Buffer.from("ok"), { monoNs: 1 });
    const cut = record(Buffer.from("cut off here"), { monoNs: 2 });
    const buf = Buffer.concat([good, cut.subarray(0, cut.length - 8)]);
    const c = new PacketBatch(buf, buf.length, 2).cursor();
    expect(c.next()).toBe(true);
    expect(c.next()).toBe(false);

    for (const [field, value] of [
      [PacketRecord.recLen, 12], // not a multiple of 8
      [PacketRecord.recLen, 8], // smaller than the header
      [PacketRecord.capLen, 4000], // frame longer than the record
    ] as const) {
      const bad = Buffer.from(good);
      bad.writeUInt32LE(value, field);
      expect(new PacketBatch(bad, bad.length, 1).cursor().next()).toBe(false);
    }
    expect(new PacketBatch(Buffer.alloc(0), 0, 0).cursor().next()).toBe(false);
  });
});
