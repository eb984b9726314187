// Docs that cannot rot: docs/configuration.md is what the schema generates, and each package README's
// example (the fenced ```ts example block) runs against the built packages and prints what it says.

import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { receiverPreflight } from "@kalman/ebpf-receiver";
import { describePrivileged } from "@kalman/examples";
import { describe, expect, it } from "vitest";
import { configurationMarkdown } from "../src/config/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const tsx = join(root, "node_modules", ".bin", "tsx");

describe("docs/configuration.md", () => {
  it("is what the schema generates (run `pnpm docs:config` after changing the schema)", () => {
    const committed = readFileSync(join(root, "docs", "configuration.md"), "utf8");
    expect(committed, "docs/configuration.md is stale: run `pnpm docs:config`").toBe(configurationMarkdown());
  });

  it("documents every key, with its variable and flag", () => {
    const md = configurationMarkdown();
    for (const needle of [
      "`selection.include`",
      "`otlp.endpoint` | URL | unset | `OTEL_EXPORTER_OTLP_ENDPOINT`, `--otlp-endpoint`",
      "`packets.snapLen` | number | `256`",
      "`ebpf.captureBytes` | number | `1024` | `KALMAN_CAPTURE_BYTES`, `--capture-bytes`",
    ]) {
      expect(md).toContain(needle);
    }
  });
});

interface Example {
  pkg: string;
  code: string;
  privileged: boolean;
  /** Texts the example says it prints (`// prints: ...`). */
  prints: string[];
}

function readmeExamples(): Example[] {
  const out: Example[] = [];
  const packages = readdirSync(join(root, "packages")).sort();
  for (const pkg of packages) {
    let text: string;
    try {
      text = readFileSync(join(root, "packages", pkg, "README.md"), "utf8");
    } catch {
      continue;
    }
    for (const m of text.matchAll(/^```(?:ts|js) example( privileged)?\n([\s\S]*?)^```$/gm)) {
      const code = m[2] ?? "";
      const prints = [...code.matchAll(/\/\/ prints: (.+)$/gm)].map((p) => (p[1] ?? "").trim());
      out.push({ pkg, code, privileged: m[1] !== undefined, prints });
    }
  }
  return out;
}

function runExample(ex: Example): void {
  // inside the package, so the example imports the package by its own name (self-reference)
  const file = join(root, "packages", ex.pkg, `.readme-example-${process.pid}.mts`);
  writeFileSync(file, ex.code);
  try {
    const r = spawnSync(tsx, [file], { encoding: "utf8", timeout: 60_000, cwd: join(root, "packages", ex.pkg) });
    expect(r.stderr, `the ${ex.pkg} README example failed`).not.toMatch(/Error|error TS/);
    expect(r.status).toBe(0);
    expect(ex.prints.length, `the ${ex.pkg} README example says what it prints (// prints: ...)`).toBeGreaterThan(0);
    for (const p of ex.prints) expect(r.stdout).toContain(p);
  } finally {
    rmSync(file, { force: true });
  }
}

const examples = readmeExamples();

describe("package README examples", () => {
  it("every package README has one runnable example", () => {
    const packages = readdirSync(join(root, "packages")).filter((p) => {
      try {
        readFileSync(join(root, "packages", p, "package.json"));
        return true;
      } catch {
        return false;
      }
    });
    expect(new Set(examples.map((e) => e.pkg))).toEqual(new Set(packages));
  });

  for (const ex of examples.filter((e) => !e.privileged)) {
    it(`${ex.pkg}: runs and prints what it says`, () => runExample(ex));
  }
});

describePrivileged("package README examples that load eBPF", receiverPreflight, () => {
  for (const ex of examples.filter((e) => e.privileged)) {
    it(`${ex.pkg}: runs and prints what it says`, () => runExample(ex));
  }
});
