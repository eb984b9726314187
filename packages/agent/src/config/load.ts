import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { configSchema, type KalmanConfig, type TextParse } from "./schema.js";
import { knownKeysAt, type SchemaEntry, schemaEntries } from "./schema-walk.js";

type Path = Array<string | number>;

/** One problem in the configuration: the key, what is wrong, where the value came from, and the fix. */
export interface ConfigProblem {
  /** `selection.include[0].ports` */
  key: string;
  message: string;
  /** `kalman.yaml:4`, `env OTEL_EXPORTER_OTLP_ENDPOINT`, `flag --ports`, or `default`. */
  source: string;
  fix: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `  ${p.key}: ${p.message}\n    (from ${p.source}) fix: ${p.fix}`;
}

/** Environment variables read by Kalman that are not config keys. */
const OTHER_KALMAN_VARS = new Set([
  "KALMAN_CONFIG",
  "KALMAN_SKIP_PRIVILEGED",
  "KALMAN_NODE_NAME",
  "KALMAN_BPF_OBJECT",
  "KALMAN_NATIVE_LIB",
  "KALMAN_LOG_LEVEL",
  "KALMAN_K8S",
]);

/** Flags and variables that build one selection.include rule (a flag layer replaces the list). */
const SELECTION_SHORTHANDS = [
  { flag: "pids", env: "KALMAN_PIDS", field: "pids", parse: "numbers" },
  { flag: "exe", env: "KALMAN_EXE_PATH", field: "exePath", parse: "string" },
  { flag: "open-ports", env: "KALMAN_OPEN_PORTS", field: "ports", parse: "string" },
  { flag: "container-id", env: "KALMAN_CONTAINER_ID", field: "containerId", parse: "string" },
  { flag: "k8s-namespace", env: "KALMAN_K8S_NAMESPACE", field: "k8sNamespace", parse: "string" },
  { flag: "k8s-pod-labels", env: "KALMAN_K8S_POD_LABELS", field: "k8sPodLabels", parse: "kv" },
] as const;

export const SELECTION_FLAGS = SELECTION_SHORTHANDS.map((s) => s.flag);

interface Layer {
  data: Record<string, unknown>;
  /** Where the value at `path` (or the nearest set parent) came from, if this layer set it. */
  sourceOf(path: Path): string | undefined;
}

/** Flag values as node:util parseArgs returns them. */
export type FlagValues = Record<string, string | boolean | undefined>;

export interface LoadOptions {
  /** YAML file; default $KALMAN_CONFIG; none when both are unset. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: FlagValues;
}

export interface LoadedConfig {
  config: KalmanConfig;
  /** Where each set key came from (`selection.include` -> `env KALMAN_PIDS`); keys absent are defaults. */
  sources: Map<string, string>;
  /** Non-fatal findings (unknown KALMAN_* variables). */
  warnings: string[];
  file?: string;
}

export function keyOf(path: Path): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** Loads defaults < YAML file < environment < flags, validated. Throws ConfigError naming every problem. */
export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const env = opts.env ?? process.env;
  const entries = schemaEntries().filter((e) => !e.section);
  const layers: Layer[] = [];
  const warnings: string[] = [];
  const fileName = opts.file ?? nonBlank(env.KALMAN_CONFIG);
  let file: string | undefined;
  if (fileName) {
    file = resolve(fileName);
    layers.push(fileLayer(file, opts.file ? "--config" : "env KALMAN_CONFIG"));
  }
  layers.push(envLayer(entries, env, warnings));
  layers.push(flagLayer(entries, opts.flags ?? {}));

  const merged: Record<string, unknown> = {};
  for (const l of layers) deepMerge(merged, l.data);
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(problemsOf(result.error, layers));
  const sources = new Map<string, string>();
  for (const e of entries) {
    const src = sourceAt(layers, e.path);
    if (src) sources.set(keyOf(e.path), src);
  }
  return { config: result.data, sources, warnings, file };
}

function sourceAt(layers: Layer[], path: Path): string | undefined {
  for (let i = layers.length - 1; i >= 0; i--) {
    const s = layers[i]?.sourceOf(path);
    if (s) return s;
  }
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; lists and values replace. */
function deepMerge(into: Record<string, unknown>, from: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(from)) {
    const cur = into[k];
    if (isPlainObject(v) && isPlainObject(cur)) deepMerge(cur, v);
    else if (isPlainObject(v)) {
      const copy: Record<string, unknown> = {};
      deepMerge(copy, v);
      into[k] = copy;
    } else into[k] = v;
  }
}

function setAt(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let o = obj;
  for (const p of path.slice(0, -1)) {
    if (!isPlainObject(o[p])) o[p] = {};
    o = o[p] as Record<string, unknown>;
  }
  o[path[path.length - 1] as string] = value;
}

function nonBlank(v: string | undefined): string | undefined {
  return v?.trim() ? v.trim() : undefined;
}

// ---- layers ----

function fileLayer(file: string, via: string): Layer {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new ConfigError([
      {
        key: "(config file)",
        message: `cannot read ${file} (${code})`,
        source: via,
        fix: "give the path of a readable YAML file, or leave it unset to use defaults",
      },
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => `${file}:${lines.linePos(offset).line}`;
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((err) => ({
        key: "(config file)",
        message: `not valid YAML: ${err.message.split("\n")[0]}`,
        source: at(err.pos[0]),
        fix: "fix the YAML syntax at that line (indent with spaces, `key: value`)",
      })),
    );
  }
  const data = doc.toJS() as unknown;
  if (data !== null && data !== undefined && !isPlainObject(data)) {
    throw new ConfigError([
      {
        key: "(config file)",
        message: "expected a mapping of keys (selection:, otlp:, ...) at the top",
        source: at(0),
        fix: "see docs/configuration.md for the keys",
      },
    ]);
  }
  return {
    data: (data ?? {}) as Record<string, unknown>,
    sourceOf(path) {
      // the deepest node of the path present in the file
      for (let n = path.length; n > 0; n--) {
        const parent = n > 1 ? doc.getIn(path.slice(0, n - 1), true) : doc.contents;
        const last = path[n - 1];
        if (isMap(parent)) {
          const pair = parent.items.find((it) => (it.key as { value?: unknown } | null)?.value === last);
          const node = (pair?.key ?? undefined) as Node | undefined;
          if (node?.range) return at(node.range[0]);
        } else if (isSeq(parent) && typeof last === "number") {
          const node = parent.items[last] as Node | undefined;
          if (node?.range) return at(node.range[0]);
        }
      }
      return undefined;
    },
  };
}

/** Text of a variable or flag to the key's value; on a mismatch the text is kept so validation names it. */
function fromText(text: string, parse: TextParse | undefined): unknown {
  switch (parse) {
    case "number": {
      const n = Number(text.trim());
      return text.trim() !== "" && Number.isFinite(n) ? n : text;
    }
    case "boolean": {
      const t = text.trim().toLowerCase();
      if (t === "true" || t === "1" || t === "yes" || t === "on") return true;
      if (t === "false" || t === "0" || t === "no" || t === "off") return false;
      return text;
    }
    case "numbers":
      return pidsFromText(text);
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "kv": {
      // the OTel form: k1=v1,k2=v2, values percent-decoded
      const out: Record<string, string> = {};
      for (const pair of text.split(",")) {
        const eq = pair.indexOf("=");
        if (eq <= 0) continue;
        let value = pair.slice(eq + 1).trim();
        try {
          value = decodeURIComponent(value);
        } catch {
          // keep it as written
        }
        out[pair.slice(0, eq).trim()] = value;
      }
      return out;
    }
    default:
      return text.trim();
  }
}

function pidsFromText(text: string): unknown[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function envLayer(entries: SchemaEntry[], env: NodeJS.ProcessEnv, warnings: string[]): Layer {
  const data: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  const known = new Set<string>(OTHER_KALMAN_VARS);
  for (const e of entries) {
    for (const name of e.meta?.env ?? []) {
      known.add(name);
      const raw = env[name];
      if (raw === undefined || raw.trim() === "") continue;
      if (sources.has(keyOf(e.path))) break; // a stronger variable already set it
      setAt(data, e.path, fromText(raw, e.meta?.parse));
      sources.set(keyOf(e.path), `env ${name}`);
    }
  }
  const rule: Record<string, unknown> = {};
  const ruleVars: string[] = [];
  for (const s of SELECTION_SHORTHANDS) {
    known.add(s.env);
    const raw = env[s.env];
    if (raw === undefined || raw.trim() === "") continue;
    rule[s.field] = fromText(raw, s.parse);
    ruleVars.push(s.env);
  }
  if (ruleVars.length) {
    setAt(data, ["selection", "include"], [rule]);
    sources.set("selection.include", `env ${ruleVars.join(" + ")}`);
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith("KALMAN_") || known.has(name)) continue;
    const guess = closest(name, [...known]);
    warnings.push(`unknown variable ${name} ignored${guess ? `; did you mean ${guess}?` : ""}`);
  }
  return { data, sourceOf: (path) => sourceFromMap(sources, path) };
}

function flagLayer(entries: SchemaEntry[], flags: FlagValues): Layer {
  const data: Record<string, unknown> = {};
  const sources = new Map<string, string>();
  for (const e of entries) {
    const flag = e.meta?.flag;
    const v = flag ? flags[flag] : undefined;
    if (flag && typeof v === "string") {
      setAt(data, e.path, fromText(v, e.meta?.parse));
      sources.set(keyOf(e.path), `flag --${flag}`);
    }
    const neg = e.meta?.negatingFlag;
    if (neg && flags[neg] === true) {
      setAt(data, e.path, false);
      sources.set(keyOf(e.path), `flag --${neg}`);
    }
  }
  const rule: Record<string, unknown> = {};
  const used: string[] = [];
  for (const s of SELECTION_SHORTHANDS) {
    const v = flags[s.flag];
    if (typeof v !== "string") continue;
    rule[s.field] = fromText(v, s.parse);
    used.push(`--${s.flag}`);
  }
  if (used.length) {
    setAt(data, ["selection", "include"], [rule]);
    sources.set("selection.include", `flag ${used.join(" + ")}`);
  }
  return { data, sourceOf: (path) => sourceFromMap(sources, path) };
}

function sourceFromMap(sources: Map<string, string>, path: Path): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const s = sources.get(keyOf(path.slice(0, n)));
    if (s) return s;
  }
  return undefined;
}

// ---- problems ----

function problemsOf(error: z.ZodError, layers: Layer[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path as Path;
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(path) ?? [];
      for (const k of issue.keys) {
        const guess = closest(k, known);
        const keyPath = [...path, k];
        out.push({
          key: keyOf(keyPath),
          message: `unknown key${guess ? `; did you mean "${guess}"?` : ""}`,
          source: sourceAt(layers, keyPath) ?? "config",
          fix: guess ? `rename it to "${guess}"` : `remove it; keys here: ${known.join(", ")} (docs/configuration.md)`,
        });
      }
      continue;
    }
    const source = sourceAt(layers, path) ?? "default";
    out.push({ key: keyOf(path) || "(config)", message: issue.message, source, fix: fixFor(source) });
  }
  return out;
}

function fixFor(source: string): string {
  if (source.startsWith("env ")) return `correct or unset ${source.slice(4).split(" + ").join(" and ")}`;
  if (source.startsWith("flag ")) return `correct ${source.slice(5)} (kalman run --help)`;
  if (source === "default") return "set the key (docs/configuration.md)";
  return "correct that line of the config file (docs/configuration.md lists the keys)";
}

/** The candidate nearest to `word` by edit distance, if near enough to be a typo. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Math.abs(a.length - b.length) + 64;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
