#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const USAGE = `kalman — zero-code observability with eBPF and OpenTelemetry

usage: kalman <command> [options]

commands:
  run       trace this host: print request records live and write them as JSON lines
  demo      start a demo topology, trace it with eBPF and show a request's trace
  top       live service map and endpoints: request rate, errors, p50/p99
  doctor    check this host's kernel features and privileges, with fixes
  version   print the version

options:
  -h, --help  show help for a command
`;

const HELP: Record<string, string> = {
  run: `usage: kalman run [options]

Traces TCP/UDP sockets with eBPF, parses HTTP/1 (and the other supported protocols),
prints one line per request and appends each request record as JSON to --output.

options:
  --ports LIST        only sockets with these local or remote ports (e.g. 80,8080)
  --pids LIST         only these processes
  --protocols LIST    only these protocols (e.g. http1,redis)
  --output FILE       JSON-lines file (default kalman-data/requests.jsonl)
  --duration SECONDS  stop after this long (default: until Ctrl-C)
  --capture-bytes N   payload bytes captured per syscall (default 1024, max 16384)
  --raw               keep secrets (Authorization, query strings, SQL literals); off by default
  --prometheus-port N serve RED and service-graph metrics on 127.0.0.1:N/metrics (off by default)
  --no-tls            do not capture TLS plaintext (uprobes on OpenSSL, Node and Go TLS; on by default)
  --tls-pids LIST     capture TLS plaintext only in these processes
  --quiet             do not print request lines
`,
  demo: "usage: kalman demo [--requests N]\n\nStarts a five-host topology in network namespaces (nginx, a Node frontend, a Python API,\nRedis, PostgreSQL, dnsmasq), traces it with eBPF while sending N requests (default 5), and\nprints one request's trace as a waterfall, the link statistics and where the records went.\n",
  doctor:
    "usage: kalman doctor\n\nChecks kernel version, BTF, tracefs, privileges, the build, and that the tracer loads.\nExit code 0 when everything passes, 1 otherwise.\n",
  version: "usage: kalman version\n",
  top: `usage: kalman top [options]

A live view, refreshed every second: the service map's edges (client → server) and the busiest
endpoints, each with requests/s, error %, p50 and p99 latency over the last 10 s. Works over SSH.

options:
  --ports LIST        only sockets with these local or remote ports
  --pids LIST         only these processes
  --interval SECONDS  seconds between frames (default 1)
  --iterations N      print N frames and exit (default: until Ctrl-C)
  --no-clear          print frames one after another instead of redrawing
`,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kalman: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (!(command in HELP)) {
    process.stderr.write(`kalman: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        help: { type: "boolean", short: "h" },
        requests: { type: "string" },
        ports: { type: "string" },
        pids: { type: "string" },
        protocols: { type: "string" },
        output: { type: "string" },
        duration: { type: "string" },
        "capture-bytes": { type: "string" },
        raw: { type: "boolean" },
        "prometheus-port": { type: "string" },
        interval: { type: "string" },
        iterations: { type: "string" },
        "no-clear": { type: "boolean" },
        "no-tls": { type: "boolean" },
        "tls-pids": { type: "string" },
        quiet: { type: "boolean" },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`kalman ${command}: ${(e as Error).message}\n\n${HELP[command]}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP[command] ?? USAGE);
    return 0;
  }
  switch (command) {
    case "run": {
      const list = (key: string): number[] | undefined => {
        const v = values[key];
        if (typeof v !== "string") return undefined;
        const nums = v.split(",").map((x) => Number(x.trim()));
        if (nums.some((n) => !Number.isInteger(n) || n <= 0))
          throw new UsageError(`--${key} must be a comma-separated list of positive integers, got '${v}'`);
        return nums;
      };
      const duration = values.duration === undefined ? undefined : Number(values.duration);
      if (duration !== undefined && !(duration > 0))
        throw new UsageError("--duration must be a positive number of seconds");
      const capture = values["capture-bytes"] === undefined ? undefined : Number(values["capture-bytes"]);
      if (capture !== undefined && !(Number.isInteger(capture) && capture >= 0 && capture <= 16384)) {
        throw new UsageError("--capture-bytes must be an integer from 0 to 16384");
      }
      // commands load on demand: --help and version stay fast
      const prom = values["prometheus-port"] === undefined ? undefined : Number(values["prometheus-port"]);
      if (prom !== undefined && !(Number.isInteger(prom) && prom > 0 && prom < 65536)) {
        throw new UsageError("--prometheus-port must be a port number from 1 to 65535");
      }
      const { runAgent } = await import("./commands/run.js");
      return runAgent({
        ports: list("ports"),
        pids: list("pids"),
        protocols:
          typeof values.protocols === "string"
            ? (values.protocols.split(",").map((p) => p.trim()) as never)
            : undefined,
        output: typeof values.output === "string" ? values.output : "kalman-data/requests.jsonl",
        durationS: duration,
        captureBytes: capture,
        raw: values.raw === true,
        print: values.quiet !== true,
        prometheusPort: prom,
        tls: values["no-tls"] === true ? false : { pids: list("tls-pids") },
      });
    }
    case "top": {
      const ports = typeof values.ports === "string" ? values.ports.split(",").map(Number) : undefined;
      const pids = typeof values.pids === "string" ? values.pids.split(",").map(Number) : undefined;
      for (const [name, list] of [
        ["ports", ports],
        ["pids", pids],
      ] as const) {
        if (list?.some((n) => !Number.isInteger(n) || n <= 0))
          throw new UsageError(`--${name} must be a comma-separated list of positive integers`);
      }
      const intervalS = values.interval === undefined ? 1 : Number(values.interval);
      if (!(intervalS >= 0.2 && intervalS <= 60))
        throw new UsageError("--interval must be a number of seconds from 0.2 to 60");
      const iterations = values.iterations === undefined ? undefined : Number(values.iterations);
      if (iterations !== undefined && !(Number.isInteger(iterations) && iterations > 0))
        throw new UsageError("--iterations must be a positive integer");
      const { runTop } = await import("./commands/top.js");
      return runTop({ ports, pids, intervalS, iterations, clear: values["no-clear"] === true ? false : undefined });
    }
    case "demo": {
      const requests = values.requests === undefined ? 5 : Number(values.requests);
      if (!Number.isInteger(requests) || requests < 1 || requests > 1000) {
        process.stderr.write("kalman demo: --requests must be an integer from 1 to 1000\n");
        return 2;
      }
      const { runDemo } = await import("./commands/demo.js");
      return runDemo({ requests });
    }
    case "doctor": {
      const { runDoctor } = await import("./commands/doctor.js");
      return runDoctor();
    }
    case "version":
      process.stdout.write(`kalman ${version()}\n`);
      return 0;
  }
  return 2;
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
