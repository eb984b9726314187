// The packet commands end to end: `kalman replay` and `kalman pcap` on a tcpdump capture of real
// HTTP traffic, `kalman pcap` live in a namespace, and `kalman run` exporting flow logs.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkCapturePrivileges } from "@kalman/ebpf-receiver";
import { createNetLab, describePrivileged, type NetLab } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { cli, spawnKalman } from "./support/kalman-process.js";

const HTTP_PORT = 7201;

let dir: string;
let lab: NetLab;
let capture: string;

function kalman(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cli, ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
}

function tsharkCount(file: string, filter?: string): number {
  const out = execFileSync(
    "tshark",
    ["-r", file, ...(filter ? ["-Y", filter] : []), "-T", "fields", "-e", "frame.number"],
    {
      encoding: "utf8",
    },
  );
  return out.split("\n").filter(Boolean).length;
}

describePrivileged(
  "packet commands: replay, pcap, run with packets",
  () => [checkCapturePrivileges()],
  () => {
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), "kalman-packets-"));
      lab = await createNetLab();
      await lab.start(
        lab.ns.b,
        ["python3", "-m", "http.server", "--bind", lab.ip.b, String(HTTP_PORT)],
        /Serving HTTP/,
      );
      capture = join(dir, "http.pcap");
      const tcpdump = await lab.tcpdump(lab.ns.b, "eth0", capture, ["tcp", "port", String(HTTP_PORT)], 65535);
      for (const path of ["/", "/missing", "/"]) {
        await lab.run(lab.ns.a, ["curl", "-s", "-o", "/dev/null", `http://${lab.ip.b}:${HTTP_PORT}${path}`]);
      }
      await tcpdump.stop();
    }, 60_000);

    afterAll(async () => {
      await lab?.destroy();
      rmSync(dir, { recursive: true, force: true });
    });

    it("kalman replay prints the capture's flows and HTTP requests; --json gives typed records", () => {
      const text = kalman(["replay", capture]);
      expect(text.status).toBe(0);
      const flowLines = text.stdout
        .split("\n")
        .filter((l) => l.includes(`→ ${lab.ip.b}:${HTTP_PORT}`) && l.includes("pkts"));
      expect(flowLines).toHaveLength(3);
      for (const l of flowLines) expect(l).toMatch(/ rtt \d+\.\d{3}ms .* fin$/);
      expect(text.stdout.match(/^ +http1 +GET \/ +200 ok/gm)).toHaveLength(2);
      expect(text.stdout.match(/^ +http1 +GET \/missing +404 client_error/gm)).toHaveLength(1);
      expect(text.stdout).toMatch(/replayed \d+ frames .* 0 malformed/);

      const json = kalman(["replay", "--json", capture]);
      expect(json.status).toBe(0);
      const records = json.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      const flows = records.filter((r) => r.type === "flow");
      const requests = records.filter((r) => r.type === "request");
      expect(flows).toHaveLength(3);
      expect(requests).toHaveLength(3);
      expect(requests[0]).toMatchObject({ observationPoint: "network", serverAddr: lab.ip.b, serverPort: HTTP_PORT });
      // packets per flow agree with tshark on the same file
      const total = flows.reduce((s, f) => s + f.packetsTx + f.packetsRx, 0);
      expect(total).toBe(tsharkCount(capture));
      expect(flows[0].startTime).toMatch(/^\d{4}-\d\d-\d\dT/);
    });

    it("kalman replay rejects a file that is not a capture, and survives a truncated one", () => {
      const junk = join(dir, "junk.pcap");
      writeFileSync(junk, Buffer.from("this is not a capture file at all"));
      const bad = kalman(["replay", junk]);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain("not a pcap or pcapng file");
      const cut = join(dir, "cut.pcap");
      const bytes = readFileSync(capture);
      writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      const partial = kalman(["replay", cut]);
      expect(partial.status).toBe(0);
      expect(partial.stdout).toMatch(/truncated bytes/);
    });

    it("kalman pcap --from writes a flow's packets as a pcap tshark reads, and prints its TCP header timeline", () => {
      const replay = kalman(["replay", "--json", capture]);
      const flow = replay.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .find((r) => r.type === "flow");
      const out = join(dir, "one-flow.pcap");
      const res = kalman(["pcap", "--from", capture, "--port", String(flow.clientPort), "--write", out, "--timeline"]);
      expect(res.status).toBe(0);
      expect(res.stdout).toContain(`wrote ${flow.packetsTx + flow.packetsRx} packets of 1 flow(s)`);
      expect(tsharkCount(out)).toBe(flow.packetsTx + flow.packetsRx);
      expect(tsharkCount(out, `tcp.port == ${flow.clientPort}`)).toBe(flow.packetsTx + flow.packetsRx);
      const rows = res.stdout.split("\n").filter((l) => /^\d+ +\d+\.\d{6} /.test(l));
      expect(rows).toHaveLength(flow.packetsTx + flow.packetsRx);
      expect(rows[0]).toMatch(/c→s +SYN +0 +0 +0 +\d+ +MSS=\d+/);
      expect(rows[1]).toMatch(/s→c +SYN, ACK +0 +1 +0 /);
      expect(res.stdout).toMatch(/PSH, ACK +1 +1 +\d+/);

      const none = kalman(["pcap", "--from", capture, "--port", "1", "--timeline"]);
      expect(none.status).toBe(1);
      expect(none.stderr).toContain("no flow matched");
    });

    it("kalman pcap captures live in a namespace and writes the selected flow", async () => {
      const out = join(dir, "live.pcap");
      const k = spawnKalman([
        "pcap",
        "--netns",
        `/var/run/netns/${lab.ns.b}`,
        "--interfaces",
        "eth0",
        "--duration",
        "4",
        "--port",
        String(HTTP_PORT),
        "--write",
        out,
      ]);
      await k.waitForStderr("capturing on");
      expect(k.stderr()).toContain("capturing on eth0@");
      await lab.run(lab.ns.a, ["curl", "-s", "-o", "/dev/null", `http://${lab.ip.b}:${HTTP_PORT}/`]);
      expect(await k.exited).toBe(0);
      const written = Number(/wrote (\d+) packets of 1 flow/.exec(k.stdout())?.[1]);
      expect(written).toBeGreaterThanOrEqual(10); // handshake, request, response, close
      expect(tsharkCount(out)).toBe(written);
      expect(tsharkCount(out, "tcp.flags.syn == 1 && tcp.flags.ack == 0")).toBe(1);
    }, 30_000);

    it("kalman run with packets exports flow logs (with TCP fields) to the embedded logs file", async () => {
      const data = join(dir, "run-data");
      const k = spawnKalman(
        ["run", "--duration", "5", "--quiet", "--data-dir", data, "--output", join(dir, "req.jsonl")],
        {
          env: {
            ...process.env,
            KALMAN_PACKETS_ENABLED: "true",
            KALMAN_PACKETS_NETNS: `/var/run/netns/${lab.ns.b}`,
            KALMAN_PACKETS_INTERFACES: "eth0",
            KALMAN_PACKETS_FILTER: `tcp port ${HTTP_PORT}`,
          },
        },
      );
      await k.waitForStderr("attached and exporting", 10_000);
      expect(k.stderr()).toMatch(/packets on eth0@\/var\/run\/netns\/kl-lab\S+ → flow logs/);
      for (let i = 0; i < 2; i++)
        await lab.run(lab.ns.a, ["curl", "-s", "-o", "/dev/null", `http://${lab.ip.b}:${HTTP_PORT}/`]);
      expect(await k.exited).toBe(0);
      const files = readdirSync(data).filter((f) => f.startsWith("logs"));
      const logs = files
        .flatMap((f) => readFileSync(join(data, f), "utf8").trim().split("\n"))
        .flatMap((line) => JSON.parse(line).resourceLogs)
        .flatMap((rl: { scopeLogs: { logRecords: unknown[] }[] }) =>
          rl.scopeLogs.flatMap((sl) => sl.logRecords),
        ) as Array<{
        body: { stringValue: string };
        attributes: Array<{ key: string; value: Record<string, unknown> }>;
      }>;
      const flows = logs.filter((l) =>
        l.attributes.some((a) => a.key === "log.event.name" && a.value.stringValue === "kalman.flow"),
      );
      expect(flows).toHaveLength(2);
      for (const f of flows) {
        const attr = (key: string) => f.attributes.find((a) => a.key === key)?.value;
        expect(f.body.stringValue).toMatch(
          new RegExp(
            `^tcp ${lab.ip.a.replaceAll(".", "\\.")}:\\d+ → ${lab.ip.b.replaceAll(".", "\\.")}:${HTTP_PORT} \\[eth0\\] fin `,
          ),
        );
        expect(Number(attr("server.port")?.intValue)).toBe(HTTP_PORT);
        expect(Number(attr("kalman.flow.packets_tx")?.intValue)).toBeGreaterThan(3);
        expect(Number(attr("kalman.tcp.rtt_ns")?.intValue)).toBeGreaterThan(0);
      }

      // network spans: curl's CLIENT span → the request as seen on eth0 (INTERNAL) → the server's SERVER span
      type OtlpSpan = {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        kind: number;
        name: string;
        attributes: Array<{ key: string; value: Record<string, unknown> }>;
      };
      const spans = readdirSync(data)
        .filter((f) => f.startsWith("traces"))
        .flatMap((f) => readFileSync(join(data, f), "utf8").trim().split("\n"))
        .flatMap((line) => JSON.parse(line).resourceSpans)
        .flatMap((rs: { scopeSpans: { spans: OtlpSpan[] }[] }) => rs.scopeSpans.flatMap((ss) => ss.spans));
      const attrOf = (s: OtlpSpan, k: string) => s.attributes.find((a) => a.key === k)?.value;
      const hops = spans.filter((s) => s.kind === 1 && attrOf(s, "network.interface.name")?.stringValue === "eth0");
      expect(hops).toHaveLength(2);
      for (const hop of hops) {
        const client = spans.find((s) => s.spanId === hop.parentSpanId);
        const server = spans.find((s) => s.parentSpanId === hop.spanId);
        expect(client).toMatchObject({ kind: 3, traceId: hop.traceId, name: hop.name });
        expect(server).toMatchObject({ kind: 2, traceId: hop.traceId });
        expect(attrOf(hop, "kalman.observation_point")?.stringValue).toBe("network");
        expect(attrOf(hop, "http.request.method")?.stringValue).toBe("GET");
      }
    }, 60_000);
  },
);
