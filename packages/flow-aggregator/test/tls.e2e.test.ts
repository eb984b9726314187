// TLS plaintext through uprobes: real handshakes between real programs (curl, openssl s_server, nginx,
// Node https, Python ssl), traced by the real receiver; the records must be the HTTP exchanges inside.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, run, startNginx, startUntil, stop, waitForPort } from "@kalman/examples";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

let dir = "";
let cert = "";
let key = "";
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `kalman-tls-${process.pid}-`));
  cert = join(dir, "cert.pem");
  key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
    { stdio: "ignore" },
  );
});
afterEach(async () => {
  await Promise.all(children.splice(0).map(stop));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const http = (records: RequestRecord[]) => records.filter((r) => r.protocol === "http1" || r.protocol === "http2");

/** Every record is TLS, HTTP, answered, on the right server port, between 127.0.0.1 ends. */
function expectTlsExchanges(records: RequestRecord[], port: number, paths: string[], status = 200): void {
  expect(records.map((r) => r.resource).sort()).toEqual([...paths].sort());
  for (const r of records) {
    expect(r).toMatchObject({ tls: true, requestType: "GET", code: status, serverPort: port, serverAddr: "127.0.0.1" });
    expect(r.clientAddr).toBe("127.0.0.1");
    expect(r.clientPort).not.toBe(port);
  }
}

describePrivileged("TLS plaintext, end to end", () => {
  it("curl against openssl s_server -www: the client's requests are HTTP records marked tls", async () => {
    const port = await freePort();
    const srv = spawn("openssl", ["s_server", "-www", "-accept", `127.0.0.1:${port}`, "-cert", cert, "-key", key, "-quiet"], {
      stdio: "ignore",
    });
    children.push(srv);
    await waitForPort(port);
    const { records, stats, receiver } = await observe({ ports: [port] }, () =>
      run("curl", ["-sk", `https://127.0.0.1:${port}/first`, `https://127.0.0.1:${port}/second`]),
    );
    const client = http(clientSide(records));
    expectTlsExchanges(client, port, ["/first", "/second"]);
    expect(client.every((r) => r.comm === "curl")).toBe(true);
    expect(receiver.tlsPlaintext).toBeGreaterThanOrEqual(4);
    expect(receiver.tlsCiphertextDropped).toBeGreaterThan(0);
    expect(stats.malformed).toBe(0);
  });

  for (const version of ["1.1", "2"] as const) {
    it(`curl against nginx with TLS, HTTP/${version}: both sides, linked by TCP seq`, async () => {
      const nginx = await startNginx(
        `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    location / { return 200 "ok\\n"; }\n`,
        undefined,
        { listenSuffix: version === "2" ? " ssl http2" : " ssl" },
      );
      try {
        const urls = ["/a", "/b", "/c"].map((p) => `https://127.0.0.1:${nginx.port}${p}`);
        const { records } = await observe({ ports: [nginx.port] }, () =>
          run("curl", ["-sk", version === "2" ? "--http2" : "--http1.1", ...urls]),
        );
        const client = http(clientSide(records));
        const server = http(serverSide(records));
        expectTlsExchanges(client, nginx.port, ["/a", "/b", "/c"]);
        expectTlsExchanges(server, nginx.port, ["/a", "/b", "/c"]);
        expect(new Set(client.map((r) => r.protocol))).toEqual(new Set([version === "2" ? "http2" : "http1"]));
        expect(server.every((r) => r.comm === "nginx")).toBe(true);
        // one connection, seen from both ends: same client port
        expect(new Set([...client, ...server].map((r) => r.clientPort)).size).toBe(1);
        if (version === "1.1") {
          // the TLS record carrying each request starts at the same TCP seq on both sides
          for (const c of client) {
            const s = server.find((x) => x.resource === c.resource);
            expect(c.reqTcpSeq).toBeDefined();
            expect(s?.reqTcpSeq).toBe(c.reqTcpSeq);
          }
        }
      } finally {
        await nginx.stop();
      }
    });
  }

  it("Node https server and client (OpenSSL inside the node binary): both sides, seq-linked", async () => {
    const port = await freePort();
    const server = `const https = require("node:https"); const fs = require("node:fs");
https.createServer({ key: fs.readFileSync(${JSON.stringify(key)}), cert: fs.readFileSync(${JSON.stringify(cert)}) },
  (req, res) => { res.statusCode = req.url === "/missing" ? 404 : 200; res.end("hello " + req.url); })
  .listen(${port}, "127.0.0.1", () => console.log("listening ${port}"));`;
    const client = `const https = require("node:https");
const agent = new https.Agent({ keepAlive: true });
(async () => { for (const p of ["/n/0", "/n/1", "/missing"]) await new Promise((ok, ko) =>
  https.get({ host: "127.0.0.1", port: ${port}, path: p, rejectUnauthorized: false, agent }, (r) => { r.resume(); r.on("end", ok); }).on("error", ko));
  agent.destroy(); })();`;
    const srv = await startUntil(process.execPath, ["-e", server], /listening/);
    children.push(srv.child);
    const { records } = await observe({ ports: [port] }, () => run(process.execPath, ["-e", client]));
    const c = http(clientSide(records));
    const s = http(serverSide(records));
    for (const side of [c, s]) {
      expect(side.map((r) => [r.resource, r.code])).toEqual([
        ["/n/0", 200],
        ["/n/1", 200],
        ["/missing", 404],
      ]);
      expect(side.every((r) => r.tls === true && r.serverPort === port && r.comm === "node")).toBe(true);
    }
    expect(s.every((r) => r.pid === srv.child.pid)).toBe(true);
    for (let i = 0; i < 3; i++) {
      expect(c[i]?.reqTcpSeq).toBeDefined();
      expect(s[i]?.reqTcpSeq).toBe(c[i]?.reqTcpSeq);
      expect(s[i]?.respTcpSeq).toBe(c[i]?.respTcpSeq);
    }
  });

  it("Python ssl server and client (libssl, SSL_read_ex/SSL_write_ex): both sides", async () => {
    const port = await freePort();
    const server = `import http.server, ssl
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"py " + self.path.encode()
        self.send_response(201 if self.path == "/made" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", ${port}), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(${JSON.stringify(cert)}, ${JSON.stringify(key)})
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("listening", flush=True)
srv.serve_forever()`;
    const client = `import http.client, ssl
ctx = ssl._create_unverified_context()
c = http.client.HTTPSConnection("127.0.0.1", ${port}, context=ctx)
for p in ["/py/1", "/made"]:
    c.request("GET", p)
    c.getresponse().read()
c.close()`;
    const srv = await startUntil("python3", ["-c", server], /listening/);
    children.push(srv.child);
    const { records } = await observe({ ports: [port] }, () => run("python3", ["-c", client]));
    for (const side of [http(clientSide(records)), http(serverSide(records))]) {
      expect(side.map((r) => [r.resource, r.code])).toEqual([
        ["/py/1", 200],
        ["/made", 201],
      ]);
      expect(side.every((r) => r.tls === true && r.serverPort === port && r.serverAddr === "127.0.0.1")).toBe(true);
    }
  });

  it("tls: false turns the probes off: the same exchange yields no TLS record", async () => {
    const nginx = await startNginx(
      `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    location / { return 200 "ok\\n"; }\n`,
      undefined,
      { listenSuffix: " ssl" },
    );
    try {
      const { records, receiver } = await observe({ ports: [nginx.port], tls: false }, () =>
        run("curl", ["-sk", `https://127.0.0.1:${nginx.port}/off`]),
      );
      expect(records.filter((r) => r.tls)).toEqual([]);
      expect(records.filter((r) => r.resource === "/off")).toEqual([]);
      expect(receiver.tlsPlaintext).toBe(0);
      expect(receiver.tlsTargets).toBe(0);
    } finally {
      await nginx.stop();
    }
  });
});
