import { ConfigError, type ConfigProblem, type FlagValues, formatProblem, loadConfig } from "../config/load.js";
import { printConfig } from "../config/print.js";
import { checkEndpoints } from "../config/probe.js";

function reportProblems(err: NodeJS.WritableStream, problems: ConfigProblem[]): void {
  err.write(`kalman run: invalid configuration\n${problems.map(formatProblem).join("\n")}\n`);
}

/**
 * `kalman run` from the command line: loads and checks the configuration (file < env < flags), then
 * the OTLP endpoints, and only then loads the tracer. Config problems exit with 2, nothing attached.
 */
export async function runCommand(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const out = process.stdout;
  const err = process.stderr;
  const file = typeof flags.config === "string" ? flags.config : undefined;
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ file, env, flags });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    reportProblems(err, e.problems);
    return 2;
  }
  for (const w of loaded.warnings) err.write(`kalman run: warning: ${w}\n`);
  if (flags["print-config"] === true) {
    out.write(printConfig(loaded));
    return 0;
  }
  const check = loaded.config.otlp.startupCheck;
  if (check !== "off") {
    const problems = await checkEndpoints(loaded.config, loaded.sources);
    if (problems.length && check === "fail") {
      reportProblems(err, problems);
      return 2;
    }
    for (const p of problems) err.write(`kalman run: warning: ${p.key}: ${p.message}; exports will be retried\n`);
  }
  const { runAgent } = await import("./run.js");
  return runAgent(loaded.config, { sources: loaded.sources, file: loaded.file });
}
