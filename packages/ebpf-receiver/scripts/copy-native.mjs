// Copies the built BPF object and shim into lib/, so the package is self-contained.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const root = join(pkg, "..", "..");
mkdirSync(join(pkg, "lib"), { recursive: true });
for (const [from, to] of [
  ["bpf/build/socket_trace.bpf.o", "socket_trace.bpf.o"],
  ["native/build/libkalman.so", "libkalman.so"],
]) {
  copyFileSync(join(root, from), join(pkg, "lib", to));
}
