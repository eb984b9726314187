// Pure decoding logic, on hand-built buffers.
import { describe, expect, it } from "vitest";
import { DataEvent, RecordHeader, SockEvent, SockIdent } from "../src/layout.generated.js";
import { Direction, EventBatch, formatAddress, RecordType, SocketRole } from "../src/records.js";

function dataRecord(payload: string, opts: { tgid: number; enterNs: number }): Buffer {
  const size = DataEvent.sizeof + payload.length;
  const b = Buffer.alloc((size + 7) & ~7);
  b.writeUInt16LE(RecordType.data, RecordHeader.type);
  b.writeUInt32LE(size, RecordHeader.size);
  b.writeUInt32LE(opts.enterNs % 2 ** 32, DataEvent.enterNs);
  b.writeUInt32LE(Math.floor(opts.enterNs / 2 ** 32), DataEvent.enterNs + 4);
  const id = DataEvent.ident;
  b.writeUInt32LE(opts.tgid, id + SockIdent.tgid);
  b.writeUInt16LE(8080, id + SockIdent.sport);
  b.writeUInt8(2, id + SockIdent.family);
  b.writeUInt8(SocketRole.Server, id + SockIdent.role);
  Buffer.from([10, 1, 2, 3]).copy(b, id + SockIdent.saddr);
  b.write("nginx", id + SockIdent.comm, "latin1");
  b.writeUInt32LE(payload.length, DataEvent.capLen);
  b.writeUInt32LE(payload.length, DataEvent.bytes);
  b.writeUInt8(Direction.Ingress, DataEvent.direction);
  b.write(payload, DataEvent.payload, "latin1");
  return b;
}

function sockRecord(ret: number): Buffer {
  const b = Buffer.alloc(SockEvent.sizeof);
  b.writeUInt16LE(RecordType.sock, RecordHeader.type);
  b.writeUInt32LE(SockEvent.sizeof, RecordHeader.size);
  b.writeInt32LE(ret, SockEvent.ret);
  b.writeUInt32LE(77, SockEvent.ident + SockIdent.tgid);
  return b;
}

describe("RecordCursor", () => {
  it("walks mixed records with 8-byte padding and reads every field without BigInt", () => {
    const big = 2 ** 40 + 12345; // above 2^32: needs the high word
    const buf = Buffer.concat([
      dataRecord("GET / HTTP/1.1\r\n", { tgid: 42, enterNs: big }),
      sockRecord(-111),
      dataRecord("x", { tgid: 43, enterNs: 5 }),
    ]);
    const c = new EventBatch(buf, buf.length, 3).cursor();
    expect(c.next()).toBe(true);
    expect(c.type).toBe(RecordType.data);
    expect(c.tgid).toBe(42);
    expect(c.enterNs).toBe(big);
    expect(c.sport).toBe(8080);
    expect(c.saddr()).toBe("10.1.2.3");
    expect(c.comm()).toBe("nginx");
    expect(c.role).toBe(SocketRole.Server);
    expect(c.direction).toBe(Direction.Ingress);
    expect(c.payload().toString()).toBe("GET / HTTP/1.1\r\n");
    expect(c.next()).toBe(true);
    expect(c.type).toBe(RecordType.sock);
    expect(c.ret).toBe(-111);
    expect(c.tgid).toBe(77);
    expect(c.next()).toBe(true);
    expect(c.payload().toString()).toBe("x");
    expect(c.next()).toBe(false);
    c.rewind();
    expect(c.next() && c.tgid).toBe(42);
  });

  it("stops at a record whose size is malformed instead of reading past the batch", () => {
    const good = dataRecord("abc", { tgid: 1, enterNs: 1 });
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(1 << 30, RecordHeader.size);
    const zero = Buffer.alloc(16); // size 0 must not loop forever
    for (const tail of [bad, zero]) {
      const buf = Buffer.concat([good, tail]);
      const c = new EventBatch(buf, buf.length, 2).cursor();
      expect(c.next()).toBe(true);
      expect(c.next()).toBe(false);
    }
  });

  it("payload views share memory with the batch (zero-copy)", () => {
    const buf = dataRecord("hello", { tgid: 1, enterNs: 1 });
    const c = new EventBatch(buf, buf.length, 1).cursor();
    c.next();
    expect(c.payload().buffer).toBe(buf.buffer);
  });
});

describe("formatAddress", () => {
  it("formats IPv4, IPv6 with zero compression, and v4-mapped addresses", () => {
    expect(formatAddress(Uint8Array.from([127, 0, 0, 1]))).toBe("127.0.0.1");
    const lo6 = new Uint8Array(16);
    lo6[15] = 1;
    expect(formatAddress(lo6)).toBe("::1");
    const doc = Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x2a]);
    expect(formatAddress(doc)).toBe("2001:db8::2a");
    const mapped = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1]);
    expect(formatAddress(mapped)).toBe("::ffff:198.18.0.1");
  });
});
