export { globToRegExp } from "./glob.js";
export { type OpenSocket, type ProcessFacts, readOpenSockets, readProcessFacts, socketInodes } from "./procfs.js";
export { isTelemetryAgent, ProcessSelector, type SelectionOptions, type SelectionStats } from "./selector.js";
