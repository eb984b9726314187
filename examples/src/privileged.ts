import { beforeAll, describe } from "vitest";

/** A host requirement as the receiver's preflight reports it. */
export interface HostCheck {
  ok: boolean;
  detail: string;
  fix?: string;
}

export const skipPrivileged = process.env.KALMAN_SKIP_PRIVILEGED === "1";

/**
 * A describe block that loads real eBPF: it fails loudly when `checks()` finds the host unable
 * to, and is skipped only when KALMAN_SKIP_PRIVILEGED=1 is set on purpose.
 */
export function describePrivileged(name: string, checks: () => HostCheck[], body: () => void): void {
  describe.skipIf(skipPrivileged)(name, () => {
    beforeAll(() => {
      const failed = checks().filter((c) => !c.ok);
      if (failed.length) {
        throw new Error(
          `this test loads real eBPF and cannot run here: ${failed.map((c) => `${c.detail} (fix: ${c.fix})`).join("; ")}. ` +
            "Set KALMAN_SKIP_PRIVILEGED=1 only to skip privileged tests on purpose.",
        );
      }
    });
    body();
  });
}
