#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Values = Record<string, string | boolean | undefined>;

/**
 * One subcommand. `help` and `options` may be loaded on demand (run's come from the config schema);
 * `main` imports the command's code only when it runs, so --help and version stay fast.
 */
interface Command {
  summary: string;
  help: string | (() => Promise<string>);
  options?: Options | (() => Promise<Options>);
  /** Positional arguments accepted (e.g. a pcap file); default none. */
  positionals?: boolean;
  main(values: Values, positionals: string[]): Promise<number>;
}

class UsageError extends Error {}

const positiveInts = (name: string, v: string | boolean | undefined): number[] | undefined => {
  if (typeof v !== "string") return undefined;
  const nums = v.split(",").map((x) => Number(x.trim()));
  if (nums.some((n) => !Number.isInteger(n) || n <= 0))
    throw new UsageError(`--${name} must be a comma-separated list of positive integers, got '${v}'`);
  return nums;
};

/** Options of the live terminal views (top, traces). */
const LIVE_VIEW_HELP = `  --ports LIST        only sockets with these local or remote ports
  --pids LIST         only these processes
  --interval SECONDS  seconds between frames (default 1)
  --iterations N      print N frames and exit (default: until Ctrl-C)
  --no-clear          print frames one after another instead of redrawing
`;
const LIVE_VIEW_OPTIONS: Options = {
  ports: { type: "string" },
  pids: { type: "string" },
  interval: { type: "string" },
  iterations: { type: "string" },
  "no-clear": { type: "boolean" },
};

function liveView(values: Values) {
  const intervalS = values.interval === undefined ? 1 : Number(values.interval);
  if (!(intervalS >= 0.2 && intervalS <= 60))
    throw new UsageError("--interval must be a number of seconds from 0.2 to 60");
  const iterations = values.iterations === undefined ? undefined : Number(values.iterations);
  if (iterations !== undefined && !(Number.isInteger(iterations) && iterations > 0))
    throw new UsageError("--iterations must be a positive integer");
  return {
    ports: positiveInts("ports", values.ports),
    pids: positiveInts("pids", values.pids),
    intervalS,
    iterations,
    clear: values["no-clear"] === true ? false : undefined,
  };
}

const COMMANDS: Record<string, Command> = {
  run: {
    summary: "trace this host: request lines live, records as JSON lines, traces/logs/metrics over OTLP",
    help: async () => (await import("./config/flags.js")).runHelp(),
    options: async () => {
      const { runFlags } = await import("./config/flags.js");
      return Object.fromEntries(runFlags().map((f) => [f.name, { type: f.type }]));
    },
    main: async (values) => (await import("./commands/run-cli.js")).runCommand(values),
  },
  demo: {
    summary: "start a demo topology, trace it with eBPF and show a request's trace",
    help: "usage: kalman demo [--requests N]\n\nStarts a five-host topology in network namespaces (nginx, a Node frontend, a Python API,\nRedis, PostgreSQL, dnsmasq), traces it with eBPF while sending N requests (default 5), and\nprints one request's trace as a waterfall, the link statistics and where the records went.\n",
    options: { requests: { type: "string" } },
    main: async (values) => {
      const requests = values.requests === undefined ? 5 : Number(values.requests);
      if (!Number.isInteger(requests) || requests < 1 || requests > 1000)
        throw new UsageError("--requests must be an integer from 1 to 1000");
      return (await import("./commands/demo.js")).runDemo({ requests });
    },
  },
  top: {
    summary: "live service map and endpoints: request rate, errors, p50/p99",
    help: `usage: kalman top [options]

A live view, refreshed every second: the service map's edges (client → server) and the busiest
endpoints, each with requests/s, error % and p50 and p99 latency over the last 10 s. Works over SSH.

options:
${LIVE_VIEW_HELP}`,
    options: LIVE_VIEW_OPTIONS,
    main: async (values) => {
      const { ports, pids, intervalS, iterations, clear } = liveView(values);
      const { runTop } = await import("./commands/top.js");
      return runTop({ ports, pids, intervalS, iterations, clear });
    },
  },
  traces: {
    summary: "live list of recent traces (root, services, spans, duration, errors), or one trace's waterfall",
    help: `usage: kalman traces [options]

A live view, refreshed every second, of the most recently completed traces, newest first: start
time, trace id, duration, span count, error flag, the root span and the services it crossed. A trace
is complete once no span of it has arrived for 0.5 s. Works over SSH.

options:
  --trace ID          show this trace's waterfall (a trace id or its first hex digits) once it
                      completes, then exit (exit 1 if --iterations frames pass without it)
  --last              show the waterfall of the most recent trace instead of the list
${LIVE_VIEW_HELP}`,
    options: {
      trace: { type: "string" },
      last: { type: "boolean" },
      ...LIVE_VIEW_OPTIONS,
    },
    main: async (values) => {
      const { ports, pids, intervalS, iterations, clear } = liveView(values);
      const traceId = typeof values.trace === "string" ? values.trace.trim().toLowerCase() : undefined;
      if (traceId !== undefined && !/^[0-9a-f]{4,32}$/.test(traceId))
        throw new UsageError("--trace must be a trace id: 4 to 32 hex digits (its start is enough)");
      if (traceId !== undefined && values.last === true)
        throw new UsageError("--trace and --last both pick the trace to show: give one");
      const { runTraces } = await import("./commands/traces.js");
      return runTraces({
        ports,
        pids,
        intervalS,
        iterations,
        traceId,
        last: values.last === true,
        clear,
      });
    },
  },
  replay: {
    summary: "run a pcap/pcapng file through the packet path offline: flows and requests",
    help: `usage: kalman replay FILE [options]

Reads a pcap or pcapng capture (tcpdump -w, Wireshark) and runs it through the same packet path as
live capture: decoding (Ethernet, VLAN, IPv4/IPv6, TCP/UDP, VXLAN), the L4 flow table with TCP
metrics (RTT, srt/art, retransmissions, zero windows, resets, close types) and the L7 parsers.
Prints one line per flow log record and per request record.

options:
  --json              one JSON object per line ({"type":"flow"|"request", ...}) instead of tables
  --protocols LIST    only these L7 protocols (e.g. http1,redis)
  --flow-log-interval SECONDS  flow log period while a flow lives, in capture time (default 60)
  --raw               keep secrets (Authorization, query strings, SQL literals); off by default
`,
    positionals: true,
    options: {
      json: { type: "boolean" },
      protocols: { type: "string" },
      "flow-log-interval": { type: "string" },
      raw: { type: "boolean" },
    },
    main: async (values, positionals) => {
      if (positionals.length !== 1) throw new UsageError("give exactly one capture file: kalman replay FILE");
      const interval = values["flow-log-interval"] === undefined ? undefined : Number(values["flow-log-interval"]);
      if (interval !== undefined && !(interval > 0))
        throw new UsageError("--flow-log-interval must be a positive number of seconds");
      const { replayCapture } = await import("./commands/replay.js");
      return replayCapture({
        file: positionals[0] as string,
        json: values.json === true,
        protocols:
          typeof values.protocols === "string"
            ? (values.protocols.split(",").map((p) => p.trim()) as never)
            : undefined,
        flowLogIntervalS: interval,
        raw: values.raw === true,
      });
    },
  },
  pcap: {
    summary: "keep the recent packets of each flow; write a flow's packets as .pcap or its TCP header timeline",
    help: `usage: kalman pcap (--from FILE | [--netns PATH]... [--interfaces LIST]) [selection] [output]

Watches packets (live with AF_PACKET, or from a capture file), keeps the most recent packets of
every flow in a bounded ring, then writes the selected flows' packets as a pcap (Wireshark and
tshark open it) and/or prints each selected TCP connection's header timeline: relative time,
direction, flags, relative seq/ack, payload, window and options, at every interface it crossed.

source:
  --from FILE             a pcap/pcapng file instead of live capture
  --netns PATH            capture in this network namespace (/var/run/netns/NAME, /proc/PID/ns/net); repeatable
  --interfaces LIST       interface names or globs (e.g. eth0,veth*); default all
  --filter EXPR           tcpdump filter applied in the kernel (e.g. "tcp port 80")
  --duration SECONDS      live capture length (default: until Ctrl-C)
selection (all flows when none is given):
  --flow ID               a flow id as printed (#12)
  --port N                flows with this client or server port
  --host ADDR             flows with this client or server address
output:
  --write FILE            write the selected flows' packets as a pcap
  --timeline              print the TCP header timeline of each selected connection
  --packets-per-flow N    packets kept per flow (default 256)
  --snap-len N            bytes kept per packet (default 256)
`,
    options: {
      from: { type: "string" },
      netns: { type: "string", multiple: true },
      interfaces: { type: "string" },
      filter: { type: "string" },
      duration: { type: "string" },
      flow: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      write: { type: "string" },
      timeline: { type: "boolean" },
      "packets-per-flow": { type: "string" },
      "snap-len": { type: "string" },
    },
    main: async (values) => {
      const int = (key: string, min: number, max: number): number | undefined => {
        const v = values[key];
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isInteger(n) || n < min || n > max)
          throw new UsageError(`--${key} must be an integer from ${min} to ${max}`);
        return n;
      };
      const duration = values.duration === undefined ? undefined : Number(values.duration);
      if (duration !== undefined && !(duration > 0))
        throw new UsageError("--duration must be a positive number of seconds");
      const namespaces = (values.netns as unknown as string[] | undefined) ?? [];
      const interfaces =
        typeof values.interfaces === "string" ? values.interfaces.split(",").map((i) => i.trim()) : undefined;
      if (values.from !== undefined && (namespaces.length || interfaces || values.filter !== undefined))
        throw new UsageError("--from reads a file: --netns, --interfaces and --filter are for live capture");
      const { pcapCommand } = await import("./commands/pcap.js");
      return pcapCommand({
        from: typeof values.from === "string" ? values.from : undefined,
        targets:
          namespaces.length || interfaces
            ? (namespaces.length ? namespaces : [""]).map((netns) => ({ netns, interfaces }))
            : undefined,
        filter: typeof values.filter === "string" ? values.filter : undefined,
        durationS: duration,
        flowId: int("flow", 1, Number.MAX_SAFE_INTEGER),
        port: int("port", 1, 65535),
        host: typeof values.host === "string" ? values.host : undefined,
        write: typeof values.write === "string" ? values.write : undefined,
        timeline: values.timeline === true,
        packetsPerFlow: int("packets-per-flow", 1, 65536),
        snapLen: int("snap-len", 64, 65535),
      });
    },
  },
  doctor: {
    summary: "check this host's kernel features and privileges, with fixes",
    help: "usage: kalman doctor\n\nChecks kernel version, BTF, tracefs, privileges, memlock and the build; then loads and attaches the\ntracer (tracepoints), attaches the TLS uprobes to real binaries (libssl, Node's OpenSSL) and opens an\nAF_PACKET capture, detaching each at once. Exit code 0 when everything passes, 1 otherwise.\n",
    main: async () => (await import("./commands/doctor.js")).runDoctor(),
  },
  version: {
    summary: "print the version",
    help: "usage: kalman version\n",
    main: async () => {
      process.stdout.write(`kalman ${version()}\n`);
      return 0;
    },
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`);
  return `kalman — zero-code observability with eBPF and OpenTelemetry

usage: kalman <command> [options]

commands:
${lines.join("\n")}

options:
  -h, --help  show help for a command

Exit codes: 0 success; 1 failure at run time or a failed doctor check; 2 a usage or configuration error,
or a host that cannot load the tracer (kalman doctor says why).
`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kalman ${argv[0] ?? ""}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    process.stderr.write(`kalman: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const help = async () => (typeof command.help === "string" ? command.help : await command.help());
  const options = typeof command.options === "function" ? await command.options() : (command.options ?? {});
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: command.positionals === true,
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`kalman ${name}: ${(e as Error).message}\n\n${await help()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(await help());
    return 0;
  }
  return command.main(values, positionals);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`kalman: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  },
);
