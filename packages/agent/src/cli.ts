#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runDemo } from "./commands/demo.js";
import { runDoctor } from "./commands/doctor.js";

const USAGE = `kalman — zero-code observability with eBPF and OpenTelemetry

usage: kalman <command> [options]

commands:
  demo      start a small workload, trace it with eBPF and show what was seen
  doctor    check this host's kernel features and privileges, with fixes
  version   print the version

options:
  -h, --help  show help for a command
`;

const HELP: Record<string, string> = {
  demo: "usage: kalman demo [--requests N]\n\nStarts a Node HTTP server and keep-alive client on loopback, traces them with eBPF\nand prints the socket events, their TCP sequence links and the loss counters.\n",
  doctor:
    "usage: kalman doctor\n\nChecks kernel version, BTF, tracefs, privileges, the build, and that the tracer loads.\nExit code 0 when everything passes, 1 otherwise.\n",
  version: "usage: kalman version\n",
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
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
      options: { help: { type: "boolean", short: "h" }, requests: { type: "string" } },
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
    case "demo": {
      const requests = values.requests === undefined ? 4 : Number(values.requests);
      if (!Number.isInteger(requests) || requests < 1 || requests > 1000) {
        process.stderr.write("kalman demo: --requests must be an integer from 1 to 1000\n");
        return 2;
      }
      return runDemo({ requests });
    }
    case "doctor":
      return runDoctor();
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
