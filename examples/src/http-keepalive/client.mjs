// Keep-alive HTTP client: sends `count` requests over one connection, one after another.
// Usage: node client.mjs <port> <count> [bodyBytes]. Prints "done <count>".
import { Agent, request } from "node:http";

const [port, count = "3", bodyBytes = "0"] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const body = "x".repeat(Number(bodyBytes));

function once(i) {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: Number(port), path: `/item/${i}`, method: body ? "POST" : "GET", agent },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", reject);
    req.end(body || undefined);
  });
}

for (let i = 0; i < Number(count); i++) await once(i);
agent.destroy();
process.stdout.write(`done ${count}\n`);
