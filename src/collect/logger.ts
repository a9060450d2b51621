export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const ORDER = { debug: 0, info: 1, warn: 2, error: 3 } as const;
export type LogLevel = keyof typeof ORDER;

/**
 * Structured logs on stderr (stdout is for data): logfmt by default, one JSON object per line with
 * `json`, so a log shipper can parse either.
 */
export function createLogger(
  options: { level?: LogLevel; format?: 'text' | 'json'; out?: NodeJS.WritableStream } = {},
): Logger {
  const min = ORDER[options.level ?? 'info'];
  const out = options.out ?? process.stderr;
  const json = options.format === 'json';
  const write = (level: LogLevel, message: string, fields: LogFields = {}): void => {
    if (ORDER[level] < min) return;
    const ts = new Date().toISOString();
    if (json) {
      out.write(`${JSON.stringify({ ts, level, msg: message, ...fields })}\n`);
      return;
    }
    let line = `ts=${ts} level=${level} msg=${quote(message)}`;
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
    out.write(`${line}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

function quote(s: string): string {
  return /^[\w./:@+-]+$/.test(s) ? s : JSON.stringify(s);
}

/** A logger that keeps lines in memory, for tests. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec =
    (level: LogLevel) =>
    (m: string, f: LogFields = {}): void => {
      lines.push(`${level} ${m} ${JSON.stringify(f)}`);
    };
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}
