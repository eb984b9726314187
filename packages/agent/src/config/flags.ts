import { SELECTION_FLAGS } from "./load.js";
import { schemaEntries } from "./schema-walk.js";

export interface RunFlag {
  name: string;
  type: "string" | "boolean";
  /** The config key it sets, or a note for the flags that are not keys. */
  key: string;
  help: string;
}

const SELECTION_HELP: Record<string, string> = {
  pids: "trace only these processes (comma-separated pids; loaded into the kernel)",
  exe: "trace only processes whose executable path matches this glob (e.g. '*/nginx')",
  "open-ports": "trace only processes with one of these ports open (e.g. 80,8000-8100)",
  "container-id": "trace only processes of containers whose id matches this glob",
  "k8s-namespace":
    "trace only processes of pods in namespaces matching this glob (needs a cluster: in a pod, or KUBECONFIG)",
  "k8s-pod-labels": "trace only processes of pods with these labels (k=v,k2=v2; values are globs; needs a cluster)",
};

function firstSentence(text: string): string {
  const cut = text.search(/\.\s|\.$/);
  const s = cut > 0 ? text.slice(0, cut) : text;
  // "Payload bytes" -> "payload bytes", but "OTLP endpoint" and "L7 protocols" stay
  return /^[A-Z][a-z]/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s;
}

/** The flags of `kalman run`, from the schema (each sets one key) plus the selection shorthands and file options. */
export function runFlags(): RunFlag[] {
  const flags: RunFlag[] = [
    { name: "config", type: "string", key: "(file)", help: "YAML configuration file (default: $KALMAN_CONFIG)" },
    {
      name: "print-config",
      type: "boolean",
      key: "(action)",
      help: "print the effective configuration as YAML (secrets redacted) and exit",
    },
  ];
  for (const e of schemaEntries()) {
    if (e.section) continue;
    const key = e.path.join(".");
    if (e.meta?.flag) flags.push({ name: e.meta.flag, type: "string", key, help: firstSentence(e.meta.description) });
    if (e.meta?.negatingFlag)
      flags.push({ name: e.meta.negatingFlag, type: "boolean", key, help: `sets ${key} to false` });
  }
  for (const f of SELECTION_FLAGS)
    flags.push({ name: f, type: "string", key: "selection.include", help: SELECTION_HELP[f] ?? "" });
  return flags;
}

/** `kalman run --help`. */
export function runHelp(): string {
  const flags = runFlags();
  const width = Math.max(...flags.map((f) => f.name.length + (f.type === "string" ? 4 : 0))) + 4;
  const lines = flags.map((f) => {
    const left = `--${f.name}${f.type === "string" ? " X" : ""}`;
    const key = f.key.startsWith("(") ? "" : ` [${f.key}]`;
    return `  ${left.padEnd(width)}${f.help}${key}`;
  });
  return `usage: kalman run [options]

Traces TCP/UDP sockets with eBPF, parses HTTP/1, HTTP/2, gRPC, DNS, Redis, MySQL, PostgreSQL, Kafka
and MQTT, prints one line per request, and exports spans, request logs and metrics over OTLP (or to
OTLP-JSON files in output.dataDir); with --output it also appends each request record as JSON there.

Configuration: defaults < YAML file (--config or KALMAN_CONFIG) < environment (KALMAN_*, OTEL_*) <
flags. Every key, its variable and its flag: docs/configuration.md. Invalid configuration exits
with code 2 before anything is attached.

options:
${lines.join("\n")}
  ${"-h, --help".padEnd(width)}show this help
`;
}
