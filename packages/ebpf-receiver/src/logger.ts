/** Minimal structured logger. Libraries take one; the default writes to stderr. */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Logger writing `level name: msg k=v` lines to stderr, filtered by KALMAN_LOG_LEVEL (default warn). */
export function createStderrLogger(name: string, level?: LogLevel): Logger {
  const envLevel = process.env.KALMAN_LOG_LEVEL as LogLevel | undefined;
  const min = RANK[level ?? (envLevel && envLevel in RANK ? envLevel : "warn")];
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < min) return;
    let line = `${lvl} ${name}: ${msg}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) line += ` ${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
    }
    process.stderr.write(`${line}\n`);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
