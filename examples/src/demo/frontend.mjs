// Demo frontend (Node): GET /checkout?item=N looks up inventory.kalman.test, then asks the API for
// the item's price. Usage: node frontend.mjs <port> <api base URL> <dns server ip>
import { Resolver } from "node:dns/promises";
import { createServer, get } from "node:http";

const [port, api, dnsServer] = process.argv.slice(2);
const resolver = new Resolver({ timeout: 2000, tries: 1 });
resolver.setServers([dnsServer]);

function fetchJson(url) {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode, body }));
    }).on("error", reject);
  });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, "http://frontend");
  if (url.pathname !== "/checkout") {
    res.writeHead(404).end("not found\n");
    return;
  }
  try {
    const [inventory] = await resolver.resolve4("inventory.kalman.test");
    const price = await fetchJson(`${api}/price?item=${encodeURIComponent(url.searchParams.get("item") ?? "1")}`);
    res.writeHead(price.status === 200 ? 200 : 502, { "content-type": "application/json" });
    res.end(JSON.stringify({ inventory, price: price.body }));
  } catch (e) {
    res.writeHead(500).end(`${e}\n`);
  }
});
server.listen(Number(port), "0.0.0.0", () => process.stdout.write(`listening ${port}\n`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
