export { describePrivileged, type HostCheck, skipPrivileged } from "./privileged.js";
export { examplesDir, run, startUntil, stop } from "./processes.js";
export { workloads } from "./workloads.js";
