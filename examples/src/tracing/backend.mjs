// HTTP backend for the tracing tests. Usage: node backend.mjs <host> <port> [delayMs]
// Answers every request after `delayMs` (default 0) with JSON naming the path and the X-Request-ID
// it received, so that requests overlap in a proxy in front of it. Prints "listening <port>" once
// ready (port 0 picks a free one).
import { createServer } from "node:http";

const [host = "127.0.0.1", port = "0", delayMs = "0"] = process.argv.slice(2);
const delay = Number(delayMs);

const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    const answer = () => {
      const body = JSON.stringify({ path: req.url, requestId: req.headers["x-request-id"] ?? null });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  });
});
server.keepAliveTimeout = 5000;
server.listen(Number(port), host, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
