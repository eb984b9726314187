export { runDemo } from "./commands/demo.js";
export { doctorChecks, runDoctor } from "./commands/doctor.js";
export { formatRecord, type RunOptions, runAgent } from "./commands/run.js";
