// Redis command table: which argument is the key, which commands take a subcommand.

/** What a command's reply means for the session (pub/sub confirmations, MONITOR, RESET). */
export const Pending = {
  Plain: 0,
  Subscribe: 1,
  Unsubscribe: 2,
  PSubscribe: 3,
  PUnsubscribe: 4,
  SSubscribe: 5,
  SUnsubscribe: 6,
  Monitor: 7,
  Reset: 8,
} as const;
export type Pending = (typeof Pending)[keyof typeof Pending];

export const Special = {
  None: 0,
  /** HELLO protover: switches RESP2/RESP3. */
  Hello: 1,
  /** CLIENT REPLY ON|OFF|SKIP: turns replies off. */
  Client: 2,
  /** EVAL script numkeys key ...: the key follows numkeys (arg 2). */
  NumKeysAt2: 3,
} as const;
export type Special = (typeof Special)[keyof typeof Special];

export interface CommandInfo {
  /** Upper-case name, as records show it. */
  readonly name: string;
  readonly upper: Uint8Array;
  /** Argument index of the (first) key; 0 when the command has none. */
  readonly keyAt: number;
  /** Takes a subcommand (CLIENT SETNAME, CONFIG GET): the request type is both words. */
  readonly container: boolean;
  /** Subcommands whose key is argument 2 (OBJECT ENCODING key). */
  readonly subKeys: ReadonlySet<string> | undefined;
  readonly pending: Pending;
  readonly special: Special;
  /** Next entry with the same hash. */
  next: CommandInfo | undefined;
}

// Commands whose first argument is a key (COMMAND INFO first-key = 1 on Redis 7.0, plus 7.4/8.0 hash-field ones).
const KEY_FIRST =
  "APPEND BITCOUNT BITFIELD BITFIELD_RO BITPOS BLMOVE BLPOP BRPOP BRPOPLPUSH BZPOPMAX BZPOPMIN COPY DECR DECRBY DEL " +
  "DUMP EXISTS EXPIRE EXPIREAT EXPIRETIME GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUSBYMEMBER " +
  "GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH GEOSEARCHSTORE GET GETBIT GETDEL GETEX GETRANGE GETSET HDEL HEXISTS " +
  "HGET HGETALL HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN HVALS INCR INCRBY " +
  "INCRBYFLOAT LCS LINDEX LINSERT LLEN LMOVE LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET LTRIM MGET MOVE MSET MSETNX " +
  "PERSIST PEXPIRE PEXPIREAT PEXPIRETIME PFADD PFCOUNT PFMERGE PSETEX PTTL RENAME RENAMENX RESTORE RESTORE-ASKING " +
  "RPOP RPOPLPUSH RPUSH RPUSHX SADD SCARD SDIFF SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SINTER SINTERSTORE " +
  "SISMEMBER SMEMBERS SMISMEMBER SMOVE SORT SORT_RO SPOP SPUBLISH SRANDMEMBER SREM SSCAN STRLEN SUBSTR SUNION " +
  "SUNIONSTORE TOUCH TTL TYPE UNLINK WATCH XACK XADD XAUTOCLAIM XCLAIM XDEL XLEN XPENDING XRANGE XREVRANGE XSETID " +
  "XTRIM ZADD ZCARD ZCOUNT ZDIFFSTORE ZINCRBY ZINTERSTORE ZLEXCOUNT ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE " +
  "ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE " +
  "ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNIONSTORE " +
  "HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT HTTL HPTTL HEXPIRETIME HPEXPIRETIME HPERSIST HGETDEL HGETEX HSETEX";

// Key after an operation or numkeys argument.
const KEY_SECOND = "BITOP ZDIFF ZINTER ZUNION SINTERCARD ZINTERCARD LMPOP ZMPOP";
const KEY_THIRD = "BLMPOP BZMPOP MIGRATE";
const NUMKEYS_AT_2 = "EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO";

// Commands without a key.
const NO_KEY =
  "ASKING AUTH BGREWRITEAOF BGSAVE DBSIZE DISCARD ECHO EXEC FAILOVER FLUSHALL FLUSHDB INFO KEYS LASTSAVE LOLWUT " +
  "MULTI PFSELFTEST PING PSYNC PUBLISH QUIT RANDOMKEY READONLY READWRITE REPLCONF REPLICAOF ROLE SAVE SCAN SELECT " +
  "SHUTDOWN SLAVEOF SWAPDB SYNC TIME UNWATCH WAIT XREAD XREADGROUP PFDEBUG";

const CONTAINERS = "ACL CLUSTER COMMAND CONFIG FUNCTION LATENCY MODULE PUBSUB SCRIPT SLOWLOG";

const table = new Map<number, CommandInfo>();

/** Hash of the upper-cased bytes [start, end) (FNV-1a). */
function hashUpper(b: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let c = b[i] as number;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

function add(
  name: string,
  keyAt: number,
  opts: { container?: boolean; subKeys?: string; pending?: Pending; special?: Special } = {},
): void {
  const upper = Uint8Array.from(name, (c) => c.charCodeAt(0));
  const info: CommandInfo = {
    name,
    upper,
    keyAt,
    container: opts.container ?? false,
    subKeys: opts.subKeys ? new Set(opts.subKeys.split(" ")) : undefined,
    pending: opts.pending ?? Pending.Plain,
    special: opts.special ?? Special.None,
    next: undefined,
  };
  const h = hashUpper(upper, 0, upper.length);
  info.next = table.get(h);
  table.set(h, info);
}

for (const n of KEY_FIRST.split(" ")) add(n, 1);
for (const n of KEY_SECOND.split(" ")) add(n, 2);
for (const n of KEY_THIRD.split(" ")) add(n, 3);
for (const n of NUMKEYS_AT_2.split(" ")) add(n, 0, { special: Special.NumKeysAt2 });
for (const n of NO_KEY.split(" ")) add(n, 0);
for (const n of CONTAINERS.split(" ")) add(n, 0, { container: true });
add("CLIENT", 0, { container: true, special: Special.Client });
add("DEBUG", 0, { container: true, subKeys: "OBJECT DIGEST-VALUE" });
add("OBJECT", 0, { container: true, subKeys: "ENCODING FREQ IDLETIME REFCOUNT" });
add("MEMORY", 0, { container: true, subKeys: "USAGE" });
add("XINFO", 0, { container: true, subKeys: "STREAM GROUPS CONSUMERS" });
add("XGROUP", 0, { container: true, subKeys: "CREATE SETID DESTROY CREATECONSUMER DELCONSUMER" });
add("HELLO", 0, { special: Special.Hello });
add("SUBSCRIBE", 0, { pending: Pending.Subscribe });
add("UNSUBSCRIBE", 0, { pending: Pending.Unsubscribe });
add("PSUBSCRIBE", 0, { pending: Pending.PSubscribe });
add("PUNSUBSCRIBE", 0, { pending: Pending.PUnsubscribe });
add("SSUBSCRIBE", 1, { pending: Pending.SSubscribe });
add("SUNSUBSCRIBE", 1, { pending: Pending.SUnsubscribe });
add("MONITOR", 0, { pending: Pending.Monitor });
add("RESET", 0, { pending: Pending.Reset });

/** Longest command name looked up. */
export const MAX_COMMAND_LENGTH = 24;

/** The command spelled (any case) by bytes [start, end), or undefined. Allocation-free. */
export function lookupCommand(b: Uint8Array, start: number, end: number): CommandInfo | undefined {
  const len = end - start;
  if (len <= 0 || len > MAX_COMMAND_LENGTH) return undefined;
  for (let info = table.get(hashUpper(b, start, end)); info; info = info.next) {
    const u = info.upper;
    if (u.length !== len) continue;
    let same = true;
    for (let i = 0; i < len; i++) {
      let c = b[start + i] as number;
      if (c >= 0x61 && c <= 0x7a) c -= 0x20;
      if (c !== u[i]) {
        same = false;
        break;
      }
    }
    if (same) return info;
  }
  return undefined;
}
