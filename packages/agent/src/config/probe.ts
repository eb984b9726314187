import { connect } from "node:net";
import type { ConfigProblem } from "./load.js";
import type { KalmanConfig } from "./schema.js";

export interface EndpointTarget {
  /** Config keys that resolve to this URL (`otlp.endpoint`, `otlp.tracesEndpoint`). */
  keys: string[];
  url: string;
}

/** The distinct OTLP endpoints the config exports to (a signal's own endpoint wins over `endpoint`). */
export function exportEndpoints(config: KalmanConfig): EndpointTarget[] {
  const o = config.otlp;
  const on = (exporter: "otlp" | "none", url: string | undefined) => (exporter === "none" ? undefined : url);
  const bySignal: Array<[string, string | undefined]> = [
    [o.tracesEndpoint ? "otlp.tracesEndpoint" : "otlp.endpoint", on(o.tracesExporter, o.tracesEndpoint ?? o.endpoint)],
    [
      o.metricsEndpoint ? "otlp.metricsEndpoint" : "otlp.endpoint",
      on(o.metricsExporter, o.metricsEndpoint ?? o.endpoint),
    ],
    [o.logsEndpoint ? "otlp.logsEndpoint" : "otlp.endpoint", on(o.logsExporter, o.logsEndpoint ?? o.endpoint)],
  ];
  const out = new Map<string, EndpointTarget>();
  for (const [key, url] of bySignal) {
    if (!url) continue;
    const hostPort = hostPortOf(url);
    const id = `${hostPort.host}:${hostPort.port}`;
    const t = out.get(id) ?? { keys: [], url };
    if (!t.keys.includes(key)) t.keys.push(key);
    out.set(id, t);
  }
  return [...out.values()];
}

function hostPortOf(url: string): { host: string; port: number } {
  const u = new URL(url.trim());
  const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
  return { host: u.hostname.replace(/^\[|\]$/g, ""), port };
}

/** Opens (and closes) one TCP connection; resolves to an error text, or undefined when it connected. */
export function probeTcp(url: string, timeoutMs: number): Promise<string | undefined> {
  const { host, port } = hostPortOf(url);
  return new Promise((done) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      done(`no answer from ${host}:${port} within ${timeoutMs} ms`);
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      done(undefined);
    });
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      done(`cannot connect to ${host}:${port} (${e.code ?? e.message})`);
    });
  });
}

/** Connects once to every configured endpoint, in parallel; a problem for each that cannot be reached. */
export async function checkEndpoints(
  config: KalmanConfig,
  sources: Map<string, string>,
  timeoutMs = 1500,
): Promise<ConfigProblem[]> {
  const targets = exportEndpoints(config);
  const results = await Promise.all(targets.map((t) => probeTcp(t.url, timeoutMs)));
  const problems: ConfigProblem[] = [];
  targets.forEach((t, i) => {
    const error = results[i];
    if (!error) return;
    const key = t.keys[0] ?? "otlp.endpoint";
    problems.push({
      key,
      message: `OTLP endpoint ${t.url} is unreachable: ${error}`,
      source: sources.get(key) ?? "config",
      fix:
        "start the Collector/backend or correct the URL; to start anyway (exports are retried) set " +
        "otlp.startupCheck: warn (KALMAN_OTLP_STARTUP_CHECK=warn, --otlp-startup-check warn)",
    });
  });
  return problems;
}
