import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A free TCP port on 127.0.0.1 (bound once, then released). */
/** A self-signed certificate for CN=localhost (RSA 2048, one day) written into `dir`: cert.pem and key.pem. */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1"];
  execFileSync("openssl", [...args, "-subj", "/CN=localhost"], { stdio: "ignore" });
  return { cert, key };
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RunningServer {
  port: number;
  pid: number;
  dir: string;
  /** Stops the server by its pid and removes its directory. */
  stop(): Promise<void>;
}

/**
 * A private nginx on 127.0.0.1:port with `serverBlock` as the body of its server {} (locations),
 * in its own temp directory. One worker, no access log.
 */
export async function startNginx(
  serverBlock: string,
  port?: number,
  opts: { /** Appended to the listen directive, e.g. " ssl http2". */ listenSuffix?: string } = {},
): Promise<RunningServer> {
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "kalman-nginx-"));
  const conf = `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:${p}${opts.listenSuffix ?? ""};
${serverBlock}
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  return launch("nginx", ["-p", dir, "-c", join(dir, "nginx.conf")], p, dir, `see ${dir}/error.log`);
}

/** Spawns a server, waits until its port accepts connections, and returns how to stop it by pid. */
async function launch(cmd: string, args: string[], port: number, dir: string, hint: string): Promise<RunningServer> {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
  const exited = once(child, "exit");
  try {
    await Promise.race([waitForPort(port), exited.then(() => Promise.reject(new Error(`${cmd} exited; ${hint}`)))]);
  } catch (e) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    port,
    pid: child.pid ?? 0,
    dir,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A private redis-server on 127.0.0.1 (no persistence), in its own temp directory. */
export async function startRedis(port?: number): Promise<RunningServer> {
  const p = port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), "kalman-redis-"));
  const args = ["--bind", "127.0.0.1", "--port", String(p), "--save", "", "--appendonly", "no", "--dir", dir];
  return launch("redis-server", args, p, dir, "check that redis-server is installed");
}
