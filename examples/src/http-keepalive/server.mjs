// Tiny keep-alive HTTP server for the demo and tests. Usage: node server.mjs <port>
// Prints "listening <port>" once ready (port 0 picks a free one).
import { createServer } from "node:http";

const server = createServer((req, res) => {
  let body = 0;
  req.on("data", (chunk) => {
    body += chunk.length;
  });
  req.on("end", () => {
    const text = JSON.stringify({ path: req.url, method: req.method, received: body });
    res.writeHead(req.url === "/missing" ? 404 : 200, { "content-type": "application/json" });
    res.end(text);
  });
});
server.keepAliveTimeout = 5000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
