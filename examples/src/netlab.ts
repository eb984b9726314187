import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { collectOutput, waitForStableFile } from "./processes.js";

/**
 * Two network namespaces for packet tests, all created and removed by this code: "a" and "b"
 * joined by a veth pair (198.18.<n>.1 and .2/24, RFC 2544 range), optionally through a bridge
 * namespace, optionally with a VXLAN tunnel on top (198.19.<n>.1 and .2/24, VNI 42).
 * Names carry this process's pid and a counter, so parallel runs never collide.
 */
export interface NetLab {
  /** Namespace names, for `ip netns exec` and /var/run/netns/<name>. */
  ns: { a: string; b: string; bridge?: string };
  /** Underlay addresses of a and b. */
  ip: { a: string; b: string };
  /** Overlay (VXLAN) addresses, when asked for. */
  overlay?: { a: string; b: string };
  /** Interface names: a's and b's veth ends (eth0 in each), and the VXLAN devices. */
  dev: { a: string; b: string; vxlan?: string };
  /** Runs a command inside a namespace and returns stdout. */
  exec(ns: string, cmd: string[], input?: string): string;
  /** Starts a long-running command inside a namespace; stopped (by pid) on destroy(). */
  spawn(ns: string, cmd: string[]): ChildProcess;
  /** spawn(), then waits until its stdout or stderr matches `ready` (e.g. /ready/, tcpdump's /listening on/). */
  start(ns: string, cmd: string[], ready: RegExp, timeoutMs?: number): Promise<ChildProcess>;
  /** Runs a command inside a namespace to its end (async); resolves with stdout, rejects on a non-zero exit. */
  run(ns: string, cmd: string[]): Promise<string>;
  /** Stops one started child (SIGINT lets tcpdump flush) and waits for its exit. */
  stop(child: ChildProcess, signal?: NodeJS.Signals): Promise<void>;
  /**
   * tcpdump inside a namespace into `file` (immediate mode, nanosecond stamps, 8 MiB buffer). stop() waits
   * until the file stops growing, then stops it and fails when tcpdump itself dropped packets.
   */
  tcpdump(
    ns: string,
    iface: string,
    file: string,
    filter: string[],
    snapLen?: number,
  ): Promise<{ stop(): Promise<void> }>;
  /** Stops what it started, removes iptables rules it added, deletes the namespaces. */
  destroy(): Promise<void>;
}

export interface NetLabOptions {
  /** Put a bridge (in its own namespace) between a and b. */
  bridge?: boolean;
  /** Add a VXLAN tunnel (UDP 4789) between a and b over the veth underlay. */
  vxlan?: boolean;
}

let counter = 0;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export async function createNetLab(options: NetLabOptions = {}): Promise<NetLab> {
  const id = `${process.pid % 100000}${String.fromCharCode(97 + (counter++ % 26))}`;
  const subnet = 100 + ((process.pid + counter) % 100);
  const ns = { a: `kl-lab${id}-a`, b: `kl-lab${id}-b`, bridge: options.bridge ? `kl-lab${id}-br` : undefined };
  const children: ChildProcess[] = [];
  const lab: NetLab = {
    ns,
    ip: { a: `198.18.${subnet}.1`, b: `198.18.${subnet}.2` },
    overlay: options.vxlan ? { a: `198.19.${subnet}.1`, b: `198.19.${subnet}.2` } : undefined,
    dev: { a: "eth0", b: "eth0", vxlan: options.vxlan ? "vx0" : undefined },
    exec(where, cmd, input) {
      return execFileSync("ip", ["netns", "exec", where, ...cmd], {
        encoding: "utf8",
        input,
        stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      });
    },
    spawn(where, cmd) {
      const child = spawn("ip", ["netns", "exec", where, ...cmd], { stdio: ["ignore", "pipe", "pipe"] });
      child.stdout?.on("data", () => {});
      child.stderr?.on("data", () => {});
      children.push(child);
      return child;
    },
    async start(where, cmd, ready, timeoutMs = 10_000) {
      const child = lab.spawn(where, cmd);
      let seen = "";
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${cmd.join(" ")}: not ready after ${timeoutMs} ms: ${seen}`)),
          timeoutMs,
        );
        const check = (d: Buffer) => {
          seen += d.toString();
          if (ready.test(seen)) {
            clearTimeout(timer);
            resolve();
          }
        };
        child.stdout?.on("data", check);
        child.stderr?.on("data", check);
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`${cmd.join(" ")} exited with ${code}: ${seen}`));
        });
      });
      return child;
    },
    async run(where, cmd) {
      const child = lab.spawn(where, cmd);
      const output = collectOutput(child);
      const [code] = (await once(child, "exit")) as [number | null];
      if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}: ${output.stderr().slice(-400)}`);
      return output.stdout();
    },
    async stop(child, signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
    async tcpdump(where, iface, file, filter, snapLen = 256) {
      const args = [
        "tcpdump",
        "--immediate-mode",
        "-i",
        iface,
        "-n",
        "-U",
        "-B",
        "8192",
        "--time-stamp-precision",
        "nano",
      ];
      const child = await lab.start(where, [...args, "-s", String(snapLen), "-w", file, ...filter], /listening on/);
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
      });
      return {
        async stop() {
          await waitForStableFile(file);
          await lab.stop(child, "SIGINT");
          const dropped = /^(\d+) packets dropped by kernel/m.exec(stderr);
          if (dropped && dropped[1] !== "0")
            throw new Error(`tcpdump lost packets; a comparison would be wrong: ${stderr}`);
        },
      };
    },
    async destroy() {
      for (const c of children.reverse()) await lab.stop(c);
      for (const name of [ns.a, ns.b, ns.bridge]) {
        if (!name) continue;
        try {
          ip("netns", "del", name); // removes its veths, iptables rules and VXLAN device with it
        } catch {
          // not created
        }
      }
    },
  };
  try {
    ip("netns", "add", ns.a);
    ip("netns", "add", ns.b);
    for (const n of [ns.a, ns.b]) ip("-n", n, "link", "set", "lo", "up");
    if (ns.bridge) {
      ip("netns", "add", ns.bridge);
      ip("-n", ns.bridge, "link", "add", "br0", "type", "bridge");
      ip("-n", ns.bridge, "link", "set", "br0", "up");
      for (const [side, n] of [
        ["a", ns.a],
        ["b", ns.b],
      ] as const) {
        ip("-n", ns.bridge, "link", "add", `p-${side}`, "type", "veth", "peer", "name", "eth0", "netns", n);
        ip("-n", ns.bridge, "link", "set", `p-${side}`, "master", "br0", "up");
      }
    } else {
      ip("-n", ns.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", ns.b);
    }
    ip("-n", ns.a, "addr", "add", `${lab.ip.a}/24`, "dev", "eth0");
    ip("-n", ns.b, "addr", "add", `${lab.ip.b}/24`, "dev", "eth0");
    ip("-n", ns.a, "link", "set", "eth0", "up");
    ip("-n", ns.b, "link", "set", "eth0", "up");
    if (lab.overlay) {
      const pairs = [
        [ns.a, lab.ip.a, lab.ip.b, lab.overlay.a],
        [ns.b, lab.ip.b, lab.ip.a, lab.overlay.b],
      ] as const;
      for (const [n, local, remote, overlay] of pairs) {
        ip(
          "-n",
          n,
          "link",
          "add",
          "vx0",
          "type",
          "vxlan",
          "id",
          "42",
          "dstport",
          "4789",
          "local",
          local,
          "remote",
          remote,
        );
        ip("-n", n, "addr", "add", `${overlay}/24`, "dev", "vx0");
        ip("-n", n, "link", "set", "vx0", "up");
      }
    }
    return lab;
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}
