// Single-threaded event-loop API for the correlation tests: GET /item/<n> reads Redis key item:<n>
// over a fresh connection (raw RESP). Usage: node event_loop_api.mjs <port> <redis port>
import { createServer } from "node:http";
import { connect } from "node:net";

const [port, redisPort] = process.argv.slice(2).map(Number);

function redisGet(key) {
  return new Promise((resolve, reject) => {
    const s = connect(redisPort, "127.0.0.1", () => s.write(`*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`));
    let reply = "";
    s.on("data", (d) => {
      reply += d.toString("latin1");
      if (reply.startsWith("$-1\r\n") || /^\$\d+\r\n[\s\S]*\r\n$/.test(reply)) {
        s.end();
        resolve(reply);
      }
    });
    s.on("error", reject);
  });
}

const server = createServer(async (req, res) => {
  const n = req.url.split("/").pop();
  // a little delay so that several requests are in flight on the one thread at once
  await new Promise((r) => setTimeout(r, 5));
  const value = await redisGet(`item:${n}`);
  res.writeHead(200, { "content-length": Buffer.byteLength(value) });
  res.end(value);
});
server.keepAliveTimeout = 5000;
server.listen(port, "127.0.0.1", () => process.stdout.write(`listening ${server.address().port}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
