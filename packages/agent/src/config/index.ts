export { configurationMarkdown } from "./docs.js";
export {
  ConfigError,
  type ConfigProblem,
  closest,
  type FlagValues,
  formatProblem,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  SELECTION_FLAGS,
} from "./load.js";
export { printConfig, REDACTED, redactConfig } from "./print.js";
export { checkEndpoints, type EndpointTarget, exportEndpoints, probeTcp } from "./probe.js";
export {
  configSchema,
  type KalmanConfig,
  type OptionMeta,
  PORT_SPEC_HINT,
  PROTOCOL_NAMES,
  parsePortSpec,
  type SelectionRule,
  validEndpoint,
} from "./schema.js";
