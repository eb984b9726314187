/** Stage of the tracer (or packet capture) lifecycle where something failed. */
export type ReceiverStage =
  | "preflight"
  | "open"
  | "load"
  | "configure"
  | "attach"
  | "drain"
  | "close"
  // packet capture: entering the namespace, compiling/attaching the filter, mapping the ring
  | "setns"
  | "filter"
  | "mmap";

/** Load/attach problems throw this: which stage failed, why, and what to run. */
export class ReceiverError extends Error {
  override readonly name = "ReceiverError";
  constructor(
    readonly stage: ReceiverStage,
    message: string,
    readonly fix: string,
    readonly detail?: string,
  ) {
    super(`${stage}: ${message}\n  fix: ${fix}${detail ? `\n${detail}` : ""}`);
  }
}
