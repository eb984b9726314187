import { basename } from "node:path";
import { BoundedMap } from "@kalman/flow-aggregator";
import { parsePortSpec, type SelectionRule } from "../config/schema.js";
import { globToRegExp } from "./glob.js";
import {
  netnsOf,
  type OpenSocket,
  type ProcessFacts,
  readOpenSockets,
  readProcessFacts,
  socketInodes,
} from "./procfs.js";

/** What selection needs of the K8s pod watcher: the pod of a container (64-hex id), if known. */
export interface PodLookup {
  podOfContainer(containerId: string): { namespace: string; labels: Record<string, string> } | undefined;
}

/** Said when a rule matches on K8s fields and there is no cluster to ask. */
export const K8S_SELECTION_NEEDS_CLUSTER =
  "matching on K8s namespace or pod labels needs a cluster, and none is configured (not running in a pod: " +
  "KUBERNETES_SERVICE_HOST is unset; KUBECONFIG is unset; or KALMAN_K8S=off)";

/** True when a rule matches on K8s namespace or pod labels. */
export function ruleUsesK8s(rule: SelectionRule): boolean {
  return rule.k8sNamespace !== undefined || rule.k8sPodLabels !== undefined;
}

export interface SelectionOptions {
  /** A process is traced when it matches any of these (all fields of a rule must match). Empty: every process. */
  include?: SelectionRule[];
  /** A process matching any of these is never traced. */
  exclude?: SelectionRule[];
  /** Leave out known telemetry agents and other Kalman agents (default true). */
  excludeTelemetryAgents?: boolean;
  /** Never traced (default: this process). */
  selfPid?: number;
  procRoot?: string;
  /** Processes remembered at once; the oldest decision is forgotten past it (default 16384). */
  maxEntries?: number;
  /** A decision is made again after this long, for reused pids and ports opened later (default 5000 ms). */
  recheckMs?: number;
  /** The K8s pod watcher; required when a rule uses k8sNamespace or k8sPodLabels. */
  pods?: PodLookup;
  /**
   * A decision that needed a pod not known yet (a container not in the pod list so far: the list has
   * not arrived, or the pod is new) is made again after this long (default 1000 ms).
   */
  podRetryMs?: number;
}

export interface SelectionStats {
  /** Decisions made (each reads /proc). */
  decisions: number;
  /** Processes seen and selected / left out, by their latest decision. */
  processesSelected: number;
  processesFiltered: number;
  /** Events dropped because their process is not selected. */
  eventsFiltered: number;
  /** Decisions forgotten to keep the cache bounded. */
  evictions: number;
}

/** Executable names of telemetry agents left out by default. */
const TELEMETRY_AGENTS = [
  /^otelcol/,
  /^beyla$/,
  /^alloy$/,
  /^grafana-agent/,
  /^datadog-agent$/,
  /^trace-agent$/,
  /^fluent-bit$/,
  /^td-agent-bit$/,
  /^vector$/,
  /^jaeger-agent$/,
];
/** Another Kalman agent: the CLI script or the installed `kalman` command. */
const KALMAN_AGENT = /(^|\/)kalman$|\/agent\/dist\/src\/cli\.js$/;

interface CompiledRule {
  pids?: Set<number>;
  exe?: RegExp;
  container?: RegExp;
  ports?: Array<[number, number]>;
  k8sNamespace?: RegExp;
  k8sPodLabels?: Array<[string, RegExp]>;
}

function compile(rule: SelectionRule): CompiledRule {
  const c: CompiledRule = {};
  if (rule.pids) c.pids = new Set(rule.pids);
  if (rule.exePath !== undefined) c.exe = globToRegExp(rule.exePath);
  if (rule.containerId !== undefined) c.container = globToRegExp(rule.containerId);
  if (rule.ports !== undefined) {
    const parsed = parsePortSpec(rule.ports);
    if (typeof parsed === "string") throw new Error(`selection rule ports: ${parsed}`);
    c.ports = parsed;
  }
  if (rule.k8sNamespace !== undefined) c.k8sNamespace = globToRegExp(rule.k8sNamespace);
  if (rule.k8sPodLabels !== undefined)
    c.k8sPodLabels = Object.entries(rule.k8sPodLabels).map(([k, v]) => [k, globToRegExp(v)]);
  return c;
}

function isPidOnly(rule: SelectionRule): boolean {
  return (
    rule.pids !== undefined &&
    rule.exePath === undefined &&
    rule.containerId === undefined &&
    rule.ports === undefined &&
    !ruleUsesK8s(rule)
  );
}

/** Reads a process's facts on first use only, once per decision. */
class Lazy {
  private facts?: ProcessFacts;
  private openPorts?: Set<number>;
  /** Set when a rule needed the pod of a container the pod list does not know (yet). */
  podUnknown = false;
  constructor(
    readonly pid: number,
    private readonly selector: ProcessSelector,
  ) {}
  get(): ProcessFacts {
    this.facts ??= readProcessFacts(this.pid, this.selector.procRoot);
    return this.facts;
  }
  ports(): Set<number> {
    this.openPorts ??= this.selector.openPortsOf(this.pid);
    return this.openPorts;
  }
  /** The process's pod: undefined outside containers, or (podUnknown) for a container not listed yet. */
  pod(pods: PodLookup): { namespace: string; labels: Record<string, string> } | undefined {
    const id = this.get().containerId;
    if (id === undefined) return undefined;
    const pod = pods.podOfContainer(id);
    if (!pod) this.podUnknown = true;
    return pod;
  }
}

/**
 * Which processes are traced, after Beyla's discovery: include/exclude rules by pid, executable path
 * glob, container id and open port. `accept(pid)` is a cache lookup; a pid not seen before (or not
 * for `recheckMs`) is decided from /proc. The cache is bounded.
 */
export class ProcessSelector {
  readonly procRoot: string;
  private readonly include: CompiledRule[];
  private readonly exclude: CompiledRule[];
  private readonly includeRules: SelectionRule[];
  private readonly telemetry: boolean;
  private readonly selfPid: number;
  private readonly maxEntries: number;
  private readonly recheckMs: number;
  private readonly pods: PodLookup | undefined;
  private readonly podRetryMs: number;
  /** pid -> decision time (ms), negative when left out. */
  /** pid -> when it was decided (positive: selected, negative: left out); evicted in O(1) under pid churn. */
  private readonly decided: BoundedMap<number, number>;
  private readonly sockets = new Map<string, { at: number; list: OpenSocket[] }>();
  private now = Date.now();
  private readonly counters: SelectionStats = {
    decisions: 0,
    processesSelected: 0,
    processesFiltered: 0,
    eventsFiltered: 0,
    evictions: 0,
  };

  constructor(opts: SelectionOptions = {}) {
    this.includeRules = opts.include ?? [];
    this.include = this.includeRules.map(compile);
    this.exclude = (opts.exclude ?? []).map(compile);
    this.telemetry = opts.excludeTelemetryAgents ?? true;
    this.selfPid = opts.selfPid ?? process.pid;
    this.procRoot = opts.procRoot ?? "/proc";
    this.maxEntries = opts.maxEntries ?? 16384;
    this.decided = new BoundedMap(this.maxEntries, (_pid, t) => {
      if (t > 0) this.counters.processesSelected--;
      else this.counters.processesFiltered--;
      this.counters.evictions++;
    });
    this.recheckMs = opts.recheckMs ?? 5000;
    this.pods = opts.pods;
    this.podRetryMs = Math.min(this.recheckMs, opts.podRetryMs ?? 1000);
    const k8sRules = [...this.includeRules, ...(opts.exclude ?? [])].filter(ruleUsesK8s);
    if (k8sRules.length && !this.pods) throw new Error(K8S_SELECTION_NEEDS_CLUSTER);
  }

  /** True when every process is traced: no rule and no default exclusion, so there is nothing to check. */
  get selectsAll(): boolean {
    return !this.include.length && !this.exclude.length && !this.telemetry;
  }

  /**
   * The pid allowlist to load into the kernel when the include rules are exactly a set of pids
   * (every rule has only `pids`), else undefined: the other fields are checked here, per process.
   */
  kernelPids(): number[] | undefined {
    if (!this.includeRules.length || !this.includeRules.every(isPidOnly)) return undefined;
    return [...new Set(this.includeRules.flatMap((r) => r.pids ?? []))];
  }

  /** Sets the clock used for rechecks; called once per pump, not per event. */
  setNow(ms: number): void {
    this.now = ms;
  }

  /** Whether the process's events are traced. Counts filtered events. */
  readonly accept = (pid: number): boolean => {
    const at = this.decided.get(pid);
    if (at !== undefined && this.now - Math.abs(at) < this.recheckMs) {
      if (at > 0) return true;
      this.counters.eventsFiltered++;
      return false;
    }
    const { selected, podUnknown } = this.decideWith(pid);
    if (at !== undefined) {
      // recheck: undo the previous decision's count
      if (at > 0) this.counters.processesSelected--;
      else this.counters.processesFiltered--;
    }
    // a decision that waited on an unknown pod is made again after podRetryMs instead of recheckMs
    const stamp = (this.now || 1) - (podUnknown ? this.recheckMs - this.podRetryMs : 0);
    this.decided.set(pid, selected ? stamp : -stamp);
    if (selected) this.counters.processesSelected++;
    else this.counters.processesFiltered++;
    if (!selected) this.counters.eventsFiltered++;
    return selected;
  };

  /** Decides from /proc (and the pod list), now. */
  decide(pid: number): boolean {
    return this.decideWith(pid).selected;
  }

  private decideWith(pid: number): { selected: boolean; podUnknown: boolean } {
    this.counters.decisions++;
    if (pid === this.selfPid) return { selected: false, podUnknown: false };
    const lazy = new Lazy(pid, this);
    const selected =
      (!this.include.length || this.include.some((r) => this.matches(r, lazy))) &&
      !this.exclude.some((r) => this.matches(r, lazy)) &&
      !(this.telemetry && isTelemetryAgent(lazy.get()));
    return { selected, podUnknown: lazy.podUnknown };
  }

  stats(): SelectionStats {
    return { ...this.counters };
  }

  /** One line for the startup summary. */
  describe(): string {
    const rules = (list: SelectionRule[]) =>
      list
        .map((r) =>
          [
            r.pids ? `pids ${r.pids.join(",")}` : "",
            r.exePath !== undefined ? `exe ${r.exePath}` : "",
            r.ports !== undefined ? `open ports ${String(r.ports)}` : "",
            r.containerId !== undefined ? `container ${r.containerId}` : "",
            r.k8sNamespace !== undefined ? `K8s namespace ${r.k8sNamespace}` : "",
            r.k8sPodLabels !== undefined
              ? `pod labels ${Object.entries(r.k8sPodLabels)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(",")}`
              : "",
          ]
            .filter(Boolean)
            .join(" and "),
        )
        .join(" or ");
    const parts = [this.includeRules.length ? `processes with ${rules(this.includeRules)}` : "all processes"];
    if (this.exclude.length) parts.push(`except ${this.exclude.length} exclude rule(s)`);
    if (this.telemetry) parts.push("without telemetry agents");
    return parts.join(", ");
  }

  /** Local ports the process has open (listening TCP, bound UDP), from its network namespace's tables. */
  openPortsOf(pid: number): Set<number> {
    const ns = netnsOf(pid, this.procRoot) ?? `pid${pid}`;
    let entry = this.sockets.get(ns);
    if (!entry || this.now - entry.at >= 1000) {
      entry = { at: this.now, list: readOpenSockets(pid, this.procRoot) };
      this.sockets.delete(ns);
      this.sockets.set(ns, entry);
      if (this.sockets.size > 256) this.sockets.delete(this.sockets.keys().next().value as string);
    }
    const open = new Set<number>();
    if (!entry.list.length) return open;
    const held = socketInodes(pid, this.procRoot);
    for (const s of entry.list) if (held.has(s.inode)) open.add(s.port);
    return open;
  }

  private matches(rule: CompiledRule, lazy: Lazy): boolean {
    if (rule.pids && !rule.pids.has(lazy.pid)) return false;
    if (rule.exe) {
      const exe = lazy.get().exe;
      if (exe === undefined || !rule.exe.test(exe)) return false;
    }
    if (rule.container) {
      const id = lazy.get().containerId;
      if (id === undefined || !rule.container.test(id)) return false;
    }
    if (rule.ports) {
      const open = lazy.ports();
      let any = false;
      for (const p of open) {
        if (rule.ports.some(([from, to]) => p >= from && p <= to)) {
          any = true;
          break;
        }
      }
      if (!any) return false;
    }
    if (rule.k8sNamespace || rule.k8sPodLabels) {
      const pod = this.pods ? lazy.pod(this.pods) : undefined;
      if (!pod) return false;
      if (rule.k8sNamespace && !rule.k8sNamespace.test(pod.namespace)) return false;
      if (rule.k8sPodLabels) {
        for (const [key, value] of rule.k8sPodLabels) {
          const v = pod.labels[key];
          if (v === undefined || !value.test(v)) return false;
        }
      }
    }
    return true;
  }
}

export function isTelemetryAgent(facts: ProcessFacts): boolean {
  const names = [facts.exe, facts.argv[0]].filter((n): n is string => !!n).map((n) => basename(n));
  if (names.some((n) => TELEMETRY_AGENTS.some((re) => re.test(n)))) return true;
  return facts.argv.slice(0, 2).some((a) => KALMAN_AGENT.test(a));
}
