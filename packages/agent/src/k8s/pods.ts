// The node's pods from the API server (list, then watch from the list's resourceVersion; 410 Gone
// -> list again), cached by container id, as K8s resource attributes for the ServiceResolver.
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Enricher, Enrichment } from "@kalman/span-correlator";
import type { K8sConnection } from "./kubeconfig.js";

/** What Kalman keeps of a pod. */
export interface PodInfo {
  uid: string;
  name: string;
  namespace: string;
  nodeName?: string;
  labels: Record<string, string>;
  /** container id (64 hex, runtime prefix stripped) -> container name */
  containers: Map<string, string>;
  /** k8s.deployment.name, k8s.statefulset.name, ... -> name */
  workload: Record<string, string>;
}

export interface PodWatcherOptions {
  connection: K8sConnection;
  /** Only this node's pods (fieldSelector spec.nodeName); undefined: every pod the account may list. */
  nodeName?: string;
  /** Pods kept (default 5000); past it, new pods are not cached (counted). */
  maxPods?: number;
  /** Labels copied per pod (default 64). */
  maxLabels?: number;
  /** Wait before a watch or list is retried after an error (default 1000 ms). */
  retryMs?: number;
  logger?: { warn(msg: string, fields?: object): void; info(msg: string, fields?: object): void };
}

export interface PodWatcherStats {
  pods: number;
  lists: number;
  watches: number;
  events: number;
  /** 410 Gone answers (resourceVersion too old): each one relists. */
  gone: number;
  errors: number;
  /** Pods not cached because maxPods was reached. */
  dropped: number;
  lastError?: string;
}

interface K8sPod {
  metadata?: {
    uid?: string;
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ kind?: string; name?: string; controller?: boolean }>;
  };
  spec?: { nodeName?: string };
  status?: {
    containerStatuses?: Array<{ name?: string; containerID?: string }>;
    initContainerStatuses?: Array<{ name?: string; containerID?: string }>;
    ephemeralContainerStatuses?: Array<{ name?: string; containerID?: string }>;
  };
}

const MAX_LINE = 4 * 1024 * 1024;

/**
 * Lists and watches pods; answers container id -> pod. start() resolves after the first list (or
 * its failure, logged). Never throws after start; errors are counted and retried.
 */
export class PodWatcher {
  private readonly pods = new Map<string, PodInfo>();
  private readonly byContainer = new Map<string, string>();
  private readonly maxPods: number;
  private readonly maxLabels: number;
  private readonly retryMs: number;
  private resourceVersion = "";
  private stopped = false;
  private current: IncomingMessage | undefined;
  /** Requests not yet closed: a watch whose headers have not come yet must be aborted on stop too. */
  private readonly inflight = new Set<ClientRequest>();
  private timer: NodeJS.Timeout | undefined;
  private readonly counts = { lists: 0, watches: 0, events: 0, gone: 0, errors: 0, dropped: 0 };
  private lastError: string | undefined;
  /** True once a list has succeeded: before that, an unknown container may just not be listed yet. */
  synced = false;

  constructor(private readonly options: PodWatcherOptions) {
    this.maxPods = Math.max(1, options.maxPods ?? 5000);
    this.maxLabels = Math.max(0, options.maxLabels ?? 64);
    this.retryMs = Math.max(10, options.retryMs ?? 1000);
  }

  /** Lists, then watches in the background. Resolves after the first list attempt. */
  async start(): Promise<void> {
    await this.listThenWatch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.current?.destroy();
    // a pending request keeps the event loop (and so `kalman run`) alive after stop
    for (const req of this.inflight) req.destroy();
    this.inflight.clear();
  }

  /** The pod running a container (64-hex id), if known. */
  podOfContainer(containerId: string): PodInfo | undefined {
    const uid = this.byContainer.get(containerId);
    return uid === undefined ? undefined : this.pods.get(uid);
  }

  stats(): PodWatcherStats {
    return { pods: this.pods.size, ...this.counts, lastError: this.lastError };
  }

  /** An Enricher for the ServiceResolver: k8s.* attributes and service.name from the workload. */
  enricher(): Enricher {
    return (_pid, attributes) => {
      const containerId = attributes["container.id"];
      if (typeof containerId !== "string") return undefined;
      const pod = this.podOfContainer(containerId);
      if (!pod) return { incomplete: true };
      return podEnrichment(pod, containerId);
    };
  }

  private async listThenWatch(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.list();
      this.watch();
    } catch (err) {
      if (this.stopped) return;
      this.fail(err);
      this.retry(() => void this.listThenWatch());
    }
  }

  private selector(): string {
    const node = this.options.nodeName;
    return node ? `fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}` : "";
  }

  private async list(): Promise<void> {
    this.counts.lists++;
    const seen = new Set<string>();
    let cont = "";
    let rv = "";
    do {
      const q = [this.selector(), "limit=500", cont ? `continue=${encodeURIComponent(cont)}` : ""].filter(Boolean);
      const body = (await this.getJson(`/api/v1/pods?${q.join("&")}`)) as {
        items?: K8sPod[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      for (const item of body.items ?? []) {
        const uid = this.upsert(item);
        if (uid) seen.add(uid);
      }
      rv = body.metadata?.resourceVersion ?? rv;
      cont = body.metadata?.continue ?? "";
    } while (cont);
    // pods gone while we were not watching
    for (const uid of [...this.pods.keys()]) if (!seen.has(uid)) this.remove(uid);
    this.resourceVersion = rv;
    this.synced = true;
  }

  private watch(): void {
    if (this.stopped) return;
    this.counts.watches++;
    const q = [this.selector(), "watch=1", "allowWatchBookmarks=true"];
    if (this.resourceVersion) q.push(`resourceVersion=${encodeURIComponent(this.resourceVersion)}`);
    const req = this.request(`/api/v1/pods?${q.join("&")}`, (res) => {
      if (res.statusCode === 410) {
        res.resume();
        this.counts.gone++;
        this.retry(() => void this.listThenWatch(), 0);
        return;
      }
      if (res.statusCode !== 200) {
        res.resume();
        this.fail(new Error(`watch: HTTP ${res.statusCode}`));
        this.retry(() => this.watch());
        return;
      }
      this.current = res;
      let buf = "";
      let relist = false;
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (relist) return;
        buf += chunk;
        if (buf.length > MAX_LINE) {
          this.fail(new Error("watch: event larger than 4 MiB"));
          buf = "";
          res.destroy();
          return;
        }
        let nl = buf.indexOf("\n");
        while (nl >= 0 && !relist) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line && this.onEvent(line) === "relist") relist = true;
          nl = buf.indexOf("\n");
        }
        if (relist) res.destroy();
      });
      const ended = () => {
        if (this.current === res) this.current = undefined;
        if (this.stopped) return;
        // 410 inside the stream: list again; else the server closed the watch: resume from the last version
        if (relist) this.retry(() => void this.listThenWatch(), 0);
        else this.retry(() => this.watch(), 0);
      };
      res.on("end", ended);
      res.on("error", () => undefined);
      res.on("close", () => {
        if (!res.complete) ended();
      });
    });
    req.on("error", (err) => {
      if (this.stopped) return;
      this.fail(err);
      this.retry(() => this.watch());
    });
    req.end();
  }

  /** One watch event line. "relist" when the server says our resourceVersion is gone. */
  private onEvent(line: string): "relist" | undefined {
    let ev: { type?: string; object?: K8sPod & { code?: number; metadata?: { resourceVersion?: string } } };
    try {
      ev = JSON.parse(line);
    } catch {
      this.counts.errors++;
      return undefined;
    }
    this.counts.events++;
    const obj = ev.object;
    if (ev.type === "ERROR") {
      if (obj?.code === 410) {
        this.counts.gone++;
        return "relist";
      }
      this.fail(new Error(`watch error event: ${JSON.stringify(obj).slice(0, 200)}`));
      return "relist";
    }
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (!obj) return undefined;
    if (ev.type === "ADDED" || ev.type === "MODIFIED") this.upsert(obj);
    else if (ev.type === "DELETED" && obj.metadata?.uid) this.remove(obj.metadata.uid);
    return undefined;
  }

  private upsert(p: K8sPod): string | undefined {
    const m = p.metadata;
    if (!m?.uid || !m.name) return undefined;
    if (!this.pods.has(m.uid) && this.pods.size >= this.maxPods) {
      this.counts.dropped++;
      return undefined;
    }
    const old = this.pods.get(m.uid);
    if (old) for (const id of old.containers.keys()) this.byContainer.delete(id);
    const containers = new Map<string, string>();
    const statuses = [
      ...(p.status?.containerStatuses ?? []),
      ...(p.status?.initContainerStatuses ?? []),
      ...(p.status?.ephemeralContainerStatuses ?? []),
    ];
    for (const c of statuses) {
      const id = containerIdOf(c.containerID);
      if (id) containers.set(id, c.name ?? "");
    }
    const labels: Record<string, string> = {};
    let n = 0;
    for (const [k, v] of Object.entries(m.labels ?? {})) {
      if (n++ >= this.maxLabels) break;
      labels[k] = String(v);
    }
    const info: PodInfo = {
      uid: m.uid,
      name: m.name,
      namespace: m.namespace ?? "default",
      nodeName: p.spec?.nodeName,
      labels,
      containers,
      workload: workloadOf(m.ownerReferences ?? [], labels),
    };
    this.pods.set(m.uid, info);
    for (const id of containers.keys()) this.byContainer.set(id, m.uid);
    return m.uid;
  }

  private remove(uid: string): void {
    const old = this.pods.get(uid);
    if (!old) return;
    for (const id of old.containers.keys()) this.byContainer.delete(id);
    this.pods.delete(uid);
  }

  private fail(err: unknown): void {
    this.counts.errors++;
    const msg = err instanceof Error ? err.message : String(err);
    if (msg !== this.lastError)
      this.options.logger?.warn("k8s: pod list/watch failed; retrying", {
        server: this.options.connection.server,
        error: msg,
      });
    this.lastError = msg;
  }

  private retry(fn: () => void, ms = this.retryMs): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(fn, ms);
    this.timer.unref?.();
  }

  private getJson(path: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = this.request(path, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
          if (body.length > 64 * 1024 * 1024) req.destroy(new Error("pod list larger than 64 MiB"));
        });
        res.on("end", () => {
          if (res.statusCode !== 200) {
            reject(new Error(`GET ${path.split("?")[0]}: HTTP ${res.statusCode} ${body.slice(0, 200)}`));
            return;
          }
          try {
            resolve(JSON.parse(body));
          } catch (err) {
            reject(err);
          }
        });
        res.on("error", reject);
      });
      req.setTimeout(30_000, () => req.destroy(new Error(`GET ${path.split("?")[0]}: timed out`)));
      req.on("error", reject);
      req.end();
    });
  }

  private request(path: string, onResponse: (res: IncomingMessage) => void): ClientRequest {
    const req = this.send(path, onResponse);
    this.inflight.add(req);
    req.on("close", () => this.inflight.delete(req));
    if (this.stopped) req.destroy();
    return req;
  }

  private send(path: string, onResponse: (res: IncomingMessage) => void): ClientRequest {
    const c = this.options.connection;
    const url = new URL(path, `${c.server}/`);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (c.token) headers.Authorization = `Bearer ${c.token}`;
    if (url.protocol === "http:") return httpRequest(url, { headers }, onResponse);
    return httpsRequest(
      url,
      { headers, ca: c.ca, cert: c.cert, key: c.key, rejectUnauthorized: !c.insecureSkipTlsVerify },
      onResponse,
    );
  }
}

/** "containerd://<64 hex>", "docker://...", "cri-o://..." -> the 64-hex id. */
export function containerIdOf(containerID: string | undefined): string | undefined {
  if (!containerID) return undefined;
  const id = containerID.slice(containerID.indexOf("://") + 3);
  return /^[0-9a-f]{64}$/.test(id) ? id : undefined;
}

/**
 * The pod's workload from its controller owner: a ReplicaSet named "<deployment>-<pod-template-hash>"
 * belongs to that Deployment; a Job named "<cronjob>-<digits>" to that CronJob.
 */
export function workloadOf(
  owners: ReadonlyArray<{ kind?: string; name?: string; controller?: boolean }>,
  labels: Record<string, string>,
): Record<string, string> {
  const owner = owners.find((o) => o.controller) ?? owners[0];
  const out: Record<string, string> = {};
  if (!owner?.name) return out;
  const name = owner.name;
  switch (owner.kind) {
    case "ReplicaSet": {
      out["k8s.replicaset.name"] = name;
      const hash = labels["pod-template-hash"];
      if (hash && name.endsWith(`-${hash}`)) out["k8s.deployment.name"] = name.slice(0, -hash.length - 1);
      else if (/-[a-z0-9]{5,10}$/.test(name)) out["k8s.deployment.name"] = name.slice(0, name.lastIndexOf("-"));
      break;
    }
    case "StatefulSet":
      out["k8s.statefulset.name"] = name;
      break;
    case "DaemonSet":
      out["k8s.daemonset.name"] = name;
      break;
    case "Job": {
      out["k8s.job.name"] = name;
      if (/-\d{6,}$/.test(name)) out["k8s.cronjob.name"] = name.slice(0, name.lastIndexOf("-"));
      break;
    }
    case "CronJob":
      out["k8s.cronjob.name"] = name;
      break;
    default:
      break;
  }
  return out;
}

const WORKLOAD_KEYS = [
  "k8s.deployment.name",
  "k8s.statefulset.name",
  "k8s.daemonset.name",
  "k8s.cronjob.name",
  "k8s.job.name",
  "k8s.replicaset.name",
];

/** The resource attributes of a process in `pod`, and its service.name (the workload, else the pod). */
export function podEnrichment(pod: PodInfo, containerId: string): Enrichment {
  const attributes: Record<string, string> = {
    "k8s.pod.name": pod.name,
    "k8s.pod.uid": pod.uid,
    "k8s.namespace.name": pod.namespace,
    ...pod.workload,
  };
  if (pod.nodeName) attributes["k8s.node.name"] = pod.nodeName;
  const container = pod.containers.get(containerId);
  if (container) attributes["k8s.container.name"] = container;
  for (const [k, v] of Object.entries(pod.labels)) attributes[`k8s.pod.label.${k}`] = v;
  const workloadKey = WORKLOAD_KEYS.find((k) => pod.workload[k]);
  return { attributes, serviceName: workloadKey ? pod.workload[workloadKey] : pod.name };
}
