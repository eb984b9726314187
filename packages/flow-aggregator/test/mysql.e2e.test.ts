import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, waitForPort } from "@kalman/examples";
import { afterAll, beforeAll, expect, it } from "vitest";
import { mysql } from "../src/protocols/mysql/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, observe, serverSide } from "./support/observe.js";

const PASSWORD = "k4lman-e2e-pw";
const PS_CLIENT = fileURLToPath(new URL("fixtures/mysql/ps_client.py", import.meta.url));

interface MariaDb {
  port: number;
  dir: string;
  child: ChildProcess;
}

let mariadb: MariaDb | undefined;

/** A private mariadbd in a temp dir on 127.0.0.1:<free port>, with user kalman and database shop. */
async function startMariaDb(): Promise<MariaDb> {
  const dir = mkdtempSync(join(tmpdir(), "kalman-mariadb-"));
  const port = await freePort();
  execFileSync(
    "mariadb-install-db",
    ["--no-defaults", `--datadir=${dir}/data`, "--auth-root-authentication-method=normal", "--user=root"],
    { stdio: "ignore" },
  );
  const child = spawn(
    "mariadbd",
    [
      "--no-defaults",
      `--datadir=${dir}/data`,
      `--socket=${dir}/sock`,
      `--pid-file=${dir}/mariadbd.pid`,
      `--log-error=${dir}/error.log`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=16M",
      "--user=root",
    ],
    { stdio: "ignore" },
  );
  const db: MariaDb = { port, dir, child };
  const exited = once(child, "exit");
  try {
    await Promise.race([
      waitForPort(port, 30_000),
      exited.then(() => Promise.reject(new Error(`mariadbd exited; see ${dir}/error.log`))),
    ]);
    // over the unix socket, which the tracer does not watch
    execFileSync("mariadb", [
      "--no-defaults",
      `--socket=${dir}/sock`,
      "-uroot",
      "-e",
      `CREATE DATABASE shop; CREATE USER 'kalman'@'127.0.0.1' IDENTIFIED BY '${PASSWORD}';
       GRANT ALL ON shop.* TO 'kalman'@'127.0.0.1';`,
    ]);
  } catch (e) {
    await stopMariaDb(db);
    throw e;
  }
  return db;
}

async function stopMariaDb(db: MariaDb): Promise<void> {
  const { child } = db;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(db.dir, { recursive: true, force: true });
}

const CLI_SESSION = `
CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INT);
INSERT INTO items (name, qty) VALUES ('bob', 42), ('alice', 3);
SELECT id, name FROM items WHERE qty > 10 AND name = 'bob';
SELECT id, REPEAT('x', 3000) AS pad FROM items;
SELEC oops FROM items;
SELECT * FROM missing_table;
`;

const line = (r: RequestRecord) =>
  [r.requestType, r.endpoint, r.status, r.code].filter((v) => v !== undefined).join(" ");

describePrivileged("MySQL end to end: mariadb CLI and libmariadb prepared statements against mariadbd", () => {
  beforeAll(async () => {
    mariadb = await startMariaDb();
  });
  afterAll(async () => {
    if (mariadb) await stopMariaDb(mariadb);
  });

  it("records statements, redacted SQL, errors, result rows and prepared statements on both sides", async () => {
    const db = mariadb as MariaDb;
    let psOut = "";
    const { records, stats } = await observe({ ports: [db.port], parsers: [mysql] }, async () => {
      const tcp = ["--no-defaults", "-h", "127.0.0.1", "-P", String(db.port), "--protocol=TCP"];
      execFileSync("mariadb", [...tcp, "-ukalman", `-p${PASSWORD}`, "shop", "--force"], {
        input: CLI_SESSION,
        stdio: ["pipe", "ignore", "ignore"],
      });
      psOut = execFileSync("python3", [PS_CLIENT, "127.0.0.1", String(db.port), "kalman", PASSWORD, "shop"], {
        encoding: "utf8",
      });
    });
    expect(JSON.parse(psOut)).toEqual({ inserted: 1, selected: 3, prepareError: 1146, ping: 0 });

    const expectedCli = [
      "CREATE CREATE items ok",
      "INSERT INSERT items ok",
      "SELECT SELECT items ok",
      "SELECT SELECT items ok",
      "SELEC SELEC client_error 1064",
      "SELECT SELECT missing_table client_error 1146",
      "QUIT QUIT ok",
    ];
    const expectedPs = [
      "PREPARE PREPARE ok",
      "EXECUTE INSERT items ok",
      "PREPARE PREPARE ok",
      "EXECUTE SELECT items ok",
      "PREPARE PREPARE client_error 1146",
      "PING PING ok",
      "STMT_CLOSE STMT_CLOSE ok",
      "STMT_CLOSE STMT_CLOSE ok",
      "QUIT QUIT ok",
    ];
    const server = serverSide(records);
    const client = clientSide(records);
    const cliClient = client.filter((r) => r.comm === "mariadb");
    const psClient = client.filter((r) => r.comm.startsWith("python"));
    const [cliConn, psConn] = [cliClient[0]?.clientPort, psClient[0]?.clientPort];
    const cliServer = server.filter((r) => r.clientPort === cliConn);
    const psServer = server.filter((r) => r.clientPort === psConn);
    for (const [seen, expected] of [
      [cliServer, expectedCli],
      [cliClient, expectedCli],
      [psServer, expectedPs],
      [psClient, expectedPs],
    ] as const) {
      expect(seen.map(line)).toEqual(expected);
      for (const r of seen) {
        expect(r).toMatchObject({ protocol: "mysql", domain: "shop", serverPort: db.port, transport: "tcp" });
        expect(r.attributes?.["db.system.name"]).toBe("mysql");
        if (r.requestType !== "QUIT" && r.requestType !== "STMT_CLOSE") {
          expect(r.durationNs).toBeGreaterThan(0);
          expect(r.responseBytes).toBeGreaterThan(0);
        }
      }
    }
    expect(server.every((r) => r.comm === "mariadbd")).toBe(true);
    expect(server).toHaveLength(expectedCli.length + expectedPs.length);

    const byType = (rs: RequestRecord[], type: string) => rs.filter((r) => r.requestType === type);
    // literals redacted, with the counts the server reported
    expect(cliServer.map((r) => r.resource)).toEqual([
      "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(?) NOT NULL, qty INT)",
      "INSERT INTO items (name, qty) VALUES (?, ?), (?, ?)",
      "SELECT id, name FROM items WHERE qty > ? AND name = ?",
      "SELECT id, REPEAT(?, ?) AS pad FROM items",
      "SELEC oops FROM items",
      "SELECT * FROM missing_table",
      undefined,
    ]);
    expect(cliServer[1]?.attributes?.["db.response.affected_rows"]).toBe(2);
    expect(cliServer[2]?.attributes?.["db.response.returned_rows"]).toBe(1);
    // 2 rows of 3 KB: the capture keeps 1 KB per syscall, so the result set's end is not seen
    expect(cliServer[3]?.attributes).toMatchObject({ "kalman.truncated": true });
    expect(cliServer[3]?.responseBytes).toBeGreaterThan(6000);
    expect(cliServer[4]?.exception).toContain("You have an error in your SQL syntax");
    expect(cliServer[5]).toMatchObject({ code: 1146, exception: "Table 'shop.missing_table' doesn't exist" });

    const executes = byType(psServer, "EXECUTE");
    expect(executes.map((r) => r.resource)).toEqual([
      "INSERT INTO items (name, qty) VALUES (?, ?)",
      "SELECT id, name, qty FROM items WHERE qty > ?",
    ]);
    expect(executes[0]?.attributes?.["db.response.affected_rows"]).toBe(1);
    expect(executes[1]?.attributes?.["db.response.returned_rows"]).toBe(3);
    expect(byType(psServer, "PREPARE")[2]).toMatchObject({
      resource: "SELECT * FROM no_such_table WHERE id = ?",
      code: 1146,
    });

    // the same bytes seen by the client and by the server share their TCP seqs
    for (const [a, b] of [
      [cliServer, cliClient],
      [psServer, psClient],
    ] as const) {
      expect(a.map((r) => r.reqTcpSeq)).toEqual(b.map((r) => r.reqTcpSeq));
      expect(a.map((r) => r.respTcpSeq)).toEqual(b.map((r) => r.respTcpSeq));
    }
    const dump = JSON.stringify(records);
    for (const secret of ["bob", "alice", "widget", PASSWORD]) expect(dump).not.toContain(secret);
    expect(stats.orphanResponses).toBe(0);
    expect(stats.malformed).toBe(0);
  });
});
