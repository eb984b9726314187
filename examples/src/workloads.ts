import { join } from "node:path";
import { examplesDir } from "./processes.js";

/** Paths of the workload scripts. */
export const workloads = {
  httpServer: join(examplesDir, "http-keepalive", "server.mjs"),
  httpClient: join(examplesDir, "http-keepalive", "client.mjs"),
  tcpPair: join(examplesDir, "sockets", "tcp_pair.py"),
  udpPair: join(examplesDir, "sockets", "udp_pair.py"),
};
