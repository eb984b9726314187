export { globToRegExp } from "./glob.js";
export { type OpenSocket, type ProcessFacts, readOpenSockets, readProcessFacts, socketInodes } from "./procfs.js";
export {
  isTelemetryAgent,
  K8S_SELECTION_NEEDS_CLUSTER,
  type PodLookup,
  ProcessSelector,
  ruleUsesK8s,
  type SelectionOptions,
  type SelectionStats,
} from "./selector.js";
