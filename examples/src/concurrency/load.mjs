// Concurrent GET /item/<n> for n = 1..count with `concurrency` connections. Prints the status codes' tally.
import { Agent, get } from "node:http";

const [port, count = "200", concurrency = "20"] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
let next = 1;
let ok = 0;
async function worker() {
  while (next <= Number(count)) {
    const n = next++;
    await new Promise((resolve) => {
      get({ host: "127.0.0.1", port: Number(port), path: `/item/${n}`, agent }, (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) ok++;
          resolve();
        });
      }).on("error", resolve);
    });
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
agent.destroy();
process.stdout.write(`ok ${ok}\n`);
