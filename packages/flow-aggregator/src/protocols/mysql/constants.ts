// Wire codes of the MySQL/MariaDB client protocol.

/** Command byte: first payload byte of a client packet with sequence id 0. */
export enum Command {
  Quit = 0x01,
  InitDb = 0x02,
  Query = 0x03,
  FieldList = 0x04,
  CreateDb = 0x05,
  DropDb = 0x06,
  Refresh = 0x07,
  Shutdown = 0x08,
  Statistics = 0x09,
  ProcessInfo = 0x0a,
  ProcessKill = 0x0c,
  Debug = 0x0d,
  Ping = 0x0e,
  ChangeUser = 0x11,
  BinlogDump = 0x12,
  RegisterSlave = 0x15,
  StmtPrepare = 0x16,
  StmtExecute = 0x17,
  StmtSendLongData = 0x18,
  StmtClose = 0x19,
  StmtReset = 0x1a,
  SetOption = 0x1b,
  StmtFetch = 0x1c,
  BinlogDumpGtid = 0x1e,
  ResetConnection = 0x1f,
  StmtBulkExecute = 0xfa,
}

/** Record names of the commands a client sends (undefined: not a client command). */
export const COMMAND_NAMES: ReadonlyArray<string | undefined> = (() => {
  const names: Array<string | undefined> = new Array(256).fill(undefined);
  const set = (c: number, name: string) => {
    names[c] = name;
  };
  set(Command.Quit, "QUIT");
  set(Command.InitDb, "INIT_DB");
  set(Command.Query, "QUERY");
  set(Command.FieldList, "FIELD_LIST");
  set(Command.CreateDb, "CREATE_DB");
  set(Command.DropDb, "DROP_DB");
  set(Command.Refresh, "REFRESH");
  set(Command.Shutdown, "SHUTDOWN");
  set(Command.Statistics, "STATISTICS");
  set(Command.ProcessInfo, "PROCESS_INFO");
  set(Command.ProcessKill, "PROCESS_KILL");
  set(Command.Debug, "DEBUG");
  set(Command.Ping, "PING");
  set(Command.ChangeUser, "CHANGE_USER");
  set(Command.BinlogDump, "BINLOG_DUMP");
  set(Command.RegisterSlave, "REGISTER_SLAVE");
  set(Command.StmtPrepare, "PREPARE");
  set(Command.StmtExecute, "EXECUTE");
  set(Command.StmtSendLongData, "STMT_SEND_LONG_DATA");
  set(Command.StmtClose, "STMT_CLOSE");
  set(Command.StmtReset, "STMT_RESET");
  set(Command.SetOption, "SET_OPTION");
  set(Command.StmtFetch, "STMT_FETCH");
  set(Command.BinlogDumpGtid, "BINLOG_DUMP_GTID");
  set(Command.ResetConnection, "RESET_CONNECTION");
  set(Command.StmtBulkExecute, "BULK_EXECUTE");
  return names;
})();

/** Capability flags (handshake). */
export const Capability = {
  /** CLIENT_LONG_PASSWORD; a MariaDB server leaves it unset and sends extended capabilities. */
  Mysql: 0x0000_0001,
  ConnectWithDb: 0x0000_0008,
  Compress: 0x0000_0020,
  Protocol41: 0x0000_0200,
  Ssl: 0x0000_0800,
  SecureConnection: 0x0000_8000,
  PluginAuthLenencData: 0x0020_0000,
  DeprecateEof: 0x0100_0000,
  OptionalResultsetMetadata: 0x0200_0000,
  ZstdCompression: 0x0400_0000,
} as const;

/** Server status flags (OK and EOF packets). */
export const ServerStatus = {
  MoreResultsExist: 0x0008,
} as const;

/** First payload byte of server packets. */
export enum Header {
  Ok = 0x00,
  AuthMoreData = 0x01,
  HandshakeV10 = 0x0a,
  LocalInfile = 0xfb,
  Eof = 0xfe,
  Err = 0xff,
}

/** ERR packet code of a MariaDB progress report (not an error). */
export const PROGRESS_REPORT = 0xffff;
/** Payload length of a packet continued by the next one (messages ≥ 16 MiB). */
export const MAX_PACKET_PAYLOAD = 0xff_ffff;
/** Statement id meaning "the statement prepared last" (MariaDB pipelining). */
export const LAST_PREPARED_STATEMENT = 0xffff_ffff;
/** Columns a result set may have (MySQL's limit). */
export const MAX_COLUMNS = 4096;
