import type { ProtocolParser } from "../parser.js";
import { detectDns } from "./detect.js";
import { DnsSession, type DnsSessionOptions } from "./parser.js";

/** DNS over UDP and TCP: queries and responses paired by transaction id. */
export const dns: ProtocolParser = {
  name: "dns",
  transports: ["udp", "tcp"],
  ports: [53],
  detect: (data, fromClient) => detectDns(data, fromClient),
  createSession: (options: DnsSessionOptions) => new DnsSession(options),
};
