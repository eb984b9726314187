export { createNetLab, type NetLab, type NetLabOptions } from "./netlab.js";
export { describePrivileged, type HostCheck, skipPrivileged } from "./privileged.js";
export {
  collectOutput,
  examplesDir,
  inPrivateMountNamespace,
  run,
  startUntil,
  stop,
  waitForStableFile,
} from "./processes.js";
export { freePort, type RunningServer, selfSignedCert, startNginx, startRedis, waitForPort } from "./servers.js";
export { type DemoTopology, type HostName, removeDemoNamespaces, startDemoTopology } from "./topology.js";
export { workloads } from "./workloads.js";
