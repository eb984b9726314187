// TLS plaintext through uprobes: real handshakes between real programs (curl, openssl s_server, nginx,
// Node https, Python ssl), traced by the real receiver; the records must be the HTTP exchanges inside.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SocketTracer } from "@kalman/ebpf-receiver";
import { freePort, run, selfSignedCert, startNginx, startUntil, stop, waitForPort } from "@kalman/examples";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { L7Aggregator } from "../src/aggregator.js";
import { postgresql } from "../src/protocols/postgresql/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

let dir = "";
let cert = "";
let key = "";
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), `kalman-tls-${process.pid}-`));
  ({ cert, key } = selfSignedCert(dir));
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

const GO_PROGRAM = `package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if os.Args[1] == "server" {
		http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/teapot" {
				w.WriteHeader(418)
			}
			fmt.Fprintf(w, "go %s", r.URL.Path)
		})
		srv := &http.Server{Addr: "127.0.0.1:" + os.Args[2], TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		fmt.Println("listening")
		if err := srv.ListenAndServeTLS(os.Args[3], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, p := range os.Args[3:] {
		r, err := c.Get("https://127.0.0.1:" + os.Args[2] + p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
}
`;

/** Builds the Go HTTPS server/client above with Debian's golang (HTTP/1.1 over crypto/tls). */
function buildGo(): string {
  const src = join(dir, "go");
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, "main.go"), GO_PROGRAM);
  const bin = join(src, "gotls");
  execFileSync("go", ["build", "-o", bin, "main.go"], {
    cwd: src,
    env: { ...process.env, GOCACHE: join(src, "cache"), GO111MODULE: "off", HOME: src },
    stdio: ["ignore", "ignore", "inherit"],
  });
  return bin;
}

describePrivileged("TLS plaintext, end to end", () => {
  it("curl against openssl s_server -www: the client's requests are HTTP records marked tls", async () => {
    const port = await freePort();
    const srv = spawn(
      "openssl",
      ["s_server", "-www", "-accept", `127.0.0.1:${port}`, "-cert", cert, "-key", key, "-quiet"],
      {
        stdio: "ignore",
      },
    );
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

  it("the agent's own TLS requests (from the tracing process) are not captured; the server's view is", async () => {
    const nginx = await startNginx(
      `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    location / { return 200 "ok\\n"; }\n`,
      undefined,
      { listenSuffix: " ssl" },
    );
    try {
      const { records } = await observe({ ports: [nginx.port] }, async () => {
        // this process holds the tracer, as the agent does when it exports over HTTPS
        await new Promise<void>((ok, ko) =>
          httpsGet({ host: "127.0.0.1", port: nginx.port, path: "/self", rejectUnauthorized: false }, (r) => {
            r.resume();
            r.on("end", ok);
          }).on("error", ko),
        );
      });
      expect(records.filter((r) => r.pid === process.pid)).toEqual([]);
      expect(http(serverSide(records)).map((r) => [r.resource, r.tls, r.comm])).toEqual([["/self", true, "nginx"]]);
    } finally {
      await nginx.stop();
    }
  });

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

  it("a Go HTTPS server and client started after the tracer are picked up; their probes go when they exit", async () => {
    const bin = buildGo();
    const port = await freePort();
    const tracer = SocketTracer.open({ ports: [port], closeOnSignals: false });
    const agg = new L7Aggregator();
    try {
      const srv = await startUntil(bin, ["server", String(port), cert, key], /listening/);
      children.push(srv.child);
      // exec is noticed by the tracer itself; wait for the disassembly and attach to finish
      for (let i = 0; i < 100 && !tracer.tlsTargets().some((t) => t.kind === "go"); i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await tracer.tlsSettled();
      const target = tracer.tlsTargets().find((t) => t.kind === "go");
      expect(target?.pids).toEqual([srv.child.pid]);
      const client = await run(bin, ["client", String(port), "/g/1", "/teapot"]);
      await new Promise((r) => setTimeout(r, 200));
      for (let b = tracer.drainOnce(); b; b = tracer.drainOnce()) agg.ingestBatch(b);
      const records = http(agg.takeRecords());
      for (const [side, pid] of [
        [clientSide(records), client.pid],
        [serverSide(records), srv.child.pid],
      ] as const) {
        expect(side.map((r) => [r.resource, r.code])).toEqual([
          ["/g/1", 200],
          ["/teapot", 418],
        ]);
        expect(side.every((r) => r.tls === true && r.pid === pid && r.serverPort === port)).toBe(true);
      }
      const c = clientSide(records);
      const s2 = serverSide(records);
      // writes carry the TLS record's seq; a Read served from tls.Conn's buffer (the first request can
      // arrive with the handshake's last read) has none: where the server knows it, it is the client's
      expect(c.every((r) => r.reqTcpSeq !== undefined)).toBe(true);
      expect(s2[1]?.reqTcpSeq).toBe(c[1]?.reqTcpSeq);
      expect(s2.every((r, i) => r.reqTcpSeq === undefined || r.reqTcpSeq === c[i]?.reqTcpSeq)).toBe(true);
      // the server exits: no process maps the binary, its probes are detached
      await stop(srv.child);
      tracer.pruneTlsTargets();
      expect(tracer.tlsTargets().filter((t) => t.kind === "go")).toEqual([]);
      expect(tracer.stats().tlsAttachFailures).toEqual({});
    } finally {
      tracer.close();
    }
  });

  it("psql with sslmode=require against PostgreSQL with ssl=on: queries are recorded as TLS", async () => {
    const BIN = "/usr/lib/postgresql/15/bin";
    const pgdir = mkdtempSync(join(tmpdir(), `kalman-tls-pg-${process.pid}-`));
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(pgdir, uid, gid);
    execFileSync(
      "runuser",
      ["-u", "postgres", "--", `${BIN}/initdb`, "-D", `${pgdir}/data`, "-U", "postgres", "--auth=trust"],
      {
        stdio: "ignore",
      },
    );
    for (const [from, to] of [
      [cert, "server.crt"],
      [key, "server.key"],
    ] as const) {
      copyFileSync(from, join(pgdir, to));
      chownSync(join(pgdir, to), uid, gid);
      chmodSync(join(pgdir, to), 0o600);
    }
    const port = await freePort();
    const pg = spawn(
      `${BIN}/postgres`,
      [
        ...["-D", `${pgdir}/data`, "-p", String(port), "-k", pgdir, "-c", "listen_addresses=127.0.0.1"],
        ...["-c", "ssl=on", "-c", `ssl_cert_file=${pgdir}/server.crt`, "-c", `ssl_key_file=${pgdir}/server.key`],
      ],
      { uid, gid, cwd: pgdir, stdio: "ignore" },
    );
    try {
      await waitForPort(port);
      const conn = `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=require`;
      const { records } = await observe({ ports: [port], parsers: [postgresql] }, () =>
        run("psql", [
          conn,
          "-X",
          "-q",
          "-o",
          "/dev/null",
          "-c",
          "SELECT 42 AS answer",
          "-c",
          "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ]),
      );
      for (const side of [serverSide(records), clientSide(records)]) {
        const queries = side.filter((r) => r.protocol === "postgresql" && r.requestType === "SELECT");
        expect(queries.map((r) => r.resource)).toEqual([
          "SELECT ? AS answer",
          "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ]);
        expect(queries.every((r) => r.tls === true && r.status === "ok" && r.serverPort === port)).toBe(true);
      }
    } finally {
      if (pg.exitCode === null && pg.signalCode === null) {
        const exited = once(pg, "exit");
        pg.kill("SIGINT"); // fast shutdown
        await exited;
      }
      rmSync(pgdir, { recursive: true, force: true });
    }
  });

  it("Debian's libssl is probed where the kernel emulates the instruction, also while other probes sit in it", async () => {
    const nginx = await startNginx(
      `    ssl_certificate ${cert};\n    ssl_certificate_key ${key};\n    location / { return 200 "ok\\n"; }\n`,
      undefined,
      { listenSuffix: " ssl" },
    );
    const libssl = (t: SocketTracer) =>
      t.tlsTargets().find((x) => x.kind === "openssl" && /libssl\.so\.3$/.test(x.path))?.probes;
    // probes at the exported entries put int3s in every mapping of the file that may execute
    const atEntries = SocketTracer.open({ ports: [nginx.port], closeOnSignals: false, tls: { probeAt: "entry" } });
    try {
      expect(libssl(atEntries)).toBe("SSL_read+SSL_read_ex (single-stepped); SSL_write+SSL_write_ex (single-stepped)");
      const cheapest = SocketTracer.open({ ports: [nginx.port], closeOnSignals: false });
      try {
        // OpenSSL 3's SSL_read/SSL_write start with `sub $N,%rsp`; SSL_read_ex passes its arguments to
        // ssl_read_internal, which SSL_read calls too and which starts with `push`: one probe for both
        expect(libssl(cheapest)).toMatch(
          /^SSL_read\+SSL_read_ex via 0x[0-9a-f]+; SSL_write\+SSL_write_ex via 0x[0-9a-f]+$/,
        );
      } finally {
        cheapest.close();
      }
      // curl and nginx call SSL_read/SSL_write: seen through the internal functions, both ends
      const { records } = await observe({ ports: [nginx.port] }, () =>
        run("curl", ["-sk", `https://127.0.0.1:${nginx.port}/x`, `https://127.0.0.1:${nginx.port}/y`]),
      );
      expectTlsExchanges(http(clientSide(records)), nginx.port, ["/x", "/y"]);
      expectTlsExchanges(http(serverSide(records)), nginx.port, ["/x", "/y"]);
    } finally {
      atEntries.close();
      await nginx.stop();
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
