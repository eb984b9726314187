import { Document, isCollection, isMap, isNode } from "yaml";
import { keyOf, type LoadedConfig } from "./load.js";
import type { KalmanConfig } from "./schema.js";
import { schemaEntries } from "./schema-walk.js";

export const REDACTED = "<redacted>";

/** The config with secret values (OTLP headers) replaced. */
export function redactConfig(config: KalmanConfig): KalmanConfig {
  const copy = structuredClone(config);
  for (const e of schemaEntries()) {
    if (!e.meta?.secret) continue;
    let parent: Record<string, unknown> = copy as unknown as Record<string, unknown>;
    for (const p of e.path.slice(0, -1)) parent = parent[p] as Record<string, unknown>;
    const key = e.path[e.path.length - 1] as string;
    const value = parent[key];
    if (value && typeof value === "object") {
      parent[key] = Object.fromEntries(Object.keys(value).map((k) => [k, REDACTED]));
    } else if (value !== undefined) parent[key] = REDACTED;
  }
  return copy;
}

/** The effective configuration as YAML, secrets redacted, each key not at its default commented with its source. */
export function printConfig(loaded: LoadedConfig): string {
  const doc = new Document(redactConfig(loaded.config));
  const header = ["effective configuration (defaults < file < environment < flags)"];
  if (loaded.file) header.push(`file: ${loaded.file}`);
  doc.commentBefore = ` ${header.join("\n ")}`;
  for (const e of schemaEntries()) {
    if (e.section) continue;
    const source = loaded.sources.get(keyOf(e.path));
    if (!source) continue;
    const node = doc.getIn(e.path, true);
    if (isCollection(node)) {
      // a list or map: the comment goes above its key
      const parent = doc.getIn(e.path.slice(0, -1), true);
      const pair = isMap(parent)
        ? parent.items.find((p) => isNode(p.key) && "value" in p.key && p.key.value === e.path.at(-1))
        : undefined;
      if (pair && isNode(pair.key)) pair.key.commentBefore = ` ${source}`;
    } else if (isNode(node)) node.comment = ` ${source}`;
  }
  return doc.toString({ lineWidth: 0 });
}
