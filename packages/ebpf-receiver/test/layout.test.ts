// The TypeScript offsets must match the C header (source of truth) and the compiled BPF object.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { DataEvent, PacketRecord, SockEvent, SockIdent } from "../src/layout.generated.js";
import { nativePaths } from "../src/native.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "kalman-layout-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("event layout", () => {
  it("layout.generated.ts is what native/gen_layout.c prints from socket_trace.h and packet_record.h today", () => {
    const bin = join(tmp, "gen_layout");
    execFileSync("cc", ["-I", join(root, "bpf/include"), "-o", bin, join(root, "native/gen_layout.c")]);
    const fresh = execFileSync(bin, { encoding: "utf8" });
    const committed = readFileSync(join(root, "packages/ebpf-receiver/src/layout.generated.ts"), "utf8");
    expect(committed, "run `make -C native layout` and commit the result").toBe(fresh);
  });

  it("matches the struct layouts in the built BPF object's BTF", () => {
    const btf = JSON.parse(
      execFileSync("bpftool", ["-j", "btf", "dump", "file", nativePaths().object], { encoding: "utf8" }),
    );
    type Member = { name: string; bits_offset: number };
    const struct = (name: string) => {
      const t = btf.types.find((x: { kind: string; name?: string }) => x.kind === "STRUCT" && x.name === name);
      expect(t, `struct ${name} in BTF`).toBeDefined();
      return {
        size: t.size as number,
        at: (m: string) => (t.members as Member[]).find((x) => x.name === m)!.bits_offset / 8,
      };
    };
    const data = struct("kl_data_event");
    expect(data.size).toBe(DataEvent.sizeof);
    expect(data.at("enter_ns")).toBe(DataEvent.enterNs);
    expect(data.at("id")).toBe(DataEvent.ident);
    expect(data.at("tcp_seq")).toBe(DataEvent.tcpSeq);
    expect(data.at("cap_len")).toBe(DataEvent.capLen);
    expect(data.at("payload")).toBe(DataEvent.payload);
    const ident = struct("kl_sock_ident");
    expect(ident.size).toBe(SockIdent.sizeof);
    expect(ident.at("tgid")).toBe(SockIdent.tgid);
    expect(ident.at("sport")).toBe(SockIdent.sport);
    expect(ident.at("saddr")).toBe(SockIdent.saddr);
    expect(ident.at("comm")).toBe(SockIdent.comm);
    const sock = struct("kl_sock_event");
    expect(sock.size).toBe(SockEvent.sizeof);
    expect(sock.at("ret")).toBe(SockEvent.ret);
    expect(sock.at("new_state")).toBe(SockEvent.newState);
  });

  it("struct kl_packet: offsets from a separate compile of native/packet_record.h, naturally aligned, 8-byte sized", () => {
    // Compiled on its own (not through gen_layout.c), so a stale generator also fails here.
    const src = join(tmp, "packet_offsets.c");
    const fields: Array<[string, keyof typeof PacketRecord, number]> = [
      ["mono_ns", "monoNs", 8],
      ["real_sec", "realSec", 4],
      ["real_nsec", "realNsec", 4],
      ["rec_len", "recLen", 4],
      ["wire_len", "wireLen", 4],
      ["cap_len", "capLen", 4],
      ["ifindex", "ifindex", 4],
      ["link_type", "linkType", 2],
      ["pkt_type", "pktType", 1],
      ["flags", "flags", 1],
      ["capture_id", "captureId", 2],
    ];
    writeFileSync(
      src,
      `#include <stddef.h>\n#include <stdio.h>\n#include "packet_record.h"\nint main(void) {\n${fields
        .map(([c]) => `printf("%zu %zu\\n", offsetof(struct kl_packet, ${c}), sizeof(((struct kl_packet *)0)->${c}));`)
        .join("\n")}\nprintf("%zu\\n", sizeof(struct kl_packet));\nreturn 0;\n}\n`,
    );
    const bin = join(tmp, "packet_offsets");
    execFileSync("cc", ["-I", join(root, "native"), "-o", bin, src]);
    const lines = execFileSync(bin, { encoding: "utf8" }).trim().split("\n");
    fields.forEach(([c, ts, size], i) => {
      const [offset, width] = (lines[i] ?? "").split(" ").map(Number);
      expect(PacketRecord[ts], `kl_packet.${c}`).toBe(offset);
      expect(width, `kl_packet.${c} size`).toBe(size);
      expect((offset ?? 1) % size, `kl_packet.${c} alignment`).toBe(0);
    });
    expect(Number(lines[fields.length])).toBe(PacketRecord.sizeof);
    expect(PacketRecord.sizeof % 8).toBe(0);
  });
});
