import { dns } from "./dns/index.js";
import { http1 } from "./http1/index.js";
import { http2 } from "./http2/index.js";
import { kafka } from "./kafka/index.js";
import { mqtt } from "./mqtt/index.js";
import { mysql } from "./mysql/index.js";
import type { ProtocolParser } from "./parser.js";
import { postgresql } from "./postgresql/index.js";
import { redis } from "./redis/index.js";

/** Built-in parsers, in inference priority order. */
export function defaultParsers(): ProtocolParser[] {
  return [http1, http2, dns, redis, mysql, postgresql, kafka, mqtt];
}
