// Demo traffic: `count` GET requests (item=1..count) with `concurrency` in flight; prints status codes.
import { Agent, get } from "node:http";

const [base, count = "5", concurrency = "1"] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const statuses = [];
let next = 1;
async function worker() {
  while (next <= Number(count)) {
    const item = next++;
    statuses.push(
      await new Promise((resolve) => {
        get(`${base}?item=${item}`, { agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        }).on("error", () => resolve(0));
      }),
    );
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
agent.destroy();
process.stdout.write(`${statuses.join(" ")}\n`);
