import type { ProtocolParser } from "../parser.js";
import { detectMysql } from "./detect.js";
import { MysqlSession } from "./parser.js";

/** MySQL/MariaDB client protocol: text and binary (prepared) queries, result sets, pipelining. */
export const mysql: ProtocolParser = {
  name: "mysql",
  transports: ["tcp"],
  ports: [3306],
  detect: (data, fromClient) => detectMysql(data, fromClient),
  createSession: (options) => new MysqlSession(options),
};
