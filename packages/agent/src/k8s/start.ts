import { hostname } from "node:os";
import { k8sConnection } from "./kubeconfig.js";
import { PodWatcher } from "./pods.js";

/**
 * K8s enrichment when Kalman runs in a cluster (in-cluster service account) or KUBECONFIG is set:
 * watches this node's pods (KALMAN_NODE_NAME, else NODE_NAME from the downward API, else the host
 * name). Resolves after the first list; undefined when there is no cluster to ask.
 * A config that is present but unusable throws, naming the key and the fix.
 */
export async function startPodWatcher(
  env: NodeJS.ProcessEnv = process.env,
  logger?: { warn(msg: string, fields?: object): void; info(msg: string, fields?: object): void },
): Promise<PodWatcher | undefined> {
  if (env.KALMAN_K8S === "off") return undefined;
  const connection = k8sConnection({ env });
  if (!connection) return undefined;
  const nodeName = env.KALMAN_NODE_NAME?.trim() || env.NODE_NAME?.trim() || hostname();
  const watcher = new PodWatcher({ connection, nodeName, logger });
  await watcher.start();
  return watcher;
}
