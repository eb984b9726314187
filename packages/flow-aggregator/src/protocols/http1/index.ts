import type { ProtocolParser } from "../parser.js";
import { detectHttp1 } from "./detect.js";
import { Http1Session } from "./parser.js";

/** HTTP/1.0 and 1.1: content-length, chunked, HEAD/204/304, 100-continue, pipelining. */
export const http1: ProtocolParser = {
  name: "http1",
  transports: ["tcp"],
  ports: [80, 8080, 8000, 3000],
  detect: (data) => detectHttp1(data),
  createSession: (options) => new Http1Session(options),
};
