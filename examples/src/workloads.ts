import { join } from "node:path";
import { examplesDir } from "./processes.js";

/** Paths of the workload scripts. */
export const workloads = {
  httpServer: join(examplesDir, "http-keepalive", "server.mjs"),
  httpClient: join(examplesDir, "http-keepalive", "client.mjs"),
  tcpPair: join(examplesDir, "sockets", "tcp_pair.py"),
  udpPair: join(examplesDir, "sockets", "udp_pair.py"),
  /** Thread-per-request Python API calling Redis (run with /usr/bin/python3: needs python3-redis). */
  threadedApi: join(examplesDir, "concurrency", "threaded_api.py"),
  /** Single-threaded Node API calling Redis. */
  eventLoopApi: join(examplesDir, "concurrency", "event_loop_api.mjs"),
  /** Concurrent load for the APIs above. */
  itemLoad: join(examplesDir, "concurrency", "load.mjs"),
};
