import type { ProtocolParser } from "../parser.js";
import { detectHttp2 } from "./detect.js";
import { Http2Session } from "./parser.js";

/** HTTP/2 over cleartext (h2c, prior knowledge) with HPACK; gRPC is recognised by its content type. */
export const http2: ProtocolParser = {
  name: "http2",
  transports: ["tcp"],
  ports: [],
  detect: (data) => detectHttp2(data),
  createSession: (options) => new Http2Session(options),
};
