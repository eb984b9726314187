import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Confidence } from "../src/protocols/parser.js";
import { redis } from "../src/protocols/redis/index.js";
import type { L7Message } from "../src/types.js";
import {
  type Chunk,
  checkByteByByte,
  checkEveryPrefix,
  checkFuzz,
  checkSplitsEverywhere,
  hex,
  runParser,
  text,
} from "./support/harness.js";

// Fixtures: tcpdump -i lo of a private redis-server 7.0.15 (port 16399), payloads from
// `tshark -T fields -e tcp.payload`, one chunk per TCP segment. Clients as noted per fixture.

/** redis-cli 7.0.15 reading commands from stdin (RESP2); its first exchange, COMMAND DOCS, is in redis-cli-resp2.json.gz. */
const cliSession: Chunk[] = [
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
  { fromClient: true, data: text("*3\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$12\r\ns3cret-value\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*2\r\n$3\r\nGET\r\n$6\r\nuser:1\r\n") },
  { fromClient: false, data: text("$12\r\ns3cret-value\r\n") },
  { fromClient: true, data: text("*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n") },
  { fromClient: false, data: text(":1\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nLPUSH\r\n$6\r\nmylist\r\n$1\r\na\r\n") },
  { fromClient: false, data: text(":1\r\n") },
  { fromClient: true, data: text("*2\r\n$3\r\nGET\r\n$6\r\nmylist\r\n") },
  { fromClient: false, data: text("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n") },
  { fromClient: true, data: text("*4\r\n$3\r\nDEL\r\n$6\r\nuser:1\r\n$7\r\ncounter\r\n$6\r\nmylist\r\n") },
  { fromClient: false, data: text(":3\r\n") },
  { fromClient: true, data: text("*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n") },
  { fromClient: false, data: text("$-1\r\n") },
  { fromClient: true, data: text("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$6\r\nkalman\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$9\r\nmaxmemory\r\n") },
  { fromClient: false, data: text("*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n") },
  { fromClient: true, data: text("*2\r\n$3\r\nFOO\r\n$3\r\nbar\r\n") },
  { fromClient: false, data: text("-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n") },
  { fromClient: true, data: text("*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n") },
  { fromClient: false, data: text("*2\r\n$-1\r\n$-1\r\n") },
  {
    fromClient: true,
    data: text("*4\r\n$4\r\nEVAL\r\n$33\r\nreturn redis.call('GET', KEYS[1])\r\n$1\r\n1\r\n$6\r\nuser:1\r\n"),
  },
  { fromClient: false, data: text("$-1\r\n") },
  { fromClient: true, data: text("*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$1\r\nv\r\n") },
  { fromClient: false, data: text(":1\r\n") },
  { fromClient: true, data: text("*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n") },
  { fromClient: false, data: text("*2\r\n$1\r\nf\r\n$1\r\nv\r\n") },
  { fromClient: true, data: text("*3\r\n$6\r\nexpire\r\n$1\r\nh\r\n$3\r\n100\r\n") },
  { fromClient: false, data: text(":1\r\n") },
];

/** A raw socket client sending HELLO 3 and DEBUG PROTOCOL <type> (server started with --enable-debug-command yes). */
const resp3Types: Chunk[] = [
  { fromClient: true, data: text("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n") },
  {
    fromClient: false,
    data: text(
      "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:6\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    ),
  },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\ntrue\r\n") },
  { fromClient: false, data: text("#t\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$5\r\nfalse\r\n") },
  { fromClient: false, data: text("#f\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\ndouble\r\n") },
  { fromClient: false, data: text(",3.141\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\nbignum\r\n") },
  { fromClient: false, data: text("(1234567999999999999999999999999999999\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$6\r\nattrib\r\n") },
  {
    fromClient: false,
    data: text(
      "|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\nSome real reply following the attribute\r\n",
    ),
  },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$8\r\nverbatim\r\n") },
  { fromClient: false, data: text("=29\r\ntxt:This is a verbatim\nstring\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\npush\r\n") },
  {
    fromClient: false,
    data: text(">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n$40\r\nSome real reply following the push reply\r\n"),
  },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$4\r\nnull\r\n") },
  { fromClient: false, data: text("_\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$3\r\nmap\r\n") },
  { fromClient: false, data: text("%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$3\r\nset\r\n") },
  { fromClient: false, data: text("~3\r\n:0\r\n:1\r\n:2\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$5\r\narray\r\n") },
  { fromClient: false, data: text("*3\r\n:0\r\n:1\r\n:2\r\n") },
  { fromClient: true, data: text("*3\r\n$3\r\nSET\r\n$2\r\nk3\r\n$1\r\nv\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nLPUSH\r\n$2\r\nk3\r\n$1\r\nx\r\n") },
  { fromClient: false, data: text("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n") },
  { fromClient: true, data: text("*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n") },
  {
    fromClient: false,
    data: text(
      "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:6\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    ),
  },
  { fromClient: true, data: text("*3\r\n$5\r\nDEBUG\r\n$8\r\nPROTOCOL\r\n$3\r\nmap\r\n") },
  { fromClient: false, data: text("*6\r\n:0\r\n:0\r\n:1\r\n:1\r\n:2\r\n:0\r\n") },
];

/** Subscriber: a raw socket client (SUBSCRIBE ch1 ch2, PSUBSCRIBE, PING, UNSUBSCRIBE, PUNSUBSCRIBE, PING); publishers: redis-cli PUBLISH. */
const subscriber: Chunk[] = [
  { fromClient: true, data: text("*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\nch1\r\n$3\r\nch2\r\n") },
  {
    fromClient: false,
    data: text("*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n"),
  },
  { fromClient: false, data: text("*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n") },
  { fromClient: true, data: text("*2\r\n$10\r\nPSUBSCRIBE\r\n$6\r\nnews.*\r\n") },
  { fromClient: false, data: text("*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:3\r\n") },
  { fromClient: false, data: text("*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$10\r\nnews.today\r\n$2\r\nhi\r\n") },
  { fromClient: false, data: text("*3\r\n$7\r\nmessage\r\n$3\r\nch2\r\n$1\r\nx\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("*2\r\n$4\r\npong\r\n$0\r\n\r\n") },
  { fromClient: true, data: text("*1\r\n$11\r\nUNSUBSCRIBE\r\n") },
  {
    fromClient: false,
    data: text("*3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:1\r\n"),
  },
  { fromClient: true, data: text("*1\r\n$12\r\nPUNSUBSCRIBE\r\n") },
  { fromClient: false, data: text("*3\r\n$12\r\npunsubscribe\r\n$6\r\nnews.*\r\n:0\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
];

/** `redis-cli -p PORT PUBLISH ch1 hello`. */
const publisher: Chunk[] = [
  { fromClient: true, data: text("*3\r\n$7\r\nPUBLISH\r\n$3\r\nch1\r\n$5\r\nhello\r\n") },
  { fromClient: false, data: text(":1\r\n") },
];

/** RESP3 subscriber (pushes), then CLIENT TRACKING on: a SET from another client invalidates "tk". */
const resp3Subscriber: Chunk[] = [
  { fromClient: true, data: text("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n") },
  {
    fromClient: false,
    data: text(
      "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:17\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n",
    ),
  },
  { fromClient: true, data: text("*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\nch1\r\n") },
  { fromClient: false, data: text(">3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n") },
  { fromClient: false, data: text(">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$6\r\nhello3\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
  { fromClient: true, data: text("*2\r\n$11\r\nUNSUBSCRIBE\r\n$3\r\nch1\r\n") },
  { fromClient: false, data: text(">3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:0\r\n") },
  { fromClient: true, data: text("*3\r\n$6\r\nCLIENT\r\n$8\r\nTRACKING\r\n$2\r\non\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*2\r\n$3\r\nGET\r\n$2\r\ntk\r\n") },
  { fromClient: false, data: text("$7\r\nchanged\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
  { fromClient: false, data: text(">2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\ntk\r\n") },
];

/** MONITOR (another client ran SET mk topsecret), RESET, PING. */
const monitor: Chunk[] = [
  { fromClient: true, data: text("*1\r\n$7\r\nMONITOR\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: false, data: text('+1795636897.412384 [0 127.0.0.1:38246] "SET" "mk" "topsecret"\r\n') },
  { fromClient: true, data: text("*1\r\n$5\r\nRESET\r\n") },
  { fromClient: false, data: text("+RESET\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
];

/** CLIENT REPLY OFF / ON / SKIP, pipelined in one write. */
const clientReply: Chunk[] = [
  {
    fromClient: true,
    data: text(
      "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$2\r\nON\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
    ),
  },
  { fromClient: false, data: text("+OK\r\n$1\r\n1\r\n$1\r\n2\r\n") },
];

/** MULTI / EXEC with a failing command inside. */
const transaction: Chunk[] = [
  { fromClient: true, data: text("*1\r\n$5\r\nMULTI\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n") },
  { fromClient: false, data: text("+QUEUED\r\n") },
  { fromClient: true, data: text("*2\r\n$4\r\nINCR\r\n$1\r\na\r\n") },
  { fromClient: false, data: text("+QUEUED\r\n") },
  { fromClient: true, data: text("*3\r\n$5\r\nLPUSH\r\n$1\r\na\r\n$1\r\nx\r\n") },
  { fromClient: false, data: text("+QUEUED\r\n") },
  { fromClient: true, data: text("*1\r\n$4\r\nEXEC\r\n") },
  {
    fromClient: false,
    data: text("*3\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
  },
  { fromClient: true, data: text("*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n") },
  { fromClient: false, data: text(":2\r\n") },
];

/** Inline commands (what telnet sends), with an empty line. */
const inline: Chunk[] = [
  { fromClient: true, data: text("PING\r\n") },
  { fromClient: false, data: text("+PONG\r\n") },
  { fromClient: true, data: text("SET ik iv\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("get ik\r\n") },
  { fromClient: false, data: text("$2\r\niv\r\n") },
  { fromClient: true, data: text("\r\n") },
  { fromClient: true, data: text("EXISTS ik\r\n") },
  { fromClient: false, data: text(":1\r\n") },
  { fromClient: true, data: text("NOSUCH x\r\n") },
  { fromClient: false, data: text("-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n") },
];

/** redis-benchmark -c 1 -n 32 -P 16 -t set,get: its CONFIG GET probe and one pipelined batch of each. */
const benchConfig: Chunk[] = [
  {
    fromClient: true,
    data: text(
      "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nappendonly\r\n",
    ),
  },
  { fromClient: false, data: text("*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n") },
];
const benchSet: Chunk[] = [
  {
    fromClient: true,
    data: text(
      "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nVXK\r\n",
    ),
  },
  {
    fromClient: false,
    data: text(
      "+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n",
    ),
  },
];
const benchGet: Chunk[] = [
  {
    fromClient: true,
    data: text(
      "*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n",
    ),
  },
  {
    fromClient: false,
    data: text(
      "$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n$3\r\nVXK\r\n",
    ),
  },
];

/** Five redis-cli invocations (one connection each): AUTH, ACL SETUSER, CONFIG SET requirepass, -a with CONFIG SET, ECHO. */
const secrets: Chunk[] = [
  { fromClient: true, data: text("*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$9\r\nwrongpass\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  {
    fromClient: true,
    data: text(
      "*7\r\n$3\r\nACL\r\n$7\r\nSETUSER\r\n$5\r\nalice\r\n$2\r\non\r\n$8\r\n>alicepw\r\n$2\r\n~*\r\n$5\r\n+@all\r\n",
    ),
  },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$11\r\ntopsecretpw\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*2\r\n$4\r\nAUTH\r\n$11\r\ntopsecretpw\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$0\r\n\r\n") },
  { fromClient: false, data: text("+OK\r\n") },
  { fromClient: true, data: text("*2\r\n$4\r\nECHO\r\n$11\r\necho-secret\r\n") },
  { fromClient: false, data: text("$11\r\necho-secret\r\n") },
];

const SMALL_FIXTURES = {
  cliSession,
  resp3Types,
  subscriber,
  publisher,
  resp3Subscriber,
  monitor,
  clientReply,
  transaction,
  inline,
  benchConfig,
  benchSet,
  benchGet,
  secrets,
};

/** A recorded conversation from test/fixtures/redis (gzipped JSON: { note, chunks: [{ fromClient, hex }] }). */
function loadFixture(name: string): Chunk[] {
  const raw = gunzipSync(readFileSync(new URL(`./fixtures/redis/${name}`, import.meta.url))).toString();
  const json = JSON.parse(raw) as { chunks: Array<{ fromClient: boolean; hex: string }> };
  return json.chunks.map((c) => ({ fromClient: c.fromClient, data: hex(c.hex) }));
}

/** What a capture of `captureBytes` per write gives: each chunk cut, the rest reported as missing. */
function truncate(chunks: Chunk[], captureBytes: number): Chunk[] {
  return chunks.map((c) =>
    c.data.length > captureBytes
      ? { fromClient: c.fromClient, data: c.data.subarray(0, captureBytes), missing: c.data.length - captureBytes }
      : c,
  );
}

/** Joins consecutive chunks of the same side: one write per message burst, as a client writes. */
function joinSides(chunks: Chunk[]): Chunk[] {
  const out: Chunk[] = [];
  for (const c of chunks) {
    const last = out[out.length - 1];
    if (last && last.fromClient === c.fromClient && !last.missing) {
      const data = new Uint8Array(last.data.length + c.data.length);
      data.set(last.data);
      data.set(c.data, last.data.length);
      out[out.length - 1] = { fromClient: c.fromClient, data };
    } else out.push(c);
  }
  return out;
}

/** Pairs messages as the aggregator does (in order; one-way and unsolicited apart), one line each. */
function paired(messages: L7Message[]): string[] {
  const queue: L7Message[] = [];
  const out: string[] = [];
  const name = (m: L7Message) => `${m.requestType ?? "?"}${m.resource ? ` ${m.resource}` : ""}`;
  for (const m of messages) {
    if (m.kind === "request") {
      if (m.oneWay) out.push(`${name(m)} (one-way)`);
      else queue.push(m);
      continue;
    }
    if (m.unsolicited) {
      out.push(`push ${m.endpoint}`);
      continue;
    }
    const req = queue.shift();
    out.push(`${req ? name(req) : "(orphan)"} -> ${m.status}${m.exception ? `: ${m.exception}` : ""}`);
  }
  for (const r of queue) out.push(`${name(r)} -> (no reply)`);
  return out;
}

const requests = (ms: L7Message[]) => ms.filter((m) => m.kind === "request");
const responses = (ms: L7Message[]) => ms.filter((m) => m.kind === "response");

describe("redis detect()", () => {
  it("is sure of a command array, and only suspects inline commands and replies", () => {
    const set = text("*3\r\n$3\r\nSET\r\n$6\r\nuser:1\r\n$12\r\ns3cret-value\r\n");
    expect(redis.detect(set, undefined)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    expect(redis.detect(set, true)).toEqual({ confidence: Confidence.Sure, fromClient: true });
    expect(redis.detect(text("PING\r\n"), undefined)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    expect(redis.detect(text("get ik\r\n"), true)).toEqual({ confidence: Confidence.Maybe, fromClient: true });
    for (const reply of [
      "+OK\r\n",
      "+PONG\r\n",
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
      "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n",
      ":1\r\n",
      "$12\r\ns3cret-value\r\n",
      "$-1\r\n",
      "*2\r\n$-1\r\n$-1\r\n",
      "%7\r\n$6\r\nserver\r\n",
      ">3\r\n$9\r\nsubscribe\r\n",
      "_\r\n",
      "#t\r\n",
      ",3.141\r\n",
      "(1234567999999999999999999999999999999\r\n",
      "|1\r\n$14\r\nkey-popularity\r\n",
      "=29\r\ntxt:This is a verbatim\nstring\r\n",
    ]) {
      expect(redis.detect(text(reply), false), reply).toEqual({ confidence: Confidence.Maybe, fromClient: false });
      expect(redis.detect(text(reply), true), reply).toEqual({ confidence: Confidence.No });
    }
    // a server's array of bulk strings is a reply when the side is known
    expect(redis.detect(text("*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n"), false).fromClient).toBe(false);
  });

  it("rejects other protocols and noise", () => {
    for (const other of [
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      "HTTP/1.1 200 OK\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
      "*x\r\n",
      "howdy world\r\n",
      "",
      "+",
      "-err lower case\r\n",
      ":12a\r\n",
      "$\r\n",
    ]) {
      expect(redis.detect(text(other), undefined).confidence, JSON.stringify(other)).toBe(Confidence.No);
    }
    // client side: an array whose command is not a word
    expect(redis.detect(text("*2\r\n$3\r\n123\r\n"), true).confidence).toBe(Confidence.No);
  });
});

describe("redis parser on recorded conversations", () => {
  it("redis-cli: commands, keys, errors; no value in any message", () => {
    const ms = runParser(redis, cliSession);
    expect(paired(ms)).toEqual([
      "PING -> ok",
      "SET user:1 -> ok",
      "GET user:1 -> ok",
      "INCR counter -> ok",
      "LPUSH mylist -> ok",
      "GET mylist -> server_error: WRONGTYPE Operation against a key holding the wrong kind of value",
      "DEL user:1 -> ok",
      "GET missing -> ok",
      "CLIENT SETNAME -> ok",
      "CONFIG GET -> ok",
      "FOO -> server_error: ERR unknown command 'FOO', with args beginning with: 'bar' ",
      "MGET a -> ok",
      "EVAL user:1 -> ok",
      "HSET h -> ok",
      "HGETALL h -> ok",
      "EXPIRE h -> ok",
    ]);
    const set = requests(ms)[1] as L7Message;
    expect(set).toMatchObject({
      requestType: "SET",
      endpoint: "SET",
      resource: "user:1",
      version: "2",
      bytes: 44,
      attributes: { "db.system.name": "redis" },
    });
    const wrongType = responses(ms)[5] as L7Message;
    expect(wrongType).toMatchObject({
      status: "server_error",
      bytes: 68,
      attributes: { "db.response.status_code": "WRONGTYPE" },
    });
    expect(requests(ms)[8]).toMatchObject({ requestType: "CLIENT SETNAME", resource: "" });
    // values, the script and the client name never reach a message
    const all = JSON.stringify(ms);
    for (const secret of ["s3cret-value", "redis.call", "kalman", "maxmemory"]) expect(all).not.toContain(secret);
    // sizes add up to the bytes on the wire
    const wire = (fromClient: boolean) =>
      cliSession.filter((c) => c.fromClient === fromClient).reduce((n, c) => n + c.data.length, 0);
    expect(requests(ms).reduce((n, m) => n + m.bytes, 0)).toBe(wire(true));
    expect(responses(ms).reduce((n, m) => n + m.bytes, 0)).toBe(wire(false));
  });

  it("RESP3: every reply type, attributes, a push before its reply", () => {
    const ms = runParser(redis, resp3Types);
    expect(paired(ms)).toEqual([
      "HELLO -> ok",
      "DEBUG PROTOCOL -> ok", // #t
      "DEBUG PROTOCOL -> ok", // #f
      "DEBUG PROTOCOL -> ok", // ,3.141
      "DEBUG PROTOCOL -> ok", // (1234567999...
      "DEBUG PROTOCOL -> ok", // |1 ... then a bulk string
      "DEBUG PROTOCOL -> ok", // =29 txt:...
      "push PUSH", // >2 server-cpu-usage 42
      "DEBUG PROTOCOL -> ok", // ... then its bulk string
      "DEBUG PROTOCOL -> ok", // _
      "DEBUG PROTOCOL -> ok", // %3
      "DEBUG PROTOCOL -> ok", // ~3
      "DEBUG PROTOCOL -> ok", // *3
      "SET k3 -> ok",
      "LPUSH k3 -> server_error: WRONGTYPE Operation against a key holding the wrong kind of value",
      "HELLO -> ok",
      "DEBUG PROTOCOL -> ok",
    ]);
    const reqs = requests(ms);
    expect(reqs.map((m) => m.version).join("")).toBe("33333333333333" + "22"); // until HELLO 2
    // the attribute and the reply it decorates are one message (93 bytes); the push is its own (26 bytes)
    const resps = responses(ms);
    expect(resps[5]?.bytes).toBe(93);
    expect(resps[6]?.bytes).toBe(36);
    expect(resps[7]).toMatchObject({ unsolicited: true, bytes: 32, endpoint: "PUSH" });
    expect(resps[8]?.bytes).toBe(47);
  });

  it("pub/sub (RESP2): confirmations answer their command, deliveries are unsolicited", () => {
    const ms = runParser(redis, subscriber);
    expect(paired(ms)).toEqual([
      "SUBSCRIBE -> ok",
      "push MESSAGE",
      "PSUBSCRIBE -> ok",
      "push PMESSAGE",
      "push MESSAGE",
      "PING -> ok",
      "UNSUBSCRIBE -> ok",
      "PUNSUBSCRIBE -> ok",
      "PING -> ok",
    ]);
    const resps = responses(ms);
    expect(resps[0]?.bytes).toBe(64); // both confirmations of SUBSCRIBE ch1 ch2
    expect(resps[6]?.bytes).toBe(70); // UNSUBSCRIBE (all): two confirmations
    expect(JSON.stringify(ms)).not.toContain("hello");
    expect(paired(runParser(redis, publisher))).toEqual(["PUBLISH -> ok"]);
  });

  it("pub/sub and tracking (RESP3): push confirmations pair, deliveries and invalidations do not", () => {
    const ms = runParser(redis, resp3Subscriber);
    expect(paired(ms)).toEqual([
      "HELLO -> ok",
      "SUBSCRIBE -> ok",
      "push MESSAGE",
      "PING -> ok",
      "UNSUBSCRIBE -> ok",
      "CLIENT TRACKING -> ok",
      "GET tk -> ok",
      "PING -> ok",
      "push INVALIDATE",
    ]);
    expect(responses(ms).every((m) => m.version === "3")).toBe(true);
  });

  it("MONITOR: the feed is unsolicited and its contents never recorded; RESET ends it", () => {
    const ms = runParser(redis, monitor);
    expect(paired(ms)).toEqual(["MONITOR -> ok", "push MONITOR", "RESET -> ok", "PING -> ok"]);
    expect(JSON.stringify(ms)).not.toContain("topsecret");
  });

  it("CLIENT REPLY OFF/SKIP: commands without replies are one-way, pairing stays aligned", () => {
    const ms = runParser(redis, clientReply);
    expect(paired(ms)).toEqual([
      "CLIENT REPLY (one-way)",
      "SET a (one-way)",
      "CLIENT REPLY (one-way)",
      "SET b (one-way)",
      "CLIENT REPLY -> ok",
      "GET a -> ok",
      "GET b -> ok",
    ]);
    // pipelined in one write: tcpSeq is the chunk's plus each command's offset
    const seqs = requests(ms).map((m) => (m.tcpSeq as number) - 1000);
    expect(seqs).toEqual([0, 36, 63, 98, 118, 155, 182]);
  });

  it("passwords and other arguments never reach a message", () => {
    const ms = runParser(redis, secrets);
    expect(paired(ms)).toEqual([
      "AUTH -> ok",
      "ACL SETUSER -> ok",
      "CONFIG SET -> ok",
      "AUTH -> ok",
      "CONFIG SET -> ok",
      "ECHO -> ok",
    ]);
    const all = JSON.stringify(ms);
    for (const secret of ["wrongpass", "alice", "topsecretpw", "requirepass", "echo-secret"]) {
      expect(all).not.toContain(secret);
    }
  });

  it("MULTI/EXEC: queued replies pair in order; an error inside EXEC does not fail it", () => {
    expect(paired(runParser(redis, transaction))).toEqual([
      "MULTI -> ok",
      "SET a -> ok",
      "INCR a -> ok",
      "LPUSH a -> ok",
      "EXEC -> ok",
      "DEL a -> ok",
    ]);
  });

  it("inline commands: words, any case, empty lines ignored", () => {
    const ms = runParser(redis, inline);
    expect(paired(ms)).toEqual([
      "PING -> ok",
      "SET ik -> ok",
      "GET ik -> ok",
      "EXISTS ik -> ok",
      "NOSUCH -> server_error: ERR unknown command 'NOSUCH', with args beginning with: 'x' ",
    ]);
    expect(requests(ms).map((m) => m.bytes)).toEqual([6, 11, 8, 11, 10]);
  });

  it("redis-benchmark -P 16: every pipelined command and reply", () => {
    const ms = runParser(redis, [...benchConfig, ...benchSet, ...benchGet]);
    const lines = paired(ms);
    expect(lines).toEqual([
      "CONFIG GET -> ok",
      "CONFIG GET -> ok",
      ...Array<string>(16).fill("SET key:__rand_int__ -> ok"),
      ...Array<string>(16).fill("GET key:__rand_int__ -> ok"),
    ]);
    expect(requests(ms)[2]?.bytes).toBe(45);
    expect(responses(ms)[2]?.bytes).toBe(5);
    expect(JSON.stringify(ms)).not.toContain("VXK");
  });

  it("COMMAND DOCS: a 172 KB nested reply (RESP2 and RESP3) is one message", () => {
    const resp2 = runParser(redis, loadFixture("redis-cli-resp2.json.gz"));
    expect(paired(resp2).slice(0, 3)).toEqual(["COMMAND DOCS -> ok", "PING -> ok", "SET user:1 -> ok"]);
    expect(responses(resp2)[0]?.bytes).toBe(172298);
    expect(paired(resp2)).toHaveLength(17);
    const resp3 = runParser(redis, loadFixture("redis-cli-resp3.json.gz"));
    expect(paired(resp3)).toEqual([
      "HELLO -> ok",
      "COMMAND DOCS -> ok",
      "HSET h3 -> ok",
      "HGETALL h3 -> ok",
      "SADD s3 -> ok",
      "SMEMBERS s3 -> ok",
      "ZADD z3 -> ok",
      "ZSCORE z3 -> ok",
      "GET nokey3 -> ok",
      "DEBUG PROTOCOL -> ok",
    ]);
    expect(responses(resp3)[1]?.bytes).toBe(171916);
  });

  it("big values: whole, and cut by a 1024-byte capture", () => {
    // the client's writes as one chunk each (segments of one write joined)
    const whole = joinSides(loadFixture("big-values.json.gz"));
    const expected = [
      "SET bigkey -> ok",
      "GET bigkey -> ok",
      "PING -> ok",
      "RPUSH biglist -> ok",
      "LRANGE biglist -> ok",
      "PING -> ok",
    ];
    const full = runParser(redis, whole);
    expect(paired(full)).toEqual(expected);
    expect(requests(full)[0]?.bytes).toBe(100036);
    expect(responses(full)[1]?.bytes).toBe(100011);

    const cut = runParser(redis, truncate(whole, 1024));
    // known lengths are skipped exactly; the LRANGE reply loses its place, so the PING answered
    // in the same write is reported as unknown rather than paired with a wrong reply
    expect(paired(cut)).toEqual([...expected.slice(0, 5), "PING -> unknown"]);
    expect(requests(cut).map((m) => m.bytes)).toEqual(requests(full).map((m) => m.bytes));
    expect(requests(cut)[0]?.attributes).toEqual({ "db.system.name": "redis", "kalman.truncated": true });
    expect(responses(cut)[1]).toMatchObject({ bytes: 100011, status: "ok", attributes: { "kalman.truncated": true } });
    expect(responses(cut)[4]).toMatchObject({ bytes: 43904, status: "ok" });
  });

  it("COMMAND DOCS cut by the capture: the reply is ended, its continuation skipped, then in step again", () => {
    // the server wrote the reply in several writes; each is captured to 1024 bytes
    const chunks = truncate(loadFixture("redis-cli-resp2.json.gz"), 1024);
    const session = redis.createSession({ redact: true, maxBufferBytes: 64 * 1024 });
    const ms: L7Message[] = [];
    chunks.forEach((c, i) => {
      const meta = { startNs: i, endNs: i, tcpSeq: 0, seqValid: false, tid: 1 };
      session.feed(c.fromClient, c.data, c.missing ?? 0, meta, (m) => ms.push(structuredClone(m)));
    });
    const lines = paired(ms);
    expect(lines[0]).toBe("COMMAND DOCS -> ok");
    expect(lines.slice(1)).toEqual(paired(runParser(redis, cliSession)));
    expect(session.stats.resyncBytes).toBeGreaterThan(100_000);
    expect(session.stats.malformed).toBe(0);
  });
});

describe("redis parser: gaps, errors and bounds", () => {
  // recorded redis-cli chunks: [0] PING, [1] +PONG, [2] SET user:1 ..., [3] +OK, [4] GET user:1, [5] its value
  const [ping, pong, set, ok, get, value] = cliSession.map((c) => c.data) as Uint8Array[];

  it("a gap between replies: the requests waiting are answered 'unknown', later ones pair again", () => {
    const ms = runParser(redis, [
      { fromClient: true, data: get },
      { fromClient: true, data: get },
      { fromClient: false, data: new Uint8Array(0), missing: 2 * value.length },
      { fromClient: true, data: ping },
      { fromClient: false, data: pong },
    ]);
    expect(paired(ms)).toEqual(["GET user:1 -> unknown", "GET user:1 -> unknown", "PING -> ok"]);
  });

  it("a gap inside a command: the command is ended there, the next one parses", () => {
    const ms = runParser(redis, [
      { fromClient: true, data: set.subarray(0, 20), missing: 10 }, // cut inside the key
      { fromClient: true, data: set.subarray(30) },
      { fromClient: true, data: get },
      { fromClient: false, data: ok },
      { fromClient: false, data: value },
    ]);
    expect(paired(ms)).toEqual(["SET -> ok", "GET user:1 -> ok"]);
    // it ends with the gap: the bytes after it were skipped while resynchronising
    expect(requests(ms)[0]).toMatchObject({ bytes: 30, attributes: { "kalman.truncated": true } });
  });

  it("malformed input is counted and skipped", () => {
    const session = redis.createSession({ redact: true, maxBufferBytes: 4096 });
    const out: L7Message[] = [];
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 1 };
    const feed = (fromClient: boolean, s: string) => session.feed(fromClient, text(s), 0, meta, (m) => out.push(m));
    feed(true, "*2\r\n$3\r\nGET\r\n:5\r\n"); // an integer where a bulk string must be
    feed(true, "*1\r\n$4\r\nPING\r\n");
    feed(false, "?what\r\n");
    feed(false, "+PONG\r\n");
    expect(session.stats.malformed).toBe(2);
    expect(session.stats.resyncBytes).toBeGreaterThan(0);
    expect(paired(out)).toEqual(["PING -> unknown"]);
    feed(true, "*1\r\n$4\r\nPING\r\n");
    feed(false, "+PONG\r\n");
    expect(paired(out)).toEqual(["PING -> unknown", "PING -> ok"]);
  });

  it("nesting deeper than 32 is malformed; long lines stay within the buffer bound", () => {
    const session = redis.createSession({ redact: true, maxBufferBytes: 4096 });
    const meta = { startNs: 0, endNs: 0, tcpSeq: 0, seqValid: false, tid: 1 };
    const emit = () => {};
    session.feed(true, text("*1\r\n$4\r\nPING\r\n"), 0, meta, emit);
    session.feed(false, text("*1\r\n".repeat(40)), 0, meta, emit);
    expect(session.stats.malformed).toBe(1);
    session.feed(true, text(`SET k ${"v".repeat(60_000)}`), 0, meta, emit);
    expect(session.buffered()).toBeLessThanOrEqual(4096);
    session.feed(false, text(`+${"x".repeat(100_000)}`), 0, meta, emit);
    expect(session.buffered()).toBeLessThanOrEqual(8192);
  });

  it("confirmations still expected when the connection closes: the reply is emitted at close", () => {
    const confirmations = subscriber[1]?.data as Uint8Array;
    const ms = runParser(redis, [subscriber[0] as Chunk, { fromClient: false, data: confirmations.subarray(0, 32) }]);
    expect(paired(ms)).toEqual(["SUBSCRIBE -> ok"]);
    expect(responses(ms)[0]?.bytes).toBe(32);
  });

  it("pending requests are bounded; replies past the bound still parse", () => {
    const get = benchGet[0]?.data as Uint8Array; // 16 pipelined GETs
    const reply = benchGet[1]?.data as Uint8Array;
    const chunks: Chunk[] = [];
    for (let i = 0; i < 100; i++) chunks.push({ fromClient: true, data: get });
    for (let i = 0; i < 100; i++) chunks.push({ fromClient: false, data: reply });
    const ms = runParser(redis, chunks);
    expect(requests(ms)).toHaveLength(1600);
    expect(responses(ms)).toHaveLength(1600);
    expect(responses(ms).every((m) => m.status === "ok" && !m.unsolicited)).toBe(true);
  });

  it("RESP3 blob errors (spec example, Redis 7 sends none) are server errors", () => {
    // from the RESP3 specification: "!21\r\nSYNTAX invalid syntax\r\n"
    const ms = runParser(redis, [
      { fromClient: true, data: text("*1\r\n$4\r\nPING\r\n") },
      { fromClient: false, data: text("!21\r\nSYNTAX invalid syntax\r\n") },
    ]);
    expect(responses(ms)[0]).toMatchObject({
      status: "server_error",
      exception: "SYNTAX invalid syntax",
      attributes: { "db.response.status_code": "SYNTAX" },
    });
  });
});

describe("redis parser: harness checks on every fixture", () => {
  for (const [name, chunks] of Object.entries(SMALL_FIXTURES)) {
    it(`${name}: same messages split anywhere, byte by byte, and for every prefix`, () => {
      checkSplitsEverywhere(redis, chunks);
      checkByteByByte(redis, chunks);
      checkEveryPrefix(redis, chunks);
    });
  }

  it("big and truncated fixtures: split anywhere, byte by byte", () => {
    checkSplitsEverywhere(redis, truncate(joinSides(loadFixture("big-values.json.gz")), 1024));
    checkSplitsEverywhere(redis, truncate(loadFixture("redis-cli-resp2.json.gz"), 1024));
    checkByteByByte(redis, loadFixture("redis-cli-resp3.json.gz"));
  });

  it("random and mutated input: no throw, bounded, deterministic", () => {
    checkFuzz(redis, [...Object.values(SMALL_FIXTURES), truncate(joinSides(loadFixture("big-values.json.gz")), 512)]);
  });
});
