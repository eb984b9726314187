export { runDemo } from "./commands/demo.js";
export { doctorChecks, runDoctor } from "./commands/doctor.js";
export { exporterEnv, formatRecord, type RunIo, runAgent } from "./commands/run.js";
export {
  ConfigError,
  type ConfigProblem,
  configSchema,
  configurationMarkdown,
  type KalmanConfig,
  type LoadedConfig,
  type LoadOptions,
  loadConfig,
  printConfig,
} from "./config/index.js";
export { Pipeline, type PipelineOptions, type ServerEndpoint } from "./pipeline.js";
export { ProcessSelector, type SelectionOptions, type SelectionStats } from "./selection/index.js";
