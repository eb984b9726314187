import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { containerFromCgroup } from "@kalman/span-correlator";

/** What selection rules look at, read from /proc once per decision. Fields are undefined when unreadable. */
export interface ProcessFacts {
  pid: number;
  exe?: string;
  argv: string[];
  containerId?: string;
}

export function readProcessFacts(pid: number, procRoot = "/proc"): ProcessFacts {
  const facts: ProcessFacts = { pid, argv: [] };
  try {
    facts.exe = readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch {
    // gone, a kernel thread, or not ours to read
  }
  try {
    facts.argv = readFileSync(`${procRoot}/${pid}/cmdline`, "latin1").split("\0").filter(Boolean);
  } catch {
    // gone
  }
  try {
    facts.containerId = containerFromCgroup(readFileSync(`${procRoot}/${pid}/cgroup`, "latin1"))?.id;
  } catch {
    // gone
  }
  return facts;
}

/** A socket with a local port that is open for others: a TCP listener or an unconnected bound UDP socket. */
export interface OpenSocket {
  port: number;
  inode: number;
}

const TCP_LISTEN = "0A";
const UDP_UNCONNECTED = "07";

/** Open sockets of one network namespace, from /proc/<pid>/net/{tcp,tcp6,udp,udp6} (any pid inside it). */
export function readOpenSockets(pid: number, procRoot = "/proc"): OpenSocket[] {
  const out: OpenSocket[] = [];
  for (const [file, state] of [
    ["tcp", TCP_LISTEN],
    ["tcp6", TCP_LISTEN],
    ["udp", UDP_UNCONNECTED],
    ["udp6", UDP_UNCONNECTED],
  ] as const) {
    let text: string;
    try {
      text = readFileSync(`${procRoot}/${pid}/net/${file}`, "latin1");
    } catch {
      continue;
    }
    const lines = text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const f = (lines[i] as string).trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retr uid timeout inode
      if (f.length < 10 || f[3] !== state) continue;
      const local = f[1] as string;
      const remote = f[2] as string;
      if (file.startsWith("udp") && !remote.endsWith(":0000")) continue;
      const port = Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16);
      const inode = Number(f[9]);
      if (port > 0 && inode > 0) out.push({ port, inode });
    }
  }
  return out;
}

/** Inodes of the sockets a process holds (from /proc/<pid>/fd; at most maxFds are looked at). */
export function socketInodes(pid: number, procRoot = "/proc", maxFds = 65536): Set<number> {
  const held = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`${procRoot}/${pid}/fd`);
  } catch {
    return held;
  }
  const n = Math.min(fds.length, maxFds);
  for (let i = 0; i < n; i++) {
    try {
      const link = readlinkSync(`${procRoot}/${pid}/fd/${fds[i]}`);
      if (link.startsWith("socket:[")) held.add(Number(link.slice(8, -1)));
    } catch {
      // closed meanwhile
    }
  }
  return held;
}

/** The network namespace id of a process ("net:[4026531840]" -> "4026531840"), if readable. */
export function netnsOf(pid: number, procRoot = "/proc"): string | undefined {
  try {
    return /\[(\d+)\]/.exec(readlinkSync(`${procRoot}/${pid}/ns/net`))?.[1];
  } catch {
    return undefined;
  }
}
