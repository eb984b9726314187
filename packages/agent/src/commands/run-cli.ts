import { ConfigError, type ConfigProblem, type FlagValues, formatProblem, loadConfig } from "../config/load.js";
import { printConfig } from "../config/print.js";
import { checkEndpoints } from "../config/probe.js";
import type { KalmanConfig } from "../config/schema.js";
import { k8sConnection } from "../k8s/kubeconfig.js";
import { K8S_SELECTION_NEEDS_CLUSTER, ruleUsesK8s } from "../selection/selector.js";

function reportProblems(err: NodeJS.WritableStream, problems: ConfigProblem[]): void {
  err.write(`kalman run: invalid configuration\n${problems.map(formatProblem).join("\n")}\n`);
}

/**
 * Selection rules on K8s namespace or pod labels when there is no cluster to ask: one problem per
 * such rule, naming its key. (A cluster configured but unusable is reported when the watcher starts.)
 */
export function k8sSelectionProblems(
  config: KalmanConfig,
  sources: Map<string, string>,
  env: NodeJS.ProcessEnv,
): ConfigProblem[] {
  const uses = (["include", "exclude"] as const).flatMap((list) =>
    config.selection[list].flatMap((rule, i) => (ruleUsesK8s(rule) ? [{ list, i, rule }] : [])),
  );
  if (!uses.length) return [];
  let cluster = env.KALMAN_K8S !== "off";
  if (cluster) {
    try {
      cluster = k8sConnection({ env }) !== undefined;
    } catch {
      cluster = true; // there is one, misconfigured: the pod watcher says how when it starts
    }
  }
  if (cluster) return [];
  return uses.map(({ list, i, rule }) => {
    const field = rule.k8sNamespace !== undefined ? "k8sNamespace" : "k8sPodLabels";
    return {
      key: `selection.${list}[${i}].${field}`,
      message: K8S_SELECTION_NEEDS_CLUSTER,
      source: sources.get(`selection.${list}`) ?? "config",
      fix: "run Kalman in the cluster (a DaemonSet pod with a service account that may list pods) or set KUBECONFIG; else remove the rule's k8sNamespace/k8sPodLabels",
    };
  });
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
  const k8s = k8sSelectionProblems(loaded.config, loaded.sources, env);
  if (k8s.length) {
    reportProblems(err, k8s);
    return 2;
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
