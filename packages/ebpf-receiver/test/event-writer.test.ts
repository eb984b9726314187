// Pure logic: records written in the kernel's layout read back through the cursor.
import { describe, expect, it } from "vitest";
import { EventBatchWriter } from "../src/event-writer.js";
import { Direction, RecordFlag, RecordType, SocketRole } from "../src/records.js";

describe("EventBatchWriter", () => {
  it("writes data records the cursor reads back field by field, growing its buffer", () => {
    const w = new EventBatchWriter(256);
    const big = 2 ** 40 + 7;
    for (let i = 0; i < 20; i++)
      w.data({
        sockId: big + i,
        tgid: 100 + i,
        tid: 200 + i,
        role: i % 2 ? SocketRole.Client : SocketRole.Server,
        direction: Direction.Egress,
        enterNs: big * 3 + i,
        exitNs: big * 3 + i + 500,
        tcpSeq: i === 3 ? undefined : 0xfffffff0 + i,
        saddr: "10.1.2.3",
        daddr: "198.18.0.9",
        sport: 8080,
        dport: 40000 + i,
        comm: "a-process-name-longer-than-15",
        netns: 4026531840,
        payload: Buffer.from(`GET /${i} HTTP/1.1\r\n\r\n`),
      });
    const batch = w.batch();
    expect(batch.count).toBe(20);
    const c = batch.cursor();
    for (let i = 0; i < 20; i++) {
      expect(c.next()).toBe(true);
      expect(c.type).toBe(RecordType.data);
      expect(c.sockId).toBe(big + i);
      expect(c.tgid).toBe(100 + i);
      expect(c.tid).toBe(200 + i);
      expect(c.role).toBe(i % 2 ? SocketRole.Client : SocketRole.Server);
      expect(c.direction).toBe(Direction.Egress);
      expect(c.enterNs).toBe(big * 3 + i);
      expect(c.exitNs).toBe(big * 3 + i + 500);
      expect((c.flags & RecordFlag.seqValid) !== 0).toBe(i !== 3);
      if (i !== 3) expect(c.tcpSeq).toBe((0xfffffff0 + i) >>> 0);
      expect(c.saddr()).toBe("10.1.2.3");
      expect(c.daddr()).toBe("198.18.0.9");
      expect(c.sport).toBe(8080);
      expect(c.dport).toBe(40000 + i);
      expect(c.comm()).toBe("a-process-name-");
      expect(c.netns).toBe(4026531840);
      expect(c.bytes).toBe(c.payload().length);
      expect(Buffer.from(c.payload()).toString()).toBe(`GET /${i} HTTP/1.1\r\n\r\n`);
    }
    expect(c.next()).toBe(false);
    w.reset();
    expect(w.batch().count).toBe(0);
  });
});
