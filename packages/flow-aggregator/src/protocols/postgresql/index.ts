import type { ProtocolParser } from "../parser.js";
import { detectPostgres } from "./detect.js";
import { PostgresSession } from "./parser.js";

/** PostgreSQL protocol v3: startup, simple and extended query (one request per Sync), COPY, LISTEN/NOTIFY. */
export const postgresql: ProtocolParser = {
  name: "postgresql",
  transports: ["tcp"],
  ports: [5432],
  detect: detectPostgres,
  createSession: (options) => new PostgresSession(options),
};
