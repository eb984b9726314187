// HTTP load for the tracing tests: GET <base>/item/<n> for n = 1..count over keep-alive connections.
// Usage: node load.mjs <baseUrl> <count> <concurrency> [--ids TAG] [--rate PER_SECOND] [--max-seconds S]
//   --ids TAG       send "X-Request-ID: TAG-<n>" with request n (default: no X-Request-ID)
//   --rate N        start at most N requests per second (default: as fast as `concurrency` allows)
//   --max-seconds S stop starting requests after S seconds (default 120)
// Prints "ok <2xx responses> failed <errors and other statuses>" and exits 0.
import { Agent, get } from "node:http";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { ids: { type: "string" }, rate: { type: "string" }, "max-seconds": { type: "string" } },
});
const [base, countArg = "100", concurrencyArg = "10"] = positionals;
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const rate = values.rate === undefined ? 0 : Number(values.rate);
const deadline = Date.now() + 1000 * Number(values["max-seconds"] ?? 120);
const url = new URL(base);
const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
const t0 = Date.now();
let next = 1;
let ok = 0;
let failed = 0;

function one(n) {
  const headers = values.ids === undefined ? {} : { "x-request-id": `${values.ids}-${n}` };
  return new Promise((resolve) => {
    const req = get(
      { host: url.hostname, port: Number(url.port || 80), path: `/item/${n}`, headers, agent, timeout: 10_000 },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode >= 200 && res.statusCode < 300) ok++;
          else failed++;
          resolve();
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => {
      failed++;
      resolve();
    });
  });
}

async function worker() {
  while (next <= count && Date.now() < deadline) {
    const n = next++;
    if (rate > 0) {
      const due = t0 + ((n - 1) * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await one(n);
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
agent.destroy();
process.stdout.write(`ok ${ok} failed ${failed}\n`);
