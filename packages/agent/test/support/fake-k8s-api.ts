// A local stand-in for the Kubernetes API server's pods endpoint, answering from the recorded
// fixtures in test/fixtures/k8s: lists, and watches that stream fixture lines (optionally only once
// the test opens a gate) or stay open.
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const fixtures = fileURLToPath(new URL("../fixtures/k8s/", import.meta.url));
export const k8sFixture = (name: string) => readFileSync(join(fixtures, name), "utf8");

/**
 * One watch: fixture lines to stream then close; "hold" keeps the watch open with no events (headers
 * sent, as the API server does); "hold-silent" keeps it open with the headers unsent (a slow proxy).
 */
export type WatchStep = string | "hold" | "hold-silent";

export class FakeK8sApi {
  readonly requests: string[] = [];
  /** Held watches whose connection the client closed. */
  heldClosed = 0;
  private readonly server: Server;
  private readonly open: ServerResponse[] = [];
  private lists = 0;
  private watches = 0;
  private gate: Promise<void> = Promise.resolve();

  constructor(
    private readonly listScript: string[],
    private readonly watchScript: WatchStep[],
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  /** Watch events wait until `release` is called. */
  holdEvents(): () => void {
    let release = () => {};
    this.gate = new Promise((r) => {
      release = r;
    });
    return release;
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A kubeconfig file naming this server (JSON is YAML), written to `path`. */
  writeKubeconfig(path: string, server: string): void {
    writeFileSync(
      path,
      JSON.stringify({
        clusters: [{ name: "test", cluster: { server } }],
        contexts: [{ name: "test", context: { cluster: "test", user: "test" } }],
        users: [{ name: "test", user: { token: "t" } }],
        "current-context": "test",
      }),
    );
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://x");
    this.requests.push(`${url.pathname}?${url.searchParams.toString()}`);
    if (url.pathname !== "/api/v1/pods") {
      res.writeHead(404).end();
      return;
    }
    if (url.searchParams.get("watch") !== "1") {
      const body = this.listScript[Math.min(this.lists++, this.listScript.length - 1)] as string;
      res.writeHead(200, { "content-type": "application/json" }).end(k8sFixture(body));
      return;
    }
    const step = this.watchScript[Math.min(this.watches++, this.watchScript.length - 1)] as WatchStep;
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    this.open.push(res);
    if (step === "hold-silent") {
      res.on("close", () => this.heldClosed++);
      return;
    }
    // the API server answers a watch's headers at once, events follow as they happen
    res.flushHeaders();
    if (step === "hold") {
      res.on("close", () => this.heldClosed++);
      return;
    }
    const lines = k8sFixture(step).split("\n").filter(Boolean);
    void this.gate.then(() => {
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        if (i < lines.length) {
          res.write(`${lines[i++]}\n`);
          setTimeout(next, 5);
        } else res.end();
      };
      next();
    });
  }
}
