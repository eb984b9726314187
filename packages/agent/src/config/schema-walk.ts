import { z } from "zod";
import { configSchema, type OptionMeta } from "./schema.js";

/** One key of the schema: a section (an object of keys) or a leaf (a value). */
export interface SchemaEntry {
  path: string[];
  /** The key's schema with its default/optional wrappers removed. */
  inner: z.ZodType;
  meta: OptionMeta | undefined;
  defaultValue: unknown;
  optional: boolean;
  section: boolean;
}

function metaOf(schema: z.ZodType): OptionMeta | undefined {
  return z.globalRegistry.get(schema) as OptionMeta | undefined;
}

/** Removes default/prefault/optional wrappers, keeping the first meta and default found. */
function unwrap(schema: z.ZodType): {
  inner: z.ZodType;
  meta: OptionMeta | undefined;
  defaultValue: unknown;
  optional: boolean;
} {
  let meta = metaOf(schema);
  let defaultValue: unknown;
  let optional = false;
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault) {
      if (defaultValue === undefined) defaultValue = s.def.defaultValue;
      s = s.def.innerType as z.ZodType;
    } else if (s instanceof z.ZodOptional) {
      optional = true;
      s = s.def.innerType as z.ZodType;
    } else break;
    meta ??= metaOf(s);
  }
  return { inner: s, meta, defaultValue, optional };
}

/** Every key of an object schema, depth first (sections before their keys). */
export function schemaEntries(schema: z.ZodObject = configSchema, prefix: string[] = []): SchemaEntry[] {
  const out: SchemaEntry[] = [];
  for (const [key, value] of Object.entries(schema.shape)) {
    const u = unwrap(value as z.ZodType);
    const path = [...prefix, key];
    if (u.inner instanceof z.ZodObject) {
      out.push({ path, ...u, section: true });
      out.push(...schemaEntries(u.inner, path));
    } else {
      out.push({ path, ...u, section: false });
    }
  }
  return out;
}

/** The fields of the object inside a list (the selection rules), if the entry is such a list. */
export function listItemEntries(entry: SchemaEntry): SchemaEntry[] | undefined {
  if (!(entry.inner instanceof z.ZodArray)) return undefined;
  const item = entry.inner.def.element as z.ZodType;
  return item instanceof z.ZodObject ? schemaEntries(item) : undefined;
}

/** Keys known at an object path (for "did you mean"), or undefined when the path is not an object. */
export function knownKeysAt(path: Array<string | number>): string[] | undefined {
  let s: z.ZodType = configSchema;
  for (const part of path) {
    s = unwrap(s).inner;
    if (s instanceof z.ZodObject) {
      const next = s.shape[String(part)];
      if (!next) return undefined;
      s = next as z.ZodType;
    } else if (s instanceof z.ZodArray && typeof part === "number") {
      s = s.def.element as z.ZodType;
    } else return undefined;
  }
  s = unwrap(s).inner;
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}
