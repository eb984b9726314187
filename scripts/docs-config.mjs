#!/usr/bin/env node
// Writes docs/configuration.md from the agent's config schema (run `pnpm build` first).
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { configurationMarkdown } from "../packages/agent/dist/src/config/index.js";

const target = fileURLToPath(new URL("../docs/configuration.md", import.meta.url));
writeFileSync(target, configurationMarkdown());
console.log(`wrote ${target}`);
