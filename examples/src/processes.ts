import { type ChildProcess, type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Directory holding the workload scripts (examples/src). */
export const examplesDir = fileURLToPath(new URL("../src/", import.meta.url));

/** Starts a child and resolves when a stdout line matches `ready`; returns the child and the match. */
export async function startUntil(
  cmd: string,
  args: string[],
  ready: RegExp,
  timeoutMs = 10_000,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"] });
  let buffered = "";
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${cmd} did not print ${ready} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.stdout?.on("data", (d: Buffer) => {
      buffered += d.toString();
      const m = ready.exec(buffered);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready`));
    });
  });
  return { child, match };
}

/** Collects what a child writes on its piped stdout and stderr; read it at any time. */
export function collectOutput(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return { stdout: () => stdout, stderr: () => stderr };
}

/** Runs a child to completion; rejects on a non-zero exit. Returns its stdout and pid. */
export async function run(cmd: string, args: string[]): Promise<{ stdout: string; pid: number }> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  const output = collectOutput(child);
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${code}`);
  return { stdout: output.stdout(), pid: child.pid ?? 0 };
}

/** Ends a child this process started, by its pid. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
}

/**
 * Resolves once `file` has stopped growing for three checks in a row (at most ~20 s): tcpdump lags on a
 * busy machine and loses, on SIGINT, what it has not written yet.
 */
export async function waitForStableFile(file: string, intervalMs = 200): Promise<void> {
  let last = -1;
  for (let stable = 0, i = 0; stable < 3 && i < 100; i++) {
    await new Promise((r) => setTimeout(r, intervalMs));
    const size = existsSync(file) ? statSync(file).size : 0;
    stable = size === last ? stable + 1 : 0;
    last = size;
  }
}

/**
 * Runs a shell script in a private mount namespace (`unshare --mount --propagation private`): what it
 * mounts or unmounts there leaves the host's mounts as they are, and dies with it.
 */
export function inPrivateMountNamespace(script: string, timeoutMs = 60_000): SpawnSyncReturns<string> {
  return spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], {
    encoding: "utf8",
    timeout: timeoutMs,
  });
}
