/** Where the bridge reports what goes wrong (and, if wanted, what goes right). No console in library code. */
export interface Logger {
  warn(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  debug?(msg: string, fields?: object): void;
}

/** Default logger: warnings only, one line each, to stderr. */
export const stderrWarnLogger: Logger = {
  warn(msg, fields) {
    process.stderr.write(`[kalman otlp-bridge] WARN ${msg}${fields ? ` ${safeJson(fields)}` : ""}\n`);
  },
  info() {},
};

function safeJson(fields: object): string {
  try {
    return JSON.stringify(fields);
  } catch {
    return "{}";
  }
}
