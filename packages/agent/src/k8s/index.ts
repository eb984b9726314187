export { fromKubeconfig, type K8sConnection, k8sConnection, parseSimpleYaml } from "./kubeconfig.js";
export {
  containerIdOf,
  type PodInfo,
  PodWatcher,
  type PodWatcherOptions,
  type PodWatcherStats,
  podEnrichment,
  workloadOf,
} from "./pods.js";
export { startPodWatcher } from "./start.js";
