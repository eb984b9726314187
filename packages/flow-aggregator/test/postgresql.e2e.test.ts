// A private PostgreSQL 15 cluster driven by psql (simple query) and pgbench -M prepared (extended query),
// traced by the real eBPF receiver; the records must carry verbs, redacted SQL, SQLSTATEs and row counts.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { postgresql } from "../src/protocols/postgresql/index.js";
import type { RequestRecord } from "../src/types.js";
import { clientSide, describePrivileged, type Observed, observe, serverSide } from "./support/observe.js";

const BIN = "/usr/lib/postgresql/15/bin";

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Runs a client to completion (its expected SQL errors on stderr are not shown); rejects on a non-zero exit. */
async function runQuiet(cmd: string, args: string[]): Promise<void> {
  const child = spawn(cmd, args, { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${code}`);
}

async function waitReady(port: number, dir: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      execFileSync("pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)]);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres on port ${port} (${dir}) did not become ready`);
}

const PSQL_SCRIPT = `CREATE TABLE items (id int PRIMARY KEY, name text);
INSERT INTO items VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
SELECT name FROM items WHERE id = 2 AND name <> 'secret';
SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200) AS g;
SELECT 1/0;
SELECT * FROM missing_table;
DELETE FROM items WHERE id >= 3;
`;

const PGBENCH_SCRIPT = `\\set id 2
SELECT name FROM items WHERE id = :id;
UPDATE items SET name = 'delta' WHERE id = :id;
`;

describePrivileged("postgresql end to end", () => {
  let dir = "";
  let server: ChildProcess | undefined;
  let port = 0;
  let observed: Observed;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "kalman-pg-"));
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
    execFileSync(
      "runuser",
      ["-u", "postgres", "--", `${BIN}/initdb`, "-D", `${dir}/data`, "-U", "postgres", "--auth=trust"],
      {
        stdio: "ignore",
      },
    );
    port = await freePort();
    server = spawn(
      `${BIN}/postgres`,
      ["-D", `${dir}/data`, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1"],
      { uid, gid, cwd: dir, stdio: "ignore" },
    );
    await waitReady(port, dir);
    writeFileSync(join(dir, "script.sql"), PSQL_SCRIPT);
    writeFileSync(join(dir, "bench.sql"), PGBENCH_SCRIPT);
    const conn = `host=127.0.0.1 port=${port} user=postgres dbname=postgres sslmode=prefer`;
    observed = await observe({ ports: [port], parsers: [postgresql], captureBytes: 1024 }, async () => {
      await runQuiet("psql", [conn, "-X", "-q", "-o", "/dev/null", "-f", join(dir, "script.sql")]);
      await runQuiet("pgbench", [
        ...["-h", "127.0.0.1", "-p", String(port), "-U", "postgres"],
        ...["-n", "-c", "1", "-t", "3", "-M", "prepared", "-f", join(dir, "bench.sql"), "postgres"],
      ]);
    });
  });

  afterAll(async () => {
    if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) {
      const exited = once(server, "exit");
      process.kill(server.pid, "SIGINT"); // fast shutdown
      const timer = setTimeout(() => server?.pid !== undefined && process.kill(server.pid, "SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const find = (records: RequestRecord[], resource: string) => records.filter((r) => r.resource === resource);

  it("records psql's simple queries with redacted SQL, row counts and SQLSTATEs", () => {
    const server = serverSide(observed.records).filter((r) => r.protocol === "postgresql");
    const one = (resource: string) => {
      const found = find(server, resource);
      expect(found, resource).toHaveLength(1);
      return found[0] as RequestRecord;
    };
    expect(one("CREATE TABLE items (id int PRIMARY KEY, name text)")).toMatchObject({
      requestType: "CREATE",
      endpoint: "CREATE items",
      status: "ok",
      domain: "postgres",
      version: "3.0",
      serverPort: port,
    });
    const insert = one("INSERT INTO items VALUES (?, ?), (?, ?), (?, ?)");
    expect(insert).toMatchObject({ requestType: "INSERT", endpoint: "INSERT items", status: "ok" });
    expect(insert.attributes).toMatchObject({ "db.system.name": "postgresql", "db.response.affected_rows": 3 });
    const select = one("SELECT name FROM items WHERE id = ? AND name <> ?");
    expect(select).toMatchObject({ requestType: "SELECT", endpoint: "SELECT items", status: "ok" });
    expect(select.attributes?.["db.response.returned_rows"]).toBe(1);
    expect(select.durationNs).toBeGreaterThan(0);
    expect(select.requestBytes).toBe(1 + 4 + "SELECT name FROM items WHERE id = 2 AND name <> 'secret';".length + 1);
    // 23563 bytes in writes of 8192, 8192 and 7179: the capture keeps 1024 of each, ReadyForQuery is lost
    const big = one("SELECT g, repeat(?, ?) AS pad FROM generate_series(?, ?) AS g");
    expect(big).toMatchObject({ status: "unknown", responseBytes: 23563 });
    expect(big.attributes?.["kalman.truncated"]).toBe(true);
    const divide = one("SELECT ?/?");
    expect(divide).toMatchObject({ status: "client_error", exception: "division by zero" });
    expect(divide.code).toBeUndefined();
    expect(divide.attributes?.["db.response.status_code"]).toBe("22012");
    const missing = one("SELECT * FROM missing_table");
    expect(missing).toMatchObject({ status: "client_error", exception: 'relation "missing_table" does not exist' });
    expect(missing.attributes?.["db.response.status_code"]).toBe("42P01");
    const del = one("DELETE FROM items WHERE id >= ?");
    expect(del).toMatchObject({ status: "ok", endpoint: "DELETE items" });
    expect(del.attributes?.["db.response.affected_rows"]).toBe(1);
    expect(JSON.stringify(observed.records)).not.toContain("secret");
  });

  it("records pgbench's prepared statements: one PREPARE each, then executions with their SQL", () => {
    const server = serverSide(observed.records).filter((r) => r.protocol === "postgresql");
    const prepares = server.filter((r) => r.requestType === "PREPARE");
    expect(prepares.map((r) => r.resource).sort()).toEqual([
      "SELECT name FROM items WHERE id = $1",
      "UPDATE items SET name = ? WHERE id = $1",
    ]);
    const selects = find(server, "SELECT name FROM items WHERE id = $1").filter((r) => r.requestType === "SELECT");
    const updates = find(server, "UPDATE items SET name = ? WHERE id = $1").filter((r) => r.requestType === "UPDATE");
    expect(selects).toHaveLength(3);
    expect(updates).toHaveLength(3);
    for (const r of selects) {
      expect(r).toMatchObject({ status: "ok", endpoint: "SELECT items", domain: "postgres" });
      expect(r.attributes?.["db.response.returned_rows"]).toBe(1);
    }
    for (const r of updates) expect(r.attributes?.["db.response.affected_rows"]).toBe(1);
  });

  it("sees the same requests from the client processes, and nothing left unpaired", () => {
    const client = clientSide(observed.records).filter((r) => r.protocol === "postgresql");
    const server = serverSide(observed.records).filter((r) => r.protocol === "postgresql");
    const key = (r: RequestRecord) => `${r.requestType} ${r.resource ?? ""}`;
    expect(client.map(key).sort()).toEqual(server.map(key).sort());
    expect(client.filter((r) => r.comm === "psql").length).toBe(8); // 7 statements + Terminate
    expect(server.filter((r) => r.status === "unknown" && r.requestType !== "SELECT")).toEqual([]);
    expect(server.filter((r) => r.requestType === "TERMINATE").every((r) => r.responseBytes === 0)).toBe(true);
    expect(observed.stats.malformed).toBe(0);
    expect(observed.stats.orphanResponses).toBe(0);
  });
});
