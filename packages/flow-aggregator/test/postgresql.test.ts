import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Confidence } from "../src/protocols/parser.js";
import { postgresql } from "../src/protocols/postgresql/index.js";
import { normalizeSql, summarizeSql } from "../src/protocols/postgresql/sql.js";
import type { L7Message } from "../src/types.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  DEFAULT_SESSION,
  fieldsOf,
  hex,
  runParser,
  text,
} from "./support/harness.js";

// Fixtures: TCP payloads recorded with `tcpdump -i lo` and `tshark -T fields -e tcp.payload` from a private
// PostgreSQL 15.18 cluster (initdb --auth=trust) and its own clients; one chunk per TCP segment (one write).

// psql 15.18 -f script against PostgreSQL 15.18 (sslmode=prefer, ssl off), tcpdump on lo.
const psqlSession: Chunk[] = [
  { fromClient: true, data: hex("0000000804d2162f") },
  { fromClient: false, data: hex("4e") },
  {
    fromClient: true,
    data: hex(
      "0000003e000300007573657200706f73746772657300646174616261736500706f737467726573006170706c69636174696f6e5f6e61" +
        "6d65007265630000",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "52000000080000000053000000196170706c69636174696f6e5f6e616d6500726563005300000019636c69656e745f656e636f64696e" +
        "670055544638005300000017446174655374796c650049534f2c204d445900530000002664656661756c745f7472616e73616374696f" +
        "6e5f726561645f6f6e6c79006f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e74656765725f64" +
        "61746574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001469735f737570657275" +
        "736572006f6e0053000000197365727665725f656e636f64696e6700555446380053000000327365727665725f76657273696f6e0031" +
        "352e3138202844656269616e2031352e31382d302b646562313275312900530000002373657373696f6e5f617574686f72697a617469" +
        "6f6e00706f7374677265730053000000237374616e646172645f636f6e666f726d696e675f737472696e6773006f6e00530000001554" +
        "696d655a6f6e65004574632f555443004b0000000c000077e0448286055a0000000549",
    ),
  },
  {
    fromClient: true,
    data: hex(
      "5100000034435245415445205441424c4520742028696420696e74205052494d415259204b45592c206e616d652074657874293b00",
    ),
  },
  { fromClient: false, data: hex("4300000011435245415445205441424c45005a0000000549") },
  {
    fromClient: true,
    data: hex(
      "5100000033494e5345525420494e544f20742056414c5545532028312c2027626f6227292c2028322c2027616c69636527293b00",
    ),
  },
  { fromClient: false, data: hex("430000000f494e5345525420302032005a0000000549") },
  {
    fromClient: true,
    data: hex(
      "510000003353454c454354202a2046524f4d2074205748455245206964203d203120414e44206e616d65203d2027626f62273b00",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "54000000320002696400000040000001000000170004ffffffff00006e616d650000004000000200000019ffffffffffff0000440000" +
        "00120002000000013100000003626f62430000000d53454c4543542031005a0000000549",
    ),
  },
  { fromClient: true, data: hex("510000001053454c45435420312f303b00") },
  {
    fromClient: false,
    data: hex(
      "4500000041534552524f5200564552524f5200433232303132004d6469766973696f6e206279207a65726f0046696e742e63004c3836" +
        "390052696e74346469760000",
    ),
  },
  { fromClient: false, data: hex("5a0000000549") },
  { fromClient: true, data: hex("510000002153454c454354202a2046524f4d206d697373696e675f7461626c653b00") },
  {
    fromClient: false,
    data: hex(
      "4500000070534552524f5200564552524f5200433432503031004d72656c6174696f6e20226d697373696e675f7461626c652220646f" +
        "6573206e6f7420657869737400503135004670617273655f72656c6174696f6e2e63004c3133393200527061727365724f70656e5461" +
        "626c650000",
    ),
  },
  { fromClient: false, data: hex("5a0000000549") },
  {
    fromClient: true,
    data: hex("510000002e555044415445207420534554206e616d65203d20276361726f6c27205748455245206964203d20323b00"),
  },
  { fromClient: false, data: hex("430000000d5550444154452031005a0000000549") },
  { fromClient: true, data: hex("510000001f44524f50205441424c4520494620455849535453206e6f70653b00") },
  {
    fromClient: false,
    data: hex(
      "4e0000006f534e4f5449434500564e4f5449434500433030303030004d7461626c6520226e6f70652220646f6573206e6f7420657869" +
        "73742c20736b697070696e6700467461626c65636d64732e63004c31333130005244726f704572726f724d73674e6f6e457869737465" +
        "6e740000",
    ),
  },
  { fromClient: false, data: hex("430000000f44524f50205441424c45005a0000000549") },
  { fromClient: true, data: hex("510000000f4c495354454e2063683b00") },
  { fromClient: false, data: hex("430000000b4c495354454e005a0000000549") },
  { fromClient: true, data: hex("51000000214e4f544946592063682c20277365637265742d7061796c6f6164273b00") },
  {
    fromClient: false,
    data: hex("430000000b4e4f5449465900410000001a000077e06368007365637265742d7061796c6f6164005a0000000549"),
  },
  { fromClient: true, data: hex("510000001f424547494e203b2053454c4543542031203b20434f4d4d49543b00") },
  {
    fromClient: false,
    data: hex(
      "430000000a424547494e00540000002100013f636f6c756d6e3f00000000000000000000170004ffffffff0000440000000b00010000" +
        "000131430000000d53454c454354203100430000000b434f4d4d4954005a0000000549",
    ),
  },
  { fromClient: true, data: hex("510000001d53454c4543542024313a3a696e74202b203120415320782000") },
  {
    fromClient: false,
    data: hex(
      "450000005d534552524f5200564552524f5200433432503032004d7468657265206973206e6f20706172616d65746572202431005038" +
        "004670617273655f657870722e63004c38333800527472616e73666f726d506172616d5265660000",
    ),
  },
  { fromClient: false, data: hex("5a0000000549") },
  { fromClient: true, data: hex("5800000004") },
];

// pgbench 15.18 -M prepared -t 2: SELECT and UPDATE with a $1 parameter (named statements P_0, P_1).
const pgbenchPrepared: Chunk[] = [
  { fromClient: true, data: hex("0000000804d2162f") },
  { fromClient: false, data: hex("4e") },
  {
    fromClient: true,
    data: hex(
      "00000042000300007573657200706f73746772657300646174616261736500706f737467726573006170706c69636174696f6e5f6e61" +
        "6d6500706762656e63680000",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "520000000800000000530000001d6170706c69636174696f6e5f6e616d6500706762656e6368005300000019636c69656e745f656e63" +
        "6f64696e670055544638005300000017446174655374796c650049534f2c204d445900530000002664656661756c745f7472616e7361" +
        "6374696f6e5f726561645f6f6e6c79006f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e746567" +
        "65725f6461746574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001469735f7375" +
        "70657275736572006f6e0053000000197365727665725f656e636f64696e6700555446380053000000327365727665725f7665727369" +
        "6f6e0031352e3138202844656269616e2031352e31382d302b646562313275312900530000002373657373696f6e5f617574686f7269" +
        "7a6174696f6e00706f7374677265730053000000237374616e646172645f636f6e666f726d696e675f737472696e6773006f6e005300" +
        "00001554696d655a6f6e65004574632f555443004b0000000c00007ab343757d275a0000000549",
    ),
  },
  {
    fromClient: true,
    data: hex("500000002c505f300053454c454354206e616d652046524f4d2074205748455245206964203d2024313b0000005300000004"),
  },
  { fromClient: false, data: hex("31000000045a0000000549") },
  {
    fromClient: true,
    data: hex("420000001600505f30000000000100000001310001000044000000065000450000000900000000005300000004"),
  },
  {
    fromClient: false,
    data: hex(
      "3200000004540000001d00016e616d650000004000000200000019ffffffffffff0000440000000e0001000000046461766543000000" +
        "0d53454c4543542031005a0000000549",
    ),
  },
  {
    fromClient: true,
    data: hex(
      "5000000034505f3100555044415445207420534554206e616d65203d20276461766527205748455245206964203d2024313b00000053" +
        "00000004",
    ),
  },
  { fromClient: false, data: hex("31000000045a0000000549") },
  {
    fromClient: true,
    data: hex("420000001600505f31000000000100000001310001000044000000065000450000000900000000005300000004"),
  },
  { fromClient: false, data: hex("32000000046e00000004430000000d5550444154452031005a0000000549") },
  {
    fromClient: true,
    data: hex("420000001600505f30000000000100000001310001000044000000065000450000000900000000005300000004"),
  },
  {
    fromClient: false,
    data: hex(
      "3200000004540000001d00016e616d650000004000000200000019ffffffffffff0000440000000e0001000000046461766543000000" +
        "0d53454c4543542031005a0000000549",
    ),
  },
  {
    fromClient: true,
    data: hex("420000001600505f31000000000100000001310001000044000000065000450000000900000000005300000004"),
  },
  { fromClient: false, data: hex("32000000046e00000004430000000d5550444154452031005a0000000549") },
  { fromClient: true, data: hex("5800000004") },
];

// pgbench 15.18 -M prepared, \startpipeline: two Executes in one Sync group.
const pgbenchPipeline: Chunk[] = [
  { fromClient: true, data: hex("0000000804d2162f") },
  { fromClient: false, data: hex("4e") },
  {
    fromClient: true,
    data: hex(
      "00000042000300007573657200706f73746772657300646174616261736500706f737467726573006170706c69636174696f6e5f6e61" +
        "6d6500706762656e63680000",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "520000000800000000530000001d6170706c69636174696f6e5f6e616d6500706762656e6368005300000019636c69656e745f656e63" +
        "6f64696e670055544638005300000017446174655374796c650049534f2c204d445900530000002664656661756c745f7472616e7361" +
        "6374696f6e5f726561645f6f6e6c79006f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e746567" +
        "65725f6461746574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001469735f7375" +
        "70657275736572006f6e0053000000197365727665725f656e636f64696e6700555446380053000000327365727665725f7665727369" +
        "6f6e0031352e3138202844656269616e2031352e31382d302b646562313275312900530000002373657373696f6e5f617574686f7269" +
        "7a6174696f6e00706f7374677265730053000000237374616e646172645f636f6e666f726d696e675f737472696e6773006f6e005300" +
        "00001554696d655a6f6e65004574632f555443004b0000000c00007b7da33c88e45a0000000549",
    ),
  },
  { fromClient: true, data: hex("500000001c505f300053454c454354202431204153206f6e653b0000005300000004") },
  { fromClient: false, data: hex("31000000045a0000000549") },
  {
    fromClient: true,
    data: hex("500000002c505f310053454c454354206e616d652046524f4d2074205748455245206964203d2024313b0000005300000004"),
  },
  { fromClient: false, data: hex("31000000045a0000000549") },
  {
    fromClient: true,
    data: hex(
      "420000001600505f3000000000010000000131000100004400000006500045000000090000000000420000001600505f310000000001" +
        "00000001310001000044000000065000450000000900000000005300000004",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "3200000004540000001c00016f6e650000000000000000000019ffffffffffff0000440000000b00010000000131430000000d53454c" +
        "4543542031003200000004540000001d00016e616d650000004000000200000019ffffffffffff0000440000000e0001000000046461" +
        "7665430000000d53454c4543542031005a0000000549",
    ),
  },
  { fromClient: true, data: hex("5800000004") },
];

// pgbench 15.18 -M prepared: SELECT 10 / ($1 - 1) with $1 = 1 -> division by zero.
const pgbenchError: Chunk[] = [
  { fromClient: true, data: hex("0000000804d2162f") },
  { fromClient: false, data: hex("4e") },
  {
    fromClient: true,
    data: hex(
      "00000042000300007573657200706f73746772657300646174616261736500706f737467726573006170706c69636174696f6e5f6e61" +
        "6d6500706762656e63680000",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "520000000800000000530000001d6170706c69636174696f6e5f6e616d6500706762656e6368005300000019636c69656e745f656e63" +
        "6f64696e670055544638005300000017446174655374796c650049534f2c204d445900530000002664656661756c745f7472616e7361" +
        "6374696f6e5f726561645f6f6e6c79006f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e746567" +
        "65725f6461746574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001469735f7375" +
        "70657275736572006f6e0053000000197365727665725f656e636f64696e6700555446380053000000327365727665725f7665727369" +
        "6f6e0031352e3138202844656269616e2031352e31382d302b646562313275312900530000002373657373696f6e5f617574686f7269" +
        "7a6174696f6e00706f7374677265730053000000237374616e646172645f636f6e666f726d696e675f737472696e6773006f6e005300" +
        "00001554696d655a6f6e65004574632f555443004b0000000c00007bcacc3aa87f5a0000000549",
    ),
  },
  { fromClient: true, data: hex("5000000020505f300053454c454354203130202f20282431202d2031293b0000005300000004") },
  { fromClient: false, data: hex("31000000045a0000000549") },
  {
    fromClient: true,
    data: hex("420000001600505f30000000000100000001310001000044000000065000450000000900000000005300000004"),
  },
  {
    fromClient: false,
    data: hex(
      "4500000041534552524f5200564552524f5200433232303132004d6469766973696f6e206279207a65726f0046696e742e63004c3836" +
        "390052696e74346469760000",
    ),
  },
  { fromClient: false, data: hex("5a0000000549") },
  { fromClient: true, data: hex("5800000004") },
];

// psql 15.18 as user app (SCRAM-SHA-256 password) to database shop, sslmode=disable.
const scramLogin: Chunk[] = [
  {
    fromClient: true,
    data: hex(
      "000000360003000075736572006170700064617461626173650073686f70006170706c69636174696f6e5f6e616d65007073716c0000",
    ),
  },
  { fromClient: false, data: hex("52000000170000000a534352414d2d5348412d3235360000") },
  {
    fromClient: true,
    data: hex(
      "7000000036534352414d2d5348412d32353600000000206e2c2c6e3d2c723d4f7454484f704c6e48487956565568316b4f50766f7a39" +
        "6f",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "520000005c0000000b723d4f7454484f704c6e48487956565568316b4f50766f7a396f61334a38773336354a68483358426750324c33" +
        "6b6f5358692c733d637570636d42572f7433454f56704156684f707768773d3d2c693d34303936",
    ),
  },
  {
    fromClient: true,
    data: hex(
      "700000006c633d626977732c723d4f7454484f704c6e48487956565568316b4f50766f7a396f61334a38773336354a68483358426750" +
        "324c336b6f5358692c703d44306f53454b75384a436a6a3179773659657773592b7451306435455a656b565851467276397a336b4f34" +
        "3d",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "52000000360000000c763d46476e464a49616533417233414a5a4d74352f4a594c6477546954617535756b50473153753868522f6655" +
        "3d520000000800000000530000001a6170706c69636174696f6e5f6e616d65007073716c005300000019636c69656e745f656e636f64" +
        "696e670055544638005300000017446174655374796c650049534f2c204d445900530000002664656661756c745f7472616e73616374" +
        "696f6e5f726561645f6f6e6c79006f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e7465676572" +
        "5f6461746574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001569735f73757065" +
        "7275736572006f66660053000000197365727665725f656e636f64696e6700555446380053000000327365727665725f76657273696f" +
        "6e0031352e3138202844656269616e2031352e31382d302b646562313275312900530000001e73657373696f6e5f617574686f72697a" +
        "6174696f6e006170700053000000237374616e646172645f636f6e666f726d696e675f737472696e6773006f6e00530000001554696d" +
        "655a6f6e65004574632f555443004b0000000c00007da0c0115ae75a0000000549",
    ),
  },
  { fromClient: true, data: hex("510000001e53454c4543542063757272656e745f6461746162617365282900") },
  {
    fromClient: false,
    data: hex(
      "5400000029000163757272656e745f646174616261736500000000000000000000130040ffffffff0000440000000e00010000000473" +
        "686f70430000000d53454c4543542031005a0000000549",
    ),
  },
  { fromClient: true, data: hex("5800000004") },
];

// psql 15.18 with a wrong password: FATAL 28P01, connection closed.
const badPassword: Chunk[] = [
  {
    fromClient: true,
    data: hex(
      "000000360003000075736572006170700064617461626173650073686f70006170706c69636174696f6e5f6e616d65007073716c0000",
    ),
  },
  { fromClient: false, data: hex("52000000170000000a534352414d2d5348412d3235360000") },
  {
    fromClient: true,
    data: hex(
      "7000000036534352414d2d5348412d32353600000000206e2c2c6e3d2c723d43686733364a797072566e38746e2f597561524c306d4b" +
        "2b",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "520000005c0000000b723d43686733364a797072566e38746e2f597561524c306d4b2b306756487468356e584f6365474f5577693039" +
        "4131364c642c733d637570636d42572f7433454f56704156684f707768773d3d2c693d34303936",
    ),
  },
  {
    fromClient: true,
    data: hex(
      "700000006c633d626977732c723d43686733364a797072566e38746e2f597561524c306d4b2b306756487468356e584f6365474f5577" +
        "6930394131364c642c703d7a30795246354b397736326c3057513046526e4e593565514e665546534b3143304f71376639376c475849" +
        "3d",
    ),
  },
  {
    fromClient: false,
    data: hex(
      "450000006353464154414c0056464154414c00433238503031004d70617373776f72642061757468656e7469636174696f6e20666169" +
        "6c656420666f7220757365722022617070220046617574682e63004c3333340052617574685f6661696c65640000",
    ),
  },
];

// psql 15.18 with sslmode=require against the same server with ssl=on: SSLRequest, 'S', then TLS records
// (each cut to its first 32 bytes here, the rest passed as uncaptured).
const tlsSession: Chunk[] = [
  { fromClient: true, data: hex("0000000804d2162f") },
  { fromClient: false, data: hex("53") },
  { fromClient: true, data: hex("16030101200100011c0303da925b75e1cd3eef160b213c1b55cc32d0c209f70e"), missing: 261 },
  { fromClient: false, data: hex("1603030058020000540303cf21ad74e59a6111be1d8c021e65b891c2a211167a"), missing: 67 },
  { fromClient: true, data: hex("14030300010116030301410100013d0303da925b75e1cd3eef160b213c1b55cc"), missing: 300 },
  { fromClient: false, data: hex("160303009b020000970303bb85003ffa73656b99674604d5f89e0feae2eae581"), missing: 1332 },
  { fromClient: true, data: hex("17030300459481134dd468180be14dae334572a0817fa0094ccb28f4205e9910"), missing: 42 },
];

/** A fixture file: "C <hex>" / "S <hex>" lines, one per TCP segment; '#' lines say what produced it. */
function loadFixture(name: string): Chunk[] {
  const raw = readFileSync(new URL(`./fixtures/postgresql/${name}`, import.meta.url));
  const body = name.endsWith(".gz") ? gunzipSync(raw).toString("utf8") : raw.toString("utf8");
  return body
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => ({ fromClient: line[0] === "C", data: hex(line.slice(2)) }));
}

const gdescCopySelect = loadFixture("psql-gdesc-copy-select.txt");
const pgbenchMany = loadFixture("pgbench-260-statements.txt.gz");

const smallFixtures = [
  psqlSession,
  pgbenchPrepared,
  pgbenchPipeline,
  pgbenchError,
  scramLogin,
  badPassword,
  tlsSession,
];
const allFixtures = [...smallFixtures, gdescCopySelect];

type Row = [string, string | undefined, string | undefined] | [string, string | number | undefined, string?];

/** Requests as [requestType, resource, endpoint]; responses as [status, SQLSTATE or rows, exception]. */
function summary(messages: L7Message[]): Row[] {
  return messages.map((m) => {
    if (m.kind === "request") return [m.requestType ?? "", m.resource, m.endpoint];
    const a = m.attributes ?? {};
    const detail = (a["db.response.status_code"] ??
      a["db.response.returned_rows"] ??
      a["db.response.affected_rows"] ??
      m.endpoint) as string | number | undefined;
    return m.exception === undefined ? [m.status ?? "", detail] : [m.status ?? "", detail, m.exception];
  });
}

/** A copy of `rows` with row `i` replaced. */
const replaced = (rows: Row[], i: number, row: Row): Row[] => rows.map((r, k) => (k === i ? row : r));

/** Each chunk longer than `capture` bytes cut to it, the rest passed as uncaptured (the receiver's truncation). */
function captureLimited(chunks: Chunk[], capture: number, keepWhole: (i: number) => boolean = () => false): Chunk[] {
  return chunks.map((c, i) =>
    c.data.length > capture && !keepWhole(i)
      ? { fromClient: c.fromClient, data: c.data.subarray(0, capture), missing: c.data.length - capture }
      : c,
  );
}

describe("postgresql detect", () => {
  const startup = psqlSession[2]?.data as Uint8Array;
  const query = psqlSession[4]?.data as Uint8Array;
  const commandComplete = psqlSession[5]?.data as Uint8Array;
  const bindExecuteSync = pgbenchPrepared[8]?.data as Uint8Array;

  it("is sure of the untyped packets a client opens with", () => {
    expect(postgresql.detect(startup, undefined)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    expect(postgresql.detect(psqlSession[0]?.data as Uint8Array, undefined)).toEqual({
      confidence: Confidence.Sure,
      fromClient: true,
    });
    expect(postgresql.detect(scramLogin[0]?.data as Uint8Array, true).confidence).toBe(Confidence.Sure);
    expect(postgresql.detect(startup.subarray(0, 12), undefined).confidence).toBe(Confidence.Sure);
  });

  it("says maybe to typed messages met mid-connection, and which side sent them", () => {
    expect(postgresql.detect(query, undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(postgresql.detect(bindExecuteSync, undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(postgresql.detect(commandComplete, undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: false });
    expect(postgresql.detect(psqlSession[9]?.data as Uint8Array, undefined)).toEqual({
      confidence: Confidence.Maybe,
      fromClient: false,
    });
    // a query cut by the capture size
    expect(postgresql.detect(query.subarray(0, 20), true).confidence).toBe(Confidence.Maybe);
  });

  it("rejects other protocols, TLS and the wrong side", () => {
    expect(postgresql.detect(text("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), undefined).confidence).toBe(Confidence.No);
    expect(postgresql.detect(text("*1\r\n$4\r\nPING\r\n"), undefined).confidence).toBe(Confidence.No);
    expect(postgresql.detect(text("HTTP/1.1 200 OK\r\n\r\n"), undefined).confidence).toBe(Confidence.No);
    expect(postgresql.detect(tlsSession[2]?.data as Uint8Array, undefined).confidence).toBe(Confidence.No);
    expect(postgresql.detect(startup, false).confidence).toBe(Confidence.No);
    expect(postgresql.detect(commandComplete, true).confidence).toBe(Confidence.No);
    expect(postgresql.detect(query, false).confidence).toBe(Confidence.No);
    expect(postgresql.detect(hex("51000000ff00"), true).confidence).toBe(Confidence.No);
    expect(postgresql.detect(new Uint8Array(0), undefined).confidence).toBe(Confidence.No);
  });
});

describe("postgresql simple query (psql)", () => {
  it("gives one request per Query and one response per ReadyForQuery, startup excluded", () => {
    const out = runParser(postgresql, psqlSession);
    expect(summary(out)).toEqual([
      ["CREATE", "CREATE TABLE t (id int PRIMARY KEY, name text)", "CREATE t"],
      ["ok", undefined],
      ["INSERT", "INSERT INTO t VALUES (?, ?), (?, ?)", "INSERT t"],
      ["ok", 2],
      ["SELECT", "SELECT * FROM t WHERE id = ? AND name = ?", "SELECT t"],
      ["ok", 1],
      ["SELECT", "SELECT ?/?", "SELECT"],
      ["client_error", "22012", "division by zero"],
      ["SELECT", "SELECT * FROM missing_table", "SELECT missing_table"],
      ["client_error", "42P01", 'relation "missing_table" does not exist'],
      ["UPDATE", "UPDATE t SET name = ? WHERE id = ?", "UPDATE t"],
      ["ok", 1],
      ["DROP", "DROP TABLE IF EXISTS nope", "DROP nope"],
      ["ok", undefined], // a NoticeResponse: still ok
      ["LISTEN", "LISTEN ch", "LISTEN"],
      ["ok", undefined],
      ["NOTIFY", "NOTIFY ch, ?", "NOTIFY"],
      ["ok", "NOTIFY ch"], // the NotificationResponse, unsolicited
      ["ok", undefined],
      ["BEGIN", "BEGIN ; SELECT ? ; COMMIT", "BEGIN"],
      ["ok", 1],
      ["SELECT", "SELECT $1::int + ? AS x", "SELECT"],
      ["client_error", "42P02", "there is no parameter $1"],
      ["TERMINATE", undefined, "TERMINATE"],
    ]);
  });

  it("fills sizes, seqs, domain, version and the SQL attributes", () => {
    const out = runParser(postgresql, psqlSession);
    const [create, created] = out;
    // SSLRequest (8) + StartupMessage (62) come first on the client side (seq 1000)
    expect(create).toMatchObject({ kind: "request", bytes: 53, tcpSeq: 1070, domain: "postgres", version: "3.0" });
    expect(create?.attributes).toEqual({ "db.system.name": "postgresql" });
    // 'N' (1) + the startup answer (413) on the server side (seq 5000)
    expect(created).toMatchObject({ kind: "response", bytes: 24, tcpSeq: 5414, status: "ok" });
    const error = out[7] as L7Message;
    expect(error.code).toBeUndefined();
    expect(error.attributes).toEqual({ "db.system.name": "postgresql", "db.response.status_code": "22012" });
    expect(error.bytes).toBe(66 + 6); // ErrorResponse and ReadyForQuery came in two writes
    expect(error.endNs).toBe(12_500);
    const notification = out[17] as L7Message;
    expect(notification).toMatchObject({ kind: "response", unsolicited: true, bytes: 27 });
    expect(JSON.stringify(out)).not.toContain("secret-payload");
    const terminate = out[23] as L7Message;
    expect(terminate).toMatchObject({ oneWay: true, bytes: 5 });
    expect(out.filter((m) => m.kind === "request" && !m.oneWay).length).toBe(
      out.filter((m) => m.kind === "response" && !m.unsolicited).length,
    );
  });

  it("keeps literals when redaction is off", () => {
    const out = runParser(postgresql, psqlSession, { ...DEFAULT_SESSION, redact: false });
    expect(out[2]?.resource).toBe("INSERT INTO t VALUES (1, 'bob'), (2, 'alice')");
    expect(out[16]?.resource).toBe("NOTIFY ch, 'secret-payload'");
  });

  it("reads \\gdesc (Parse/Describe groups), COPY FROM STDIN and a 23 kB result", () => {
    const out = runParser(postgresql, gdescCopySelect);
    expect(summary(out)).toEqual([
      ["PREPARE", "SELECT id, name FROM t WHERE id = ?", "PREPARE"],
      ["ok", undefined],
      ["DESCRIBE", undefined, "DESCRIBE"],
      ["ok", undefined],
      [
        "SELECT",
        'SELECT name AS "Column", pg_catalog.format_type(tp, tpm) AS "Type" FROM (VALUES (?, ?::pg_catalog.oid, -?),(?, ?::pg_catalog.oid, -?)) s(name, tp, tpm)',
        "SELECT",
      ],
      ["ok", 2],
      ["COPY", "COPY t FROM STDIN", "COPY t"],
      ["ok", 2],
      ["SELECT", "SELECT g, repeat(?, ?) AS pad FROM generate_series(?, ?) AS g", "SELECT generate_series"],
      ["ok", 200],
      ["TERMINATE", undefined, "TERMINATE"],
    ]);
    expect(out[7]?.attributes?.["db.response.affected_rows"]).toBe(2);
    expect(out[9]).toMatchObject({ bytes: 8192 + 8192 + 7179, endNs: 17_500 });
    expect(out[9]?.attributes?.["kalman.truncated"]).toBeUndefined();
  });
});

describe("postgresql extended query (pgbench -M prepared)", () => {
  it("reports Parse-only groups as PREPARE and executions with the named statement's SQL", () => {
    const out = runParser(postgresql, pgbenchPrepared);
    const select: Row = ["SELECT", "SELECT name FROM t WHERE id = $1", "SELECT t"];
    const update: Row = ["UPDATE", "UPDATE t SET name = ? WHERE id = $1", "UPDATE t"];
    expect(summary(out)).toEqual([
      ["PREPARE", "SELECT name FROM t WHERE id = $1", "PREPARE"],
      ["ok", undefined],
      select,
      ["ok", 1],
      ["PREPARE", "UPDATE t SET name = ? WHERE id = $1", "PREPARE"],
      ["ok", undefined],
      update,
      ["ok", 1],
      select,
      ["ok", 1],
      update,
      ["ok", 1],
      ["TERMINATE", undefined, "TERMINATE"],
    ]);
    // Bind + Describe + Execute + Sync in one write
    expect(out[2]).toMatchObject({ bytes: 23 + 7 + 10 + 5, tcpSeq: 1124 });
    expect(out[7]?.attributes?.["db.response.affected_rows"]).toBe(1);
  });

  it("reports a pipeline (two Executes, one Sync) as one request with its batch size", () => {
    const out = runParser(postgresql, pgbenchPipeline);
    expect(out[4]).toMatchObject({ requestType: "SELECT", resource: "SELECT $1 AS one", bytes: 85 });
    expect(out[4]?.attributes?.["db.operation.batch.size"]).toBe(2);
    expect(out[5]).toMatchObject({ status: "ok", bytes: 130 });
    expect(out[5]?.attributes?.["db.response.returned_rows"]).toBe(2);
  });

  it("classifies an execution error by SQLSTATE", () => {
    const out = runParser(postgresql, pgbenchError);
    expect(summary(out)).toEqual([
      ["PREPARE", "SELECT ? / ($1 - ?)", "PREPARE"],
      ["ok", undefined],
      ["SELECT", "SELECT ? / ($1 - ?)", "SELECT"],
      ["client_error", "22012", "division by zero"],
      ["TERMINATE", undefined, "TERMINATE"],
    ]);
  });

  it("remembers at most 256 named statements", () => {
    const out = runParser(postgresql, pgbenchMany);
    const requests = out.filter((m) => m.kind === "request" && !m.oneWay);
    const responses = out.filter((m) => m.kind === "response");
    // 260 PREPARE + 260 executions in the first run, 260 executions in the second
    expect(requests.length).toBe(780);
    expect(responses.length).toBe(780);
    expect(responses.every((m) => m.status === "ok")).toBe(true);
    const second = requests.slice(520);
    // P_0..P_3 were evicted by P_256..P_259: their SQL is gone, the rest is still known
    expect(second.slice(0, 4).map((m) => m.requestType)).toEqual(["EXECUTE", "EXECUTE", "EXECUTE", "EXECUTE"]);
    expect(second.slice(4).every((m, i) => m.resource === `SELECT ${i + 4}`)).toBe(false); // literals are redacted
    expect(second.slice(4).every((m) => m.requestType === "SELECT" && m.resource === "SELECT ?")).toBe(true);
  });
});

describe("postgresql startup", () => {
  it("reads database and user from the startup packet and records nothing for SCRAM", () => {
    const out = runParser(postgresql, scramLogin);
    expect(summary(out)).toEqual([
      ["SELECT", "SELECT current_database()", "SELECT"],
      ["ok", 1],
      ["TERMINATE", undefined, "TERMINATE"],
    ]);
    expect(out[0]?.domain).toBe("shop");
  });

  it("records nothing for a failed login", () => {
    expect(runParser(postgresql, badPassword)).toEqual([]);
  });

  it("stops reading after SSL is accepted, without calling it malformed", () => {
    const session = postgresql.createSession(DEFAULT_SESSION);
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
    const out: L7Message[] = [];
    for (const c of tlsSession) session.feed(c.fromClient, c.data, c.missing ?? 0, meta, (m) => out.push(m));
    expect(out).toEqual([]);
    expect(session.stats).toEqual({ malformed: 0, resyncBytes: 0 });
    expect(session.buffered()).toBe(0);
  });
});

describe("postgresql capture limits and gaps", () => {
  it("skips uncaptured bytes by length and keeps pairing when a result is cut (1 kB capture)", () => {
    const cut = captureLimited(gdescCopySelect, 1024);
    const out = runParser(postgresql, cut);
    const whole = runParser(postgresql, gdescCopySelect);
    expect(out.length).toBe(whole.length);
    expect(fieldsOf(out.slice(0, 8))).toEqual(fieldsOf(whole.slice(0, 8)));
    // ReadyForQuery ends the last (uncaptured) server write: the response ends with the last server chunk
    // once the client sends its next message
    expect(out[9]).toMatchObject({ kind: "response", status: "unknown", bytes: 23563, endNs: 17_500 });
    expect(out[9]?.attributes?.["kalman.truncated"]).toBe(true);
    expect(out[10]?.requestType).toBe("TERMINATE");
  });

  it("finds the end of a cut result by its ReadyForQuery and the CommandComplete before it", () => {
    // the two 8 kB writes cut to 1 kB, the last write whole
    const cut = captureLimited(gdescCopySelect, 1024, (i) => gdescCopySelect[i]?.data.length === 7179);
    const out = runParser(postgresql, cut);
    expect(out[9]).toMatchObject({ kind: "response", status: "ok", bytes: 23563, endNs: 17_500 });
    expect(out[9]?.attributes).toEqual({
      "db.system.name": "postgresql",
      "db.response.returned_rows": 200,
      "kalman.truncated": true,
    });
  });

  it("keeps what a query cut by the capture shows", () => {
    const cut = captureLimited(gdescCopySelect, 100);
    const out = runParser(postgresql, cut);
    expect(out[4]).toMatchObject({
      requestType: "SELECT",
      resource: 'SELECT name AS "Column", pg_catalog.format_type(tp, tpm) AS "Type" FROM (VALUES (?, ?::pg',
      bytes: 171,
    });
    expect(out[4]?.attributes?.["kalman.truncated"]).toBe(true);
    // its 122-byte answer lost CommandComplete and ReadyForQuery to the capture
    expect(out[5]).toMatchObject({ kind: "response", status: "unknown", bytes: 122 });
    expect(summary(out).slice(6)).toEqual(
      replaced(summary(runParser(postgresql, gdescCopySelect)).slice(6), 3, ["unknown", undefined]),
    );
  });

  it("reports an extended-query group cut before its Execute with the bound statement", () => {
    const cut = pgbenchPrepared.map((c, i) => (i === 6 ? { ...c, data: c.data.subarray(0, 10), missing: 35 } : c));
    const out = runParser(postgresql, cut);
    expect(out[2]).toMatchObject({ requestType: "SELECT", resource: "SELECT name FROM t WHERE id = $1", bytes: 45 });
    expect(out[2]?.attributes?.["kalman.truncated"]).toBe(true);
    expect(summary(out).slice(3)).toEqual(summary(runParser(postgresql, pgbenchPrepared)).slice(3));
  });

  it("resynchronises after a lost server write and keeps responses with their requests", () => {
    const whole = summary(runParser(postgresql, psqlSession));
    const losing = (chunk: number) =>
      summary(
        runParser(
          postgresql,
          psqlSession.map((c, i) => (i === chunk ? { ...c, data: new Uint8Array(0), missing: c.data.length } : c)),
        ),
      );
    // the write holding the division-by-zero ErrorResponse never captured: status unknown
    expect(losing(11)).toEqual(replaced(whole, 7, ["unknown", undefined]));
    // only its ReadyForQuery lost: the error is known, the next request ends the response
    expect(losing(12)).toEqual(whole);
    // a whole SELECT answer (RowDescription ... ReadyForQuery) lost
    expect(losing(9)).toEqual(replaced(whole, 5, ["unknown", undefined]));
  });

  it("drops the answer to a request it never saw, then pairs the next ones", () => {
    // the INSERT never captured: its response must not be paired with the SELECT after it
    const lost = psqlSession.map((c, i) => (i === 6 ? { ...c, data: new Uint8Array(0), missing: c.data.length } : c));
    const out = summary(runParser(postgresql, lost));
    const whole = summary(runParser(postgresql, psqlSession));
    expect(out).toEqual([...whole.slice(0, 2), ...whole.slice(4)]);
  });

  it("recovers mid-connection: detection on a later chunk, then normal parsing", () => {
    const out = summary(runParser(postgresql, psqlSession.slice(8)));
    expect(out).toEqual(summary(runParser(postgresql, psqlSession)).slice(4));
  });

  it("emits a response cut by the connection close as unknown", () => {
    const out = runParser(postgresql, [...gdescCopySelect.slice(0, 16)]);
    const last = out[out.length - 1] as L7Message;
    expect(last).toMatchObject({ kind: "response", status: "unknown", bytes: 8192, endNs: 15_500 });
    expect(last.attributes?.["kalman.truncated"]).toBe(true);
  });
});

describe("postgresql harness checks", () => {
  it("gives the same messages split at every offset", () => {
    for (const f of smallFixtures) checkSplitsEverywhere(postgresql, f);
    checkSplitsEverywhere(postgresql, gdescCopySelect.slice(0, 14));
    checkSplitsEverywhere(postgresql, captureLimited(gdescCopySelect, 1024));
  });

  it("gives the same messages byte by byte", () => {
    for (const f of allFixtures) checkByteByByte(postgresql, f);
    checkByteByByte(postgresql, pgbenchMany);
  });

  it("parses every prefix", () => {
    for (const f of smallFixtures) checkEveryPrefix(postgresql, f);
  });

  it("survives random and mutated input", () => {
    checkFuzz(postgresql, [...allFixtures, captureLimited(gdescCopySelect, 1024)]);
  });

  it("stays bounded when fed a huge query", () => {
    const session = postgresql.createSession({ redact: true, maxBufferBytes: 4096 });
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 0 };
    const out: L7Message[] = [];
    // a 1 MB query: 'Q', length, then SELECT followed by spaces
    const big = new Uint8Array(1 << 20).fill(0x20);
    big.set(hex("51000fffff"), 0);
    big.set(text("SELECT 'x"), 5);
    big[big.length - 1] = 0;
    for (let i = 0; i < big.length; i += 65536) {
      session.feed(true, big.subarray(i, i + 65536), 0, meta, (m) => out.push(m));
      expect(session.buffered()).toBeLessThanOrEqual(4096);
    }
    expect(out).toMatchObject([{ requestType: "SELECT", resource: "SELECT ?", bytes: 1 << 20 }]);
  });
});

describe("postgresql SQL normalisation", () => {
  const norm = (sql: string) => normalizeSql(sql, true);

  it("replaces literals, keeps parameters and identifiers", () => {
    expect(norm("SELECT * FROM t WHERE id = 42 AND name = 'bob'")).toBe("SELECT * FROM t WHERE id = ? AND name = ?");
    expect(norm('select a1, "col 2" from t2 where x = $1 and y in (1, 2.5, -3e-2, .5, 0x1F)')).toBe(
      'select a1, "col 2" from t2 where x = $1 and y in (?, ?, -?, ?, ?)',
    );
    expect(norm("SELECT 'it''s', E'a\\'b', X'FF', B'101', N'n', U&'\\0041'")).toBe("SELECT ?, ?, ?, ?, ?, ?");
    expect(norm("SELECT $$a 'b' c$$, $fn$ x $$ y $fn$, a$b FROM t")).toBe("SELECT ?, ?, a$b FROM t");
  });

  it("drops comments and collapses whitespace", () => {
    expect(norm("  SELECT /* a /* nested */ b */ 1 -- secret 'x'\n\tFROM   t ;  ")).toBe("SELECT ? FROM t");
    expect(norm("SELECT 'multi\n  line'\n\n FROM t")).toBe("SELECT ? FROM t");
  });

  it("handles unterminated literals and caps the length", () => {
    expect(norm("SELECT 'never closed")).toBe("SELECT ?");
    expect(norm("SELECT $tag$ never closed")).toBe("SELECT ?");
    expect(norm(`SELECT ${"a, ".repeat(1000)}b`).length).toBeGreaterThan(1020);
    expect(norm(`SELECT ${"a, ".repeat(1000)}b`).length).toBeLessThanOrEqual(1024);
    expect(normalizeSql("SELECT 'x',  2", false)).toBe("SELECT 'x', 2");
  });

  it("finds the verb and the first table", () => {
    const endpoint = (sql: string) => summarizeSql(sql, true).endpoint;
    expect(summarizeSql("/* c */ select 1", true).requestType).toBe("SELECT");
    expect(summarizeSql("(SELECT 1) UNION (SELECT 2)", true).requestType).toBe("SELECT");
    expect(summarizeSql("", true)).toEqual({ requestType: undefined, resource: "", endpoint: undefined });
    expect(endpoint("SELECT EXTRACT(YEAR FROM ts) FROM Orders o")).toBe("SELECT orders");
    expect(endpoint("select * from public.users u join t2 on true")).toBe("SELECT public.users");
    expect(endpoint('SELECT * FROM "My Table"')).toBe('SELECT "My Table"');
    expect(endpoint("INSERT INTO s.t (a) VALUES (1)")).toBe("INSERT s.t");
    expect(endpoint("UPDATE ONLY t SET a = 1")).toBe("UPDATE t");
    expect(endpoint("DELETE FROM t WHERE a = 1")).toBe("DELETE t");
    expect(endpoint("CREATE TABLE IF NOT EXISTS t (a int)")).toBe("CREATE t");
    expect(endpoint("CREATE UNLOGGED TABLE t (a int)")).toBe("CREATE t");
    expect(endpoint("CREATE INDEX i ON t (a)")).toBe("CREATE");
    expect(endpoint("DROP TABLE IF EXISTS t")).toBe("DROP t");
    expect(endpoint("TRUNCATE TABLE t")).toBe("TRUNCATE t");
    expect(endpoint("TRUNCATE t, u")).toBe("TRUNCATE t");
    expect(endpoint("COPY t FROM STDIN")).toBe("COPY t");
    expect(endpoint("WITH x AS (SELECT 1) SELECT * FROM x")).toBe("WITH");
    expect(endpoint("SELECT 1")).toBe("SELECT");
  });
});
