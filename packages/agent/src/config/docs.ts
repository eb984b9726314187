import { z } from "zod";
import { SELECTION_FLAGS } from "./load.js";
import { listItemEntries, type SchemaEntry, schemaEntries } from "./schema-walk.js";

function typeName(e: SchemaEntry): string {
  if (e.meta?.type) return e.meta.type;
  const s = e.inner;
  if (s instanceof z.ZodNumber) return "number";
  if (s instanceof z.ZodBoolean) return "boolean";
  if (s instanceof z.ZodString) return "string";
  if (s instanceof z.ZodEnum) return (s.options as string[]).map((o) => `\`${o}\``).join(" | ");
  if (s instanceof z.ZodArray) {
    const el = s.def.element;
    return el instanceof z.ZodString ? "list of strings" : "list";
  }
  return "value";
}

function defaultText(e: SchemaEntry): string {
  if (e.defaultValue === undefined) return "unset";
  if (Array.isArray(e.defaultValue) && e.defaultValue.length === 0) return "`[]`";
  if (typeof e.defaultValue === "object" && e.defaultValue && !Object.keys(e.defaultValue).length) return "`{}`";
  return `\`${JSON.stringify(e.defaultValue)}\``;
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function keyRow(e: SchemaEntry, prefix = ""): string {
  const setBy = [
    ...(e.meta?.env ?? []).map((v) => `\`${v}\``),
    ...(e.meta?.flag ? [`\`--${e.meta.flag}\``] : []),
    ...(e.meta?.negatingFlag ? [`\`--${e.meta.negatingFlag}\` (sets false)`] : []),
  ].join(", ");
  const example = e.meta?.example ? ` Example: \`${e.meta.example}\`.` : "";
  return `| \`${prefix}${e.path.join(".")}\` | ${cell(typeName(e))} | ${defaultText(e)} | ${setBy || "—"} | ${cell(
    (e.meta?.description ?? "") + example,
  )} |`;
}

/** docs/configuration.md, generated from the schema (`pnpm docs:config`). */
export function configurationMarkdown(): string {
  const out: string[] = [
    "# Configuration reference",
    "",
    "<!-- generated from packages/agent/src/config/schema.ts by `pnpm docs:config`; do not edit by hand -->",
    "",
    "`kalman run` reads its configuration from four places; a later one wins, key by key:",
    "",
    "1. the defaults below;",
    "2. a YAML file: `kalman run --config kalman.yaml`, or the path in `KALMAN_CONFIG`;",
    "3. environment variables: `KALMAN_*` and the OpenTelemetry ones (`OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`);",
    "4. flags of `kalman run`.",
    "",
    "Lists and maps are replaced whole, not merged. `kalman run --print-config` prints the effective",
    "configuration as YAML (secrets redacted; each key not at its default is commented with where it",
    "came from) and exits.",
    "",
    "Invalid configuration stops `kalman run` with exit code 2 before anything is attached. Each",
    "problem names the key, the source (file and line, variable or flag) and the fix, e.g.:",
    "",
    "```text",
    "kalman run: invalid configuration",
    '  selection.include[0].ports: expected "80" or "8000-8100" (a port, a range, or a comma-separated list of them), got "80-"',
    "    (from /etc/kalman.yaml:4) fix: correct that line of the config file (docs/configuration.md lists the keys)",
    '  selecton: unknown key; did you mean "selection"?',
    '    (from /etc/kalman.yaml:1) fix: rename it to "selection"',
    "```",
    "",
    "Unknown keys are errors; unknown `KALMAN_*` variables are warnings. An OTLP endpoint that cannot",
    "be reached at startup is an error unless `otlp.startupCheck` says otherwise.",
    "",
    "An example file:",
    "",
    "```yaml",
    "selection:",
    "  include:",
    '    - exePath: "*/nginx"',
    '    - ports: "8000-8100"',
    "  exclude:",
    '    - exePath: "*/bin/python3*"',
    "otlp:",
    "  endpoint: http://127.0.0.1:4317",
    "  headers:",
    "    x-api-key: secret",
    "protocols: [http1, redis]",
    "```",
    "",
  ];
  const entries = schemaEntries();
  for (const e of entries) {
    if (e.path.length === 1 && e.section) {
      out.push(`## \`${e.path[0]}\``, "", e.meta?.description ?? "", "");
      out.push("| key | type | default | set by | description |", "|---|---|---|---|---|");
      for (const k of entries) {
        if (k.section || k.path[0] !== e.path[0] || k.path.length < 2) continue;
        out.push(keyRow(k));
      }
      out.push("");
      for (const k of entries) {
        if (k.path[0] !== e.path[0]) continue;
        const fields = listItemEntries(k);
        if (!fields) continue;
        out.push(`Fields of a rule in \`${k.path.join(".")}\` (all given fields must match):`, "");
        out.push("| field | type | description |", "|---|---|---|");
        for (const f of fields) {
          const example = f.meta?.example ? ` Example: \`${f.meta.example}\`.` : "";
          out.push(
            `| \`${f.path.join(".")}\` | ${cell(typeName(f))} | ${cell((f.meta?.description ?? "") + example)} |`,
          );
        }
        out.push("");
      }
    }
  }
  const top = entries.filter((e) => e.path.length === 1 && !e.section);
  if (top.length) {
    out.push("## Top-level keys", "", "| key | type | default | set by | description |", "|---|---|---|---|---|");
    for (const e of top) out.push(keyRow(e));
    out.push("");
  }
  out.push(
    "## Selection flags and variables",
    "",
    `The flags ${SELECTION_FLAGS.map((f) => `\`--${f}\``).join(", ")} (and the variables \`KALMAN_PIDS\`,`,
    "`KALMAN_EXE_PATH`, `KALMAN_OPEN_PORTS`, `KALMAN_CONTAINER_ID`, `KALMAN_K8S_NAMESPACE`, `KALMAN_K8S_POD_LABELS`)",
    "build one rule from the fields they give and replace `selection.include` with it:",
    "`kalman run --exe '*/nginx' --open-ports 80` traces nginx processes listening on port 80, and",
    "`kalman run --k8s-namespace shop --k8s-pod-labels app=checkout` the checkout pods of namespace shop.",
    "",
    "`--ports` is different: it keeps only sockets with those ports, checked in the kernel, whatever the",
    "process (both the client and the server side of a connection to that port).",
    "",
  );
  return out.join("\n");
}
