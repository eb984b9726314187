import { dns } from "./dns/index.js";
import { http1 } from "./http1/index.js";
import { mqtt } from "./mqtt/index.js";
import type { ProtocolParser } from "./parser.js";

/** Built-in parsers, in inference priority order. */
export function defaultParsers(): ProtocolParser[] {
  return [http1, dns, mqtt];
}
