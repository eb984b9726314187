import { defineConfig } from "vitest/config";

// Privileged tests load real eBPF and start real servers: run files one at a time.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/test/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default", ["json", { outputFile: ".kalman/test-results.json" }]],
  },
});
