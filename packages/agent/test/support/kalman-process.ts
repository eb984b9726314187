import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { collectOutput } from "@kalman/examples";

/** The built CLI the tests run (`pnpm build` first). */
export const cli = fileURLToPath(new URL("../../dist/src/cli.js", import.meta.url));

/** A `kalman` child process with its output collected. */
export interface KalmanProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits (polling every 50 ms) until stderr contains `text`; false after `ms`. */
  waitForStderr(text: string, ms?: number): Promise<boolean>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export function spawnKalman(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): KalmanProcess {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = collectOutput(child);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    stdout: output.stdout,
    stderr: output.stderr,
    exited,
    async waitForStderr(text, ms = 5000) {
      for (let waited = 0; !output.stderr().includes(text) && waited < ms; waited += 50)
        await new Promise((r) => setTimeout(r, 50));
      return output.stderr().includes(text);
    },
  };
}
