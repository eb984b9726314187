export { runDemo } from "./commands/demo.js";
export { doctorChecks, runDoctor } from "./commands/doctor.js";
