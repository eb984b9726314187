import type { ProtocolParser } from "../parser.js";
import { detectRedis } from "./detect.js";
import { RedisSession } from "./parser.js";

/** Redis RESP2 and RESP3: pipelining, inline commands, pub/sub and push, MONITOR, CLIENT REPLY. */
export const redis: ProtocolParser = {
  name: "redis",
  transports: ["tcp"],
  ports: [6379],
  detect: (data, fromClient) => detectRedis(data, fromClient),
  createSession: (options) => new RedisSession(options),
};
