import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { mysql } from "../src/protocols/mysql/index.js";
import { MAX_SQL_CHARS, summarizeSql } from "../src/protocols/mysql/sql.js";
import { Confidence } from "../src/protocols/parser.js";
import type { L7Message } from "../src/types.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  DEFAULT_SESSION,
  fieldsOf,
  runParser,
  text,
} from "./support/harness.js";

/**
 * Conversations recorded from MariaDB 10.11 on loopback (each file's header says which client):
 * one line per TCP segment, i.e. per write here; an optional 4th column gives uncaptured bytes.
 */
function recorded(name: string): Chunk[] {
  const chunks: Chunk[] = [];
  for (const line of readFileSync(new URL(`fixtures/mysql/${name}.tsv`, import.meta.url), "utf8").split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const [, port, payload, missing] = line.split("\t");
    const chunk: Chunk = { fromClient: port !== "33061", data: Uint8Array.from(Buffer.from(payload ?? "", "hex")) };
    if (missing && missing !== "0") chunk.missing = Number(missing);
    chunks.push(chunk);
  }
  return chunks;
}

const cli = recorded("cli");
const ps = recorded("ps");
const admin = recorded("admin");
const node = recorded("node");
const infile = recorded("infile");
const big = recorded("big");
const tls = recorded("tls");
const all = { cli, ps, admin, node, infile, big, tls };

const len = (chunks: Chunk[], i: number) => chunks[i]?.data.length ?? -1;
const SYSTEM = { "db.system.name": "mysql" };
const req = (m: Partial<L7Message>) => ({ kind: "request", attributes: SYSTEM, ...m });
const ok = (bytes: number, attributes: Record<string, number | boolean> = {}) => ({
  kind: "response",
  status: "ok",
  bytes,
  attributes: { ...SYSTEM, ...attributes },
});
const err = (bytes: number, code: number, status: string, exception: string) => ({
  kind: "response",
  status,
  code,
  exception,
  bytes,
  attributes: { ...SYSTEM, "db.response.status_code": String(code) },
});
/** runParser, plus the session's stats at the end. */
function runWithStats(chunks: Chunk[]): { msgs: L7Message[]; stats: { malformed: number; resyncBytes: number } } {
  let session: ReturnType<typeof mysql.createSession> | undefined;
  const spy = { ...mysql, createSession: (o: typeof DEFAULT_SESSION) => (session = mysql.createSession(o)) };
  const msgs = runParser(spy, chunks);
  return { msgs, stats: { ...(session as NonNullable<typeof session>).stats } };
}

const summary = (msgs: L7Message[]) =>
  msgs.map((m) => (m.kind === "request" ? `${m.requestType} ${m.endpoint}` : `${m.status} ${m.code ?? ""}`.trim()));

describe("mysql parser on the mariadb CLI (text protocol, classic EOF)", () => {
  it("records verbs, redacted SQL, table endpoints, errors by SQLSTATE class, rows and multi-results", () => {
    const msgs = runParser(mysql, cli);
    const shop = { domain: "shop" };
    expect(fieldsOf(msgs)).toEqual([
      req({
        ...shop,
        requestType: "CREATE",
        endpoint: "CREATE items",
        resource: "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(?) NOT NULL, qty INT)",
        bytes: len(cli, 3),
      }),
      ok(len(cli, 4), { "db.response.affected_rows": 0 }),
      req({
        ...shop,
        requestType: "INSERT",
        endpoint: "INSERT items",
        resource: "INSERT INTO items (name, qty) VALUES (?, ?), (?, ?)",
        bytes: len(cli, 5),
      }),
      ok(len(cli, 6), { "db.response.affected_rows": 2 }),
      req({
        ...shop,
        requestType: "SELECT",
        endpoint: "SELECT items",
        resource: "SELECT id, name FROM items WHERE qty > ? AND name = ?",
        bytes: len(cli, 7),
      }),
      ok(len(cli, 8), { "db.response.returned_rows": 1 }),
      req({ ...shop, requestType: "SELEC", endpoint: "SELEC", resource: "SELEC oops FROM items", bytes: len(cli, 9) }),
      err(
        len(cli, 10),
        1064,
        "client_error",
        "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'SELEC oops FROM items' at line 1",
      ),
      req({ ...shop, requestType: "SELECT", endpoint: "SELECT", resource: "SELECT DATABASE()", bytes: len(cli, 11) }),
      ok(len(cli, 12), { "db.response.returned_rows": 1 }),
      req({ ...shop, requestType: "INIT_DB", endpoint: "INIT_DB", resource: "shop", bytes: len(cli, 13) }),
      ok(len(cli, 14), { "db.response.affected_rows": 0 }),
      req({
        ...shop,
        requestType: "UPDATE",
        endpoint: "UPDATE items",
        resource: "UPDATE items SET qty = qty + ? WHERE id = ?",
        bytes: len(cli, 15),
      }),
      ok(len(cli, 16), { "db.response.affected_rows": 1 }),
      req({
        ...shop,
        requestType: "DELETE",
        endpoint: "DELETE items",
        resource: "DELETE FROM `items` WHERE name = ?",
        bytes: len(cli, 17),
      }),
      ok(len(cli, 18), { "db.response.affected_rows": 1 }),
      req({
        ...shop,
        requestType: "SELECT",
        endpoint: "SELECT missing_table",
        resource: "SELECT * FROM missing_table",
        bytes: len(cli, 19),
      }),
      err(len(cli, 20), 1146, "client_error", "Table 'shop.missing_table' doesn't exist"),
      req({
        ...shop,
        requestType: "SELECT",
        endpoint: "SELECT items",
        resource: "SELECT * FROM items WHERE id = -?",
        bytes: len(cli, 21),
      }),
      ok(len(cli, 22), { "db.response.returned_rows": 0 }),
      req({ ...shop, requestType: "BEGIN", endpoint: "BEGIN", resource: "BEGIN", bytes: len(cli, 23) }),
      ok(len(cli, 24), { "db.response.affected_rows": 0 }),
      req({ ...shop, requestType: "COMMIT", endpoint: "COMMIT", resource: "COMMIT", bytes: len(cli, 25) }),
      ok(len(cli, 26), { "db.response.affected_rows": 0 }),
      // one COM_QUERY, two result sets (SERVER_MORE_RESULTS_EXISTS): one response
      req({
        ...shop,
        requestType: "SELECT",
        endpoint: "SELECT",
        resource: "SELECT ? AS one; SELECT ? AS two",
        bytes: len(cli, 27),
      }),
      ok(len(cli, 28) + len(cli, 29), { "db.response.returned_rows": 2 }),
      req({
        ...shop,
        requestType: "SIGNAL",
        endpoint: "SIGNAL",
        resource: "SIGNAL SQLSTATE ? SET MESSAGE_TEXT = ?",
        bytes: len(cli, 30),
      }),
      err(len(cli, 31), 1644, "server_error", "boom"),
      req({ ...shop, requestType: "QUIT", endpoint: "QUIT", oneWay: true, bytes: len(cli, 32) }),
    ]);
    for (const secret of ["bob", "alice", "'two'", "42", "HY000"]) {
      expect(JSON.stringify(msgs.map((m) => m.resource))).not.toContain(secret);
    }
  });

  it("takes timing, thread and TCP seq from the chunk where each message starts and ends", () => {
    const msgs = runParser(mysql, cli);
    // chunk i: startNs 1000 i, endNs 1000 i + 500, tid 100 + i; seqs count from 1000 (client), 5000 (server)
    expect(msgs[0]).toMatchObject({ startNs: 3000, endNs: 3500, tid: 103, tcpSeq: 1000 + len(cli, 1) });
    expect(msgs[1]).toMatchObject({ startNs: 4000, endNs: 4500, tid: 104, tcpSeq: 5000 + len(cli, 0) + len(cli, 2) });
    // the two-result response starts in chunk 28 and ends in chunk 29
    expect(msgs[25]).toMatchObject({ startNs: 28_000, endNs: 29_500, tid: 128 });
  });

  it("keeps literals when redaction is off", () => {
    const msgs = runParser(mysql, cli, { ...DEFAULT_SESSION, redact: false });
    expect(msgs[2]?.resource).toBe("INSERT INTO items (name, qty) VALUES ('bob', 42), ('alice', 3)");
    expect(msgs[14]?.resource).toBe('DELETE FROM `items` WHERE name = "alice"');
  });

  it("joins late: without the handshake it learns the EOF style from the first result set", () => {
    const full = fieldsOf(runParser(mysql, cli));
    const late = fieldsOf(runParser(mysql, cli.slice(3)));
    // the database is known from COM_INIT_DB on (chunk 13 is message 10)
    const expected = full.map((m, i) => {
      if (i >= 10 || m.kind !== "request") return m;
      const { domain: _d, ...rest } = m;
      return rest;
    });
    expect(late).toEqual(expected);
  });

  it("splits anywhere, byte by byte and every prefix give the same messages", () => {
    checkSplitsEverywhere(mysql, cli);
    checkByteByByte(mysql, cli);
    checkEveryPrefix(mysql, cli);
  });
});

describe("mysql parser on binary prepared statements", () => {
  it("libmariadb: PREPARE, EXECUTE with the prepared SQL, metadata-less binary rows, STMT_CLOSE one-way", () => {
    const msgs = runParser(mysql, ps);
    const shop = { domain: "shop" };
    const insert = "INSERT INTO items (name, qty) VALUES (?, ?)";
    const select = "SELECT id, name, qty FROM items WHERE qty > ?";
    expect(fieldsOf(msgs)).toEqual([
      req({ ...shop, requestType: "PREPARE", endpoint: "PREPARE", resource: insert, bytes: len(ps, 3) }),
      ok(len(ps, 4)), // PREPARE_OK + 2 parameter definitions + EOF
      req({ ...shop, requestType: "EXECUTE", endpoint: "INSERT items", resource: insert, bytes: len(ps, 5) }),
      ok(len(ps, 6), { "db.response.affected_rows": 1 }),
      req({ ...shop, requestType: "PREPARE", endpoint: "PREPARE", resource: select, bytes: len(ps, 7) }),
      ok(len(ps, 8)),
      // binary result set whose column definitions the server skipped (MARIADB_CLIENT_CACHE_METADATA)
      req({ ...shop, requestType: "EXECUTE", endpoint: "SELECT items", resource: select, bytes: len(ps, 9) }),
      ok(len(ps, 10), { "db.response.returned_rows": 2 }),
      req({
        ...shop,
        requestType: "PREPARE",
        endpoint: "PREPARE",
        resource: "SELECT * FROM no_such_table WHERE id = ?",
        bytes: len(ps, 11),
      }),
      err(len(ps, 12), 1146, "client_error", "Table 'shop.no_such_table' doesn't exist"),
      req({ ...shop, requestType: "PING", endpoint: "PING", bytes: len(ps, 13) }),
      ok(len(ps, 14), { "db.response.affected_rows": 0 }),
      req({ ...shop, requestType: "STMT_CLOSE", endpoint: "STMT_CLOSE", resource: insert, oneWay: true, bytes: 9 }),
      req({ ...shop, requestType: "STMT_CLOSE", endpoint: "STMT_CLOSE", resource: select, oneWay: true, bytes: 9 }),
      req({ ...shop, requestType: "QUIT", endpoint: "QUIT", oneWay: true, bytes: 5 }),
    ]);
    expect(JSON.stringify(msgs)).not.toContain("widget");
  });

  it("joining at a PREPARE (EOF style unknown) still frames its definitions and maps the statement", () => {
    const late = fieldsOf(runParser(mysql, ps.slice(3)));
    const full = fieldsOf(runParser(mysql, ps)).map((m) => {
      const { domain: _d, ...rest } = m;
      return rest;
    });
    expect(late).toEqual(full);
  });

  it("Connector/Node.js: CLIENT_DEPRECATE_EOF result sets, EXECUTE of statement id -1 (the last prepared)", () => {
    const msgs = runParser(mysql, node);
    expect(summary(msgs)).toEqual([
      "SET SET",
      "ok",
      "SELECT SELECT items",
      "ok",
      "INSERT INSERT items",
      "ok",
      "SELECT SELECT items",
      "client_error 1054",
      "PREPARE PREPARE",
      "ok",
      "EXECUTE SELECT items",
      "ok",
      "SELECT SELECT",
      "ok",
      "DO DO",
      "ok",
      "SELECT SELECT items",
      "ok",
      "QUIT QUIT",
    ]);
    expect(msgs[3]?.attributes).toEqual({ ...SYSTEM, "db.response.returned_rows": 2 });
    expect(msgs[3]?.bytes).toBe(len(node, 6));
    expect(msgs[9]?.bytes).toBe(len(node, 12)); // PREPARE_OK + 2 definitions, no EOF packets
    expect(msgs[10]).toMatchObject({ resource: "SELECT name FROM items WHERE id = ?", domain: "shop" });
    expect(msgs[11]?.attributes).toEqual({ ...SYSTEM, "db.response.returned_rows": 1 });
    expect(msgs[17]?.attributes).toEqual({ ...SYSTEM, "db.response.returned_rows": 0 });
    expect(msgs[7]).toMatchObject({ code: 1054, exception: "Unknown column 'nope' in 'SELECT'" });
  });

  it("joining the Connector/Node.js connection late learns CLIENT_DEPRECATE_EOF from what the server sends", () => {
    const strip = (ms: L7Message[]) =>
      fieldsOf(ms).map((m) => {
        const { domain: _d, ...rest } = m;
        return rest;
      });
    // from the first SELECT (a result set), and from the PREPARE (no result set seen yet)
    expect(strip(runParser(mysql, node.slice(5)))).toEqual(strip(runParser(mysql, node)).slice(2));
    expect(strip(runParser(mysql, node.slice(11)))).toEqual(strip(runParser(mysql, node)).slice(8));
  });

  it("splits anywhere, byte by byte and every prefix give the same messages", () => {
    for (const chunks of [ps, node]) {
      checkSplitsEverywhere(mysql, chunks);
      checkByteByByte(mysql, chunks);
      checkEveryPrefix(mysql, chunks);
    }
  });
});

describe("mysql parser: other commands", () => {
  it("mariadb-admin: COM_PING and COM_STATISTICS (a plain-text answer); no database without one", () => {
    const msgs = runParser(mysql, admin);
    expect(fieldsOf(msgs)).toEqual([
      req({ requestType: "PING", endpoint: "PING", bytes: 5 }),
      ok(11, { "db.response.affected_rows": 0 }),
      req({ requestType: "STATISTICS", endpoint: "STATISTICS", bytes: 5 }),
      ok(len(admin, 6)),
      req({ requestType: "QUIT", endpoint: "QUIT", oneWay: true, bytes: 5 }),
    ]);
  });

  it("LOAD DATA LOCAL INFILE: the file contents are no command, the progress report is no answer", () => {
    const msgs = runParser(mysql, infile);
    expect(fieldsOf(msgs)).toEqual([
      req({
        domain: "shop",
        requestType: "LOAD",
        endpoint: "LOAD",
        resource: "LOAD DATA LOCAL INFILE ? INTO TABLE items (name, qty)",
        bytes: len(infile, 3),
      }),
      // 0xFB request, progress report (ERR 0xffff), then OK
      ok(len(infile, 4) + len(infile, 6) + len(infile, 7), { "db.response.affected_rows": 2 }),
      req({
        domain: "shop",
        requestType: "SELECT",
        endpoint: "SELECT items",
        resource: "SELECT COUNT(*) FROM items",
        bytes: len(infile, 8),
      }),
      ok(len(infile, 9), { "db.response.returned_rows": 1 }),
      req({ domain: "shop", requestType: "QUIT", endpoint: "QUIT", oneWay: true, bytes: 5 }),
    ]);
    expect(JSON.stringify(msgs)).not.toContain("myfix");
  });

  it("TLS after an SSL request: nothing is parsed, nothing counted as malformed", () => {
    expect(runWithStats(tls)).toEqual({ msgs: [], stats: { malformed: 0, resyncBytes: 0 } });
    // a server reading the SSL request and the ClientHello at once
    const [greeting, sslRequest, clientHello, ...rest] = tls as [Chunk, Chunk, Chunk, ...Chunk[]];
    const joined = { fromClient: true, data: Buffer.concat([sslRequest.data, clientHello.data]) };
    expect(runWithStats([greeting, joined, ...rest]).stats).toEqual({ malformed: 0, resyncBytes: 0 });
  });

  it("a 17 MB query (0xffffff packet + continuation) captured in part: one request of the full size", () => {
    const msgs = runParser(mysql, big);
    expect(fieldsOf(msgs)).toEqual([
      req({
        domain: "shop",
        requestType: "SELECT",
        endpoint: "SELECT",
        resource: "SELECT LENGTH(?",
        bytes: 17_000_031,
        attributes: { ...SYSTEM, "kalman.truncated": true },
      }),
      ok(len(big, 5), { "db.response.returned_rows": 1 }),
      req({ domain: "shop", requestType: "QUIT", endpoint: "QUIT", oneWay: true, bytes: 5 }),
    ]);
    checkSplitsEverywhere(mysql, big);
    checkEveryPrefix(mysql, big);
  });

  it("splits anywhere, byte by byte and every prefix give the same messages", () => {
    for (const chunks of [admin, infile]) {
      checkSplitsEverywhere(mysql, chunks);
      checkByteByByte(mysql, chunks);
      checkEveryPrefix(mysql, chunks);
    }
  });
});

describe("mysql parser: bytes not captured", () => {
  const withChunk = (chunks: Chunk[], i: number, chunk: Chunk) => chunks.map((c, k) => (k === i ? chunk : c));
  const cut = (chunks: Chunk[], i: number, keep: number): Chunk => {
    const c = chunks[i] as Chunk;
    return { fromClient: c.fromClient, data: c.data.subarray(0, keep), missing: c.data.length - keep };
  };

  it("a query cut by the capture keeps its size and start, and the framing goes on", () => {
    const msgs = runParser(mysql, withChunk(cli, 5, cut(cli, 5, 30)));
    expect(msgs[2]).toMatchObject({
      requestType: "INSERT",
      resource: "INSERT INTO items (name,",
      bytes: len(cli, 5),
      attributes: { ...SYSTEM, "kalman.truncated": true },
    });
    expect(fieldsOf(msgs.slice(3))).toEqual(fieldsOf(runParser(mysql, cli).slice(3)));
  });

  it("a result set cut mid-way ends at the next command, as ok and truncated; what follows is intact", () => {
    const msgs = runParser(mysql, withChunk(cli, 8, cut(cli, 8, 40)));
    expect(msgs[5]).toMatchObject({
      kind: "response",
      status: "ok",
      bytes: len(cli, 8),
      endNs: 8500,
      attributes: { ...SYSTEM, "kalman.truncated": true },
    });
    expect(msgs[5]?.attributes).not.toHaveProperty("db.response.returned_rows");
    expect(fieldsOf(msgs.slice(6))).toEqual(fieldsOf(runParser(mysql, cli).slice(6)));
  });

  it("a result set whose middle is lost ends at a later chunk that ends with its EOF", () => {
    const rs = cli[8] as Chunk;
    const chunks = [
      ...cli.slice(0, 8),
      { fromClient: false, data: rs.data.subarray(0, 40), missing: 40 },
      { fromClient: false, data: rs.data.subarray(80) },
      ...cli.slice(9),
    ];
    const msgs = runParser(mysql, chunks);
    expect(msgs[5]).toMatchObject({ status: "ok", bytes: len(cli, 8), endNs: 9500 });
    expect(fieldsOf(msgs.slice(6))).toEqual(fieldsOf(runParser(mysql, cli).slice(6)));
  });

  it("a response lost whole in a gap is reported unknown so the next ones pair right", () => {
    const gap: Chunk = { fromClient: false, data: new Uint8Array(0), missing: len(cli, 8) };
    const msgs = runParser(mysql, withChunk(cli, 8, gap));
    expect(msgs[5]).toMatchObject({
      kind: "response",
      status: "unknown",
      exception: "response not captured",
      bytes: 0,
    });
    expect(fieldsOf(msgs.slice(6))).toEqual(fieldsOf(runParser(mysql, cli).slice(6)));
  });

  it("a command lost at a packet boundary: its answer is skipped, the next command resynchronises", () => {
    const lost: Chunk = { fromClient: true, data: new Uint8Array(0), missing: len(cli, 7) };
    const { msgs, stats } = runWithStats(withChunk(cli, 7, lost));
    expect(summary(msgs).slice(2, 6)).toEqual(["INSERT INSERT items", "ok", "SELEC SELEC", "client_error 1064"]);
    expect(fieldsOf(msgs.slice(4))).toEqual(fieldsOf(runParser(mysql, cli).slice(6)));
    expect(stats).toEqual({ malformed: 0, resyncBytes: len(cli, 7) + len(cli, 8) });
  });

  it("counts what it could not use", () => {
    const session = mysql.createSession(DEFAULT_SESSION);
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
    const out: L7Message[] = [];
    const garbage = text("\x05\x00\x00\x00\x63hell"); // command 0x63 does not exist
    session.feed(true, garbage, 0, meta, (m) => out.push(m));
    session.feed(true, text("more"), 3, meta, (m) => out.push(m));
    expect(out).toEqual([]);
    expect(session.stats.malformed).toBe(1);
    expect(session.stats.resyncBytes).toBe(4 + 3);
  });
});

describe("mysql detect", () => {
  const first = (chunks: Chunk[], i: number) => (chunks[i] as Chunk).data;

  it("the server greeting is Sure and tells the server side", () => {
    expect(mysql.detect(first(cli, 0), undefined)).toEqual({ confidence: Confidence.Sure, fromClient: false });
    expect(mysql.detect(first(cli, 0), false)).toEqual({ confidence: Confidence.Sure, fromClient: false });
    expect(mysql.detect(first(cli, 0), true).confidence).toBe(Confidence.No);
  });

  it("a COM_QUERY with SQL is Sure, other commands and a handshake response are Maybe", () => {
    expect(mysql.detect(first(cli, 3), undefined)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    expect(mysql.detect(first(ps, 3), true)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    expect(mysql.detect(first(admin, 3), undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(mysql.detect(first(cli, 1), undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(mysql.detect(first(cli, 3), false).confidence).toBe(Confidence.No);
  });

  it("other protocols and noise are not MySQL", () => {
    for (const s of [
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "*1\r\n$4\r\nPING\r\n",
      "\x00\x00\x00\x08\x04\xd2\x16\x2f",
      "\x10\x00\x00\x00\x03\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f",
      "\x05\x00\x00\x00\x0e\x00\x00\x00\x00",
      "",
      "\x01",
    ]) {
      expect(mysql.detect(text(s), undefined).confidence, JSON.stringify(s)).toBe(Confidence.No);
    }
  });
});

describe("mysql SQL normalisation", () => {
  const norm = (sql: string) => summarizeSql(sql, true);

  it("replaces string and number literals, collapses whitespace, drops comments", () => {
    expect(norm("SELECT *   FROM t\n WHERE id = 42 AND name = 'bob'")).toEqual({
      verb: "SELECT",
      text: "SELECT * FROM t WHERE id = ? AND name = ?",
      endpoint: "SELECT t",
    });
    expect(norm("select 1.5e3, -7, .5, 0x1F, X'ff', b'01', N'x', _utf8mb4'é', \"dq\", 'it''s', 'a\\'b'").text).toBe(
      "select ?, -?, ?, ?, ?, ?, ?, ?, ?, ?, ?",
    );
    expect(norm("/* lead */ SELECT a -- tail\n FROM t1 # hash\n WHERE c2 = 3").text).toBe(
      "SELECT a FROM t1 WHERE c2 = ?",
    );
    expect(norm("/*!40101 SET NAMES utf8 */").text).toBe("SET NAMES utf8");
    expect(norm("SELECT `col 1`, t2.c3 FROM `my``db`.`tab` WHERE x IN (1, 2)")).toEqual({
      verb: "SELECT",
      text: "SELECT `col 1`, t2.c3 FROM `my``db`.`tab` WHERE x IN (?, ?)",
      endpoint: "SELECT my`db.tab",
    });
    expect(norm("SELECT 'unterminated").text).toBe("SELECT ?");
  });

  it("finds the first table of common statements", () => {
    const endpoint = (sql: string) => norm(sql).endpoint;
    expect(endpoint("insert ignore into shop.items values (1)")).toBe("INSERT shop.items");
    expect(endpoint("REPLACE INTO t (a) VALUES (1)")).toBe("REPLACE t");
    expect(endpoint("UPDATE LOW_PRIORITY t SET a = 1")).toBe("UPDATE t");
    expect(endpoint("DELETE FROM t WHERE a = 1")).toBe("DELETE t");
    expect(endpoint("CREATE TABLE IF NOT EXISTS t (a int)")).toBe("CREATE t");
    expect(endpoint("DROP TABLE IF EXISTS t")).toBe("DROP t");
    expect(endpoint("ALTER TABLE t ADD b int")).toBe("ALTER t");
    expect(endpoint("TRUNCATE t")).toBe("TRUNCATE t");
    expect(endpoint("(SELECT a FROM t1) UNION (SELECT a FROM t2)")).toBe("SELECT t1");
    expect(endpoint("SELECT 1")).toBe("SELECT");
    expect(endpoint("SELECT * FROM (SELECT 1) x")).toBe("SELECT");
    expect(endpoint("COMMIT")).toBe("COMMIT");
    expect(norm("  ").verb).toBe("QUERY");
  });

  it("keeps literals without redaction, caps the text, reads a sqlcommenter traceparent", () => {
    expect(summarizeSql("SELECT 'a',  2", false).text).toBe("SELECT 'a', 2");
    expect(norm(`SELECT ${"x, ".repeat(600)}1`).text).toHaveLength(MAX_SQL_CHARS);
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    expect(norm(`SELECT 1 /*traceparent='${tp}',route='%2Fx'*/`)).toMatchObject({ text: "SELECT ?", traceparent: tp });
  });
});

describe("mysql parser state stays bounded", () => {
  it("pending commands are capped at 256", () => {
    const ping = (admin[3] as Chunk).data;
    const pong = (admin[4] as Chunk).data;
    const chunks: Chunk[] = [
      ...Array.from({ length: 300 }, () => ({ fromClient: true, data: ping })),
      ...Array.from({ length: 300 }, () => ({ fromClient: false, data: pong })),
    ];
    const msgs = runParser(mysql, chunks);
    expect(msgs.filter((m) => m.kind === "request")).toHaveLength(300);
    expect(msgs.filter((m) => m.kind === "response")).toHaveLength(256);
  });

  it("a 17 MB message with a small buffer bound", () => {
    const small = { redact: true, maxBufferBytes: 4096 };
    // runParser checks buffered() after every chunk
    expect(summary(runParser(mysql, big, small))).toEqual(summary(runParser(mysql, big)));
  });

  it("random and mutated input: no throw, bounded, deterministic", () => {
    checkFuzz(mysql, Object.values(all));
  });
});
