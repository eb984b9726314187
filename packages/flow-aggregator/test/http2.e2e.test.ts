import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, startUntil, stop } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { http2 } from "../src/protocols/http2/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

// The servers run in a child process, killed by its pid in afterAll.
const SERVER_SCRIPT = `
const http2 = require("node:http2");
const grpc = require(process.env.GRPC_JS);
const h2 = http2.createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (path === "/hello" || path === "/fast") { res.setHeader("content-type", "text/plain"); res.end("hello\\n"); }
  else if (path === "/slow") setTimeout(() => { res.statusCode = 202; res.end("late\\n"); }, 150);
  else if (path === "/upload") { let n = 0; req.on("data", (c) => (n += c.length)); req.on("end", () => { res.statusCode = 201; res.end(n + "\\n"); }); }
  else { res.statusCode = 404; res.end(); }
});
const same = (b) => b;
const method = (name, responseStream) => ({ path: "/demo.Greeter/" + name, requestStream: false, responseStream,
  requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same });
const service = { SayHello: method("SayHello", false), ListHellos: method("ListHellos", true), Find: method("Find", false), Crash: method("Crash", false) };
const server = new grpc.Server();
server.addService(service, {
  SayHello: (call, cb) => cb(null, Buffer.from("hello " + call.request)),
  ListHellos: (call) => { for (let i = 0; i < 3; i++) call.write(Buffer.from("hello #" + i)); call.end(); },
  Find: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: "user 42 not found" }),
  Crash: (_call, cb) => cb({ code: grpc.status.INTERNAL, details: "boom" }),
});
h2.listen(0, "127.0.0.1", () => {
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, grpcPort) => {
    if (err) throw err;
    console.log("READY h2=" + h2.address().port + " grpc=" + grpcPort);
  });
});
`;

// The tracer ignores its own process: the clients run in a child too, and print what they got.
const CLIENT_SCRIPT = `
const http2 = require("node:http2");
const grpc = require(process.env.GRPC_JS);
const [mode, port] = [process.argv[2], Number(process.argv[3])];
function request(session, headers, body) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers);
    let status = 0;
    req.on("response", (h) => (status = h[":status"]));
    req.on("data", () => {});
    req.on("end", () => resolve(status));
    req.on("error", reject);
    req.end(body);
  });
}
async function h2() {
  const session = http2.connect("http://127.0.0.1:" + port);
  const out = [];
  out.push(await request(session, { ":path": "/hello?token=secret", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-request-id": "req-1" }));
  out.push(await request(session, { ":path": "/missing" }));
  out.push(await request(session, { ":method": "POST", ":path": "/upload", "content-type": "application/octet-stream" }, Buffer.alloc(5000, 120)));
  // two streams at once: /slow is answered 150 ms after /fast
  out.push(...(await Promise.all([request(session, { ":path": "/slow" }), request(session, { ":path": "/fast" })])));
  await new Promise((resolve) => session.close(resolve));
  return out;
}
async function rpc() {
  const same = (b) => b;
  const method = (name, responseStream) => ({ path: "/demo.Greeter/" + name, requestStream: false, responseStream,
    requestSerialize: same, requestDeserialize: same, responseSerialize: same, responseDeserialize: same });
  const Client = grpc.makeGenericClientConstructor({ SayHello: method("SayHello", false), ListHellos: method("ListHellos", true),
    Find: method("Find", false), Crash: method("Crash", false) }, "Greeter");
  const client = new Client("127.0.0.1:" + port, grpc.credentials.createInsecure());
  const unary = (name, arg) => new Promise((resolve) => client[name](Buffer.from(arg), (e, r) => resolve(e ? e.code : String(r))));
  const out = [];
  out.push(await unary("SayHello", "world"));
  out.push(await new Promise((resolve, reject) => {
    const stream = client.ListHellos(Buffer.from("x"));
    let n = 0;
    stream.on("data", () => n++);
    stream.on("end", () => resolve(n));
    stream.on("error", reject);
  }));
  out.push(await unary("Find", "42"));
  out.push(await unary("Crash", "x"));
  client.close();
  return out;
}
(mode === "h2" ? h2() : rpc()).then((out) => console.log(JSON.stringify(out)), (e) => { console.error(e); process.exit(1); });
`;

let dir: string;
let child: ChildProcess | undefined;
let h2Port = 0;
let grpcPort = 0;

describePrivileged("HTTP/2 and gRPC end to end: Node http2 and grpc-js", () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kalman-http2-"));
    const script = join(dir, "servers.cjs");
    writeFileSync(script, SERVER_SCRIPT);
    writeFileSync(join(dir, "clients.cjs"), CLIENT_SCRIPT);
    process.env.GRPC_JS = createRequire(import.meta.url).resolve("@grpc/grpc-js");
    const started = await startUntil(process.execPath, [script], /READY h2=(\d+) grpc=(\d+)/);
    child = started.child;
    h2Port = Number(started.match[1]);
    grpcPort = Number(started.match[2]);
  });
  afterAll(async () => {
    if (child) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });

  it("HTTP/2 on one connection: paths, statuses, a truncated POST body, out-of-order responses paired by stream id", async () => {
    let statuses: number[] = [];
    const { records, stats } = await observe({ ports: [h2Port], parsers: [http2] }, async () => {
      statuses = JSON.parse((await run(process.execPath, [join(dir, "clients.cjs"), "h2", String(h2Port)])).stdout);
    });
    expect(statuses).toEqual([200, 404, 201, 202, 200]);
    const line = (r: RequestRecord) => `${r.requestType} ${r.resource} ${r.code} ${r.status}`;
    const expected = [
      "GET /hello 200 ok",
      "GET /missing 404 client_error",
      "POST /upload 201 ok",
      // records come in response order; each response found its request by stream id
      "GET /fast 200 ok",
      "GET /slow 202 ok",
    ];
    const server = serverSide(records);
    const client = clientSide(records);
    expect(server.map(line)).toEqual(expected);
    expect(client.map(line)).toEqual(expected);
    for (const r of [...server, ...client]) {
      expect(r).toMatchObject({ protocol: "http2", version: "2", domain: `127.0.0.1:${h2Port}`, serverPort: h2Port });
      expect(r.attributes?.["kalman.hpack_incomplete"]).toBeUndefined();
      expect(r.durationNs).toBeGreaterThan(0);
      expect(r.responseBytes).toBeGreaterThan(0);
    }
    expect(new Set(server.map((r) => r.connId)).size).toBe(1);
    expect(server[0]).toMatchObject({
      endpoint: "/hello",
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      xRequestId: "req-1",
    });
    // the 5000-byte body is counted in full though the capture kept 1024 bytes of the write
    for (const post of [server[2], client[2]] as RequestRecord[]) {
      expect(post.requestBytes).toBeGreaterThan(5000);
      expect(post.requestBytes).toBeLessThan(5100);
      expect(post.attributes?.["kalman.truncated"]).toBe(true);
    }
    // /slow took its 150 ms; /fast did not wait for it
    expect((server[4] as RequestRecord).durationNs).toBeGreaterThan(140e6);
    expect((server[3] as RequestRecord).durationNs).toBeLessThan(140e6);
    // both ends saw the same bytes
    expect(server.map((r) => r.reqTcpSeq)).toEqual(client.map((r) => r.reqTcpSeq));
    expect(server.map((r) => [r.requestBytes, r.responseBytes])).toEqual(
      client.map((r) => [r.requestBytes, r.responseBytes]),
    );
    expect(server.every((r) => r.reqTcpSeq !== undefined)).toBe(true);
    expect(JSON.stringify(records)).not.toContain("secret");
    expect(stats).toMatchObject({ orphanResponses: 0, malformed: 0, timeouts: 0 });
  });

  it("gRPC: unary, server streaming, NOT_FOUND and INTERNAL with grpc-status from the trailers", async () => {
    let outcomes: Array<string | number> = [];
    const { records, stats } = await observe({ ports: [grpcPort], parsers: [http2] }, async () => {
      outcomes = JSON.parse((await run(process.execPath, [join(dir, "clients.cjs"), "grpc", String(grpcPort)])).stdout);
    });
    expect(outcomes).toEqual(["hello world", 3, 5, 13]); // NOT_FOUND, INTERNAL
    const line = (r: RequestRecord) =>
      `${r.protocol} ${r.requestType} ${r.code} ${r.status} ${r.exception ?? ""}`.trim();
    const expected = [
      "grpc /demo.Greeter/SayHello 0 ok",
      "grpc /demo.Greeter/ListHellos 0 ok",
      "grpc /demo.Greeter/Find 5 client_error user 42 not found",
      "grpc /demo.Greeter/Crash 13 server_error boom",
    ];
    const server = serverSide(records);
    const client = clientSide(records);
    expect(server.map(line)).toEqual(expected);
    expect(client.map(line)).toEqual(expected);
    for (const r of [...server, ...client]) {
      const name = (r.requestType as string).split("/")[2];
      expect(r).toMatchObject({
        endpoint: r.requestType,
        domain: `127.0.0.1:${grpcPort}`,
        attributes: { "rpc.system": "grpc", "rpc.service": "demo.Greeter", "rpc.method": name },
      });
      expect(r.attributes?.["kalman.hpack_incomplete"]).toBeUndefined();
    }
    // the stream's three DATA frames (5-byte gRPC prefix + "hello #n") are in its response, which the trailers end
    expect((server[1] as RequestRecord).responseBytes).toBeGreaterThanOrEqual(3 * (5 + 8) + 2);
    // both ends saw the same bytes
    expect(server.map((r) => [r.requestBytes, r.responseBytes])).toEqual(
      client.map((r) => [r.requestBytes, r.responseBytes]),
    );
    expect(server.map((r) => r.respTcpSeq)).toEqual(client.map((r) => r.respTcpSeq));
    expect(stats).toMatchObject({ orphanResponses: 0, malformed: 0, timeouts: 0 });
  });
});
