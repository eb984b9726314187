// Where the API server is and how to authenticate: in-cluster (service account) or a kubeconfig.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** How to reach the Kubernetes API server. */
export interface K8sConnection {
  /** https://host:port (or http:// for a local test server). */
  server: string;
  token?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecureSkipTlsVerify?: boolean;
  /** Where this came from, for messages. */
  source: string;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * The in-cluster connection (KUBERNETES_SERVICE_HOST/PORT + the service account token and CA) when
 * running in a pod, else the kubeconfig (`kubeconfig`, else KUBECONFIG, else ~/.kube/config when
 * `tryHome`), else undefined. Throws with the key and the fix when a config is there but unusable.
 */
export function k8sConnection(
  options: { kubeconfig?: string; env?: NodeJS.ProcessEnv; tryHome?: boolean; serviceAccountDir?: string } = {},
): K8sConnection | undefined {
  const env = options.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST?.trim();
  if (!options.kubeconfig && host) {
    const port = env.KUBERNETES_SERVICE_PORT?.trim() || "443";
    const dir = options.serviceAccountDir ?? SERVICE_ACCOUNT;
    let token: string;
    try {
      token = readFileSync(join(dir, "token"), "utf8").trim();
    } catch {
      throw new Error(
        `k8s: KUBERNETES_SERVICE_HOST is set but ${dir}/token cannot be read; mount the service account token (automountServiceAccountToken: true)`,
      );
    }
    let ca: Buffer | undefined;
    try {
      ca = readFileSync(join(dir, "ca.crt"));
    } catch {
      ca = undefined;
    }
    const h = host.includes(":") ? `[${host}]` : host;
    return { server: `https://${h}:${port}`, token, ca, source: "in-cluster service account" };
  }
  const path =
    options.kubeconfig ??
    env.KUBECONFIG?.split(":")[0] ??
    (options.tryHome ? join(homedir(), ".kube", "config") : undefined);
  if (!path) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (!options.kubeconfig && !env.KUBECONFIG) return undefined;
    throw new Error(
      `k8s: kubeconfig ${path} cannot be read (${(err as Error).message}); set KUBECONFIG to a readable file`,
    );
  }
  return fromKubeconfig(text, path);
}

type Node = Record<string, unknown>;

/** The current context's cluster and user from a kubeconfig text (YAML or JSON). */
export function fromKubeconfig(text: string, path = "kubeconfig"): K8sConnection {
  const doc = (text.trimStart().startsWith("{") ? JSON.parse(text) : parseSimpleYaml(text)) as Node;
  const named = (list: unknown, name: unknown, what: string): Node => {
    const item = (Array.isArray(list) ? list : []).find((x) => (x as Node)?.name === name) as Node | undefined;
    const inner = item?.[what] as Node | undefined;
    if (!inner)
      throw new Error(`k8s: ${path}: no ${what} named "${String(name)}"; fix current-context or the ${what}s list`);
    return inner;
  };
  const contexts = Array.isArray(doc.contexts) ? (doc.contexts as Node[]) : [];
  const contextName = doc["current-context"] ?? contexts[0]?.name;
  const context = named(doc.contexts, contextName, "context");
  const cluster = named(doc.clusters, context.cluster, "cluster");
  const user = context.user !== undefined ? named(doc.users, context.user, "user") : {};
  const server = String(cluster.server ?? "");
  if (!/^https?:\/\//.test(server)) throw new Error(`k8s: ${path}: cluster.server "${server}" is not an http(s) URL`);
  if (user.exec || user["auth-provider"])
    throw new Error(
      `k8s: ${path}: exec / auth-provider users are not supported; use a token or client certificate user`,
    );
  const data = (k: string, file: string, from: Node): Buffer | undefined => {
    if (typeof from[k] === "string") return Buffer.from(from[k] as string, "base64");
    if (typeof from[file] === "string") return readFileSync(from[file] as string);
    return undefined;
  };
  let token = typeof user.token === "string" ? user.token : undefined;
  if (!token && typeof user.tokenFile === "string") token = readFileSync(user.tokenFile, "utf8").trim();
  return {
    server: server.replace(/\/+$/, ""),
    token,
    ca: data("certificate-authority-data", "certificate-authority", cluster),
    cert: data("client-certificate-data", "client-certificate", user),
    key: data("client-key-data", "client-key", user),
    insecureSkipTlsVerify:
      cluster["insecure-skip-tls-verify"] === true || cluster["insecure-skip-tls-verify"] === "true",
    source: path,
  };
}

/**
 * The YAML subset kubeconfigs are written in: nested maps and lists of maps by indentation, plain
 * or quoted scalars. Not a general YAML parser (no anchors, flow collections or multi-line strings).
 */
export function parseSimpleYaml(text: string): unknown {
  const lines = text
    .split("\n")
    .map((l) => l.replace(/\r$/, ""))
    .filter((l) => l.trim() !== "" && !l.trimStart().startsWith("#") && l.trim() !== "---");
  let i = 0;
  const indentOf = (l: string) => l.length - l.trimStart().length;
  const scalar = (v: string): unknown => {
    const t = v.trim();
    if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) return t.slice(1, -1);
    if (t === "true") return true;
    if (t === "false") return false;
    if (t === "null" || t === "~" || t === "") return null;
    if (t === "[]") return [];
    if (t === "{}") return {};
    return t;
  };
  const block = (indent: number): unknown => {
    const first = lines[i];
    if (first === undefined) return null;
    if (first.trimStart().startsWith("- ") || first.trim() === "-") {
      const list: unknown[] = [];
      while (
        i < lines.length &&
        indentOf(lines[i] as string) === indent &&
        (lines[i] as string).trimStart().startsWith("-")
      ) {
        const line = lines[i] as string;
        const rest = line.trimStart().slice(1);
        // "- key: value" opens a map whose keys sit at the item's indent + 2
        const itemIndent = indent + 1 + (rest.length - rest.trimStart().length);
        lines[i] = " ".repeat(itemIndent) + rest.trimStart();
        if (rest.trim() === "") {
          i++;
          list.push(block(indentOf(lines[i] ?? "")));
        } else if (/^[^:]+:( |$)/.test(rest.trim())) list.push(block(itemIndent));
        else {
          list.push(scalar(rest));
          i++;
        }
      }
      return list;
    }
    const map: Record<string, unknown> = {};
    while (i < lines.length && indentOf(lines[i] as string) === indent) {
      const line = (lines[i] as string).trim();
      if (line.startsWith("-")) break;
      const colon = line.search(/:( |$)/);
      if (colon < 0) {
        i++;
        continue;
      }
      const key = String(scalar(line.slice(0, colon)));
      const value = line.slice(colon + 1).trim();
      i++;
      if (value !== "") map[key] = scalar(value);
      else {
        const next = lines[i];
        if (
          next !== undefined &&
          (indentOf(next) > indent || (indentOf(next) === indent && next.trimStart().startsWith("-")))
        )
          map[key] = block(indentOf(next));
        else map[key] = null;
      }
    }
    return map;
  };
  return block(indentOf(lines[0] ?? ""));
}
