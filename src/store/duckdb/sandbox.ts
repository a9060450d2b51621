/**
 * User SQL (`kaudit query`, the API's sql route) over the `events` view, run where it can do no
 * harm whatever its text says. The settings that make it so are the DuckDB instance's, which the
 * store's own reads and writes share, so they are set once at open (lockDown), after every
 * connection the store keeps is set up and before anything user-supplied runs:
 * - `allowed_directories` = the store's private staging directory (writable opens) and its spill
 *   directory, then `enable_external_access = false`: no other file can be read or written
 *   (read_text, read_csv, glob, COPY ... TO, ATTACH all refused), no extension installed or loaded;
 * - `autoinstall_known_extensions` and `autoload_known_extensions` off;
 * - `lock_configuration = true`: no SET can undo any of it.
 * Each statement is also classified by DuckDB's own parser: one SELECT, or EXPLAIN of a SELECT
 * (EXPLAIN ANALYZE runs its statement). Rows are capped and a slow statement is interrupted.
 */
import type { DuckDBConnection, DuckDBResultReader } from '@duckdb/node-api';
import { UserError } from '../../model/errors.js';
import type { Row, SqlOptions, SqlResult } from '../contract.js';
import { DuckDBTypeId, StatementType } from './node-api.js';
import { normalizeRow } from './read.js';
import { sqlString } from './schema.js';

/** The instance-wide settings above; `spillDir` is also where queries larger than memory spill. */
export async function lockDown(
  conn: DuckDBConnection,
  spillDir: string,
  stagingDir: string | null,
): Promise<void> {
  const dirs = [spillDir, ...(stagingDir === null ? [] : [stagingDir])];
  await conn.run(`SET temp_directory = ${sqlString(spillDir)}`);
  await conn.run(`SET allowed_directories = [${dirs.map((d) => sqlString(`${d}/`)).join(', ')}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET autoinstall_known_extensions = false');
  await conn.run('SET autoload_known_extensions = false');
  await conn.run('SET lock_configuration = true');
}

const INTEGER_TYPES = new Set([
  DuckDBTypeId.BIGINT,
  DuckDBTypeId.UBIGINT,
  DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UHUGEINT,
]);

/** JSON-ready rows; 64-bit integers (count(*), sums) become numbers when they fit exactly. */
function toQueryResult(reader: DuckDBResultReader): { columns: string[]; rows: Row[] } {
  const columns = reader.columnNames();
  const types = reader.columnTypes();
  const big = columns.filter((_c, i) => INTEGER_TYPES.has(types[i]?.typeId ?? DuckDBTypeId.INVALID));
  const rows = (reader.getRowObjectsJson() as Row[]).map(normalizeRow);
  if (big.length > 0) {
    for (const row of rows) {
      for (const c of big) {
        const v = row[c];
        if (typeof v === 'string' && Number.isSafeInteger(Number(v))) row[c] = Number(v);
      }
    }
  }
  return { columns, rows };
}

/** The statement's kind as DuckDB's parser sees it (one statement only). */
async function statementKind(conn: DuckDBConnection, text: string): Promise<string> {
  try {
    const stmts = await conn.extractStatements(text);
    if (stmts.count !== 1)
      throw new UserError('KAUDIT_QUERY_INVALID', `expected one SQL statement, got ${stmts.count}`);
    const prepared = await stmts.prepare(0);
    return StatementType[prepared.statementType] ?? 'UNKNOWN';
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError('KAUDIT_QUERY_INVALID', `SQL error: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * User SQL on `conn`, the connection kept for it (so interrupting it stops no one else's query);
 * `parse` is any other connection, for classifying the statement. One statement at a time.
 */
export class SandboxedSql {
  private turn: Promise<void> = Promise.resolve();

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly parse: DuckDBConnection,
  ) {}

  async run(text: string, options: SqlOptions): Promise<SqlResult> {
    const body = text.trim().replace(/;\s*$/, '');
    const kind = await statementKind(this.parse, body);
    if (kind === 'EXPLAIN') {
      // EXPLAIN ANALYZE runs its statement: the statement inside must itself be a SELECT.
      const inner = body.replace(/^\s*EXPLAIN\s+(ANALYZE\s+|\(\s*[^)]*\)\s*)?/i, '');
      if (inner !== body && (await statementKind(this.parse, inner)) !== 'SELECT')
        throw new UserError(
          'KAUDIT_QUERY_READONLY',
          'only read-only queries are allowed: EXPLAIN of a statement that writes',
          {
            hint: 'query the `events` view with SELECT',
          },
        );
    } else if (kind !== 'SELECT') {
      throw new UserError(
        'KAUDIT_QUERY_READONLY',
        `only read-only queries are allowed (got a ${kind} statement)`,
        {
          hint: 'query the `events` view with SELECT',
        },
      );
    }
    const previous = this.turn;
    let done: () => void = () => undefined;
    this.turn = new Promise<void>((resolve) => {
      done = resolve;
    });
    await previous;
    const conn = this.conn;
    const timer = setTimeout(() => conn.interrupt(), options.timeoutMs);
    try {
      const wrapped =
        kind === 'SELECT'
          ? `SELECT * FROM (${body}) LIMIT ${Math.max(0, Math.floor(options.maxRows)) + 1}`
          : body;
      const r = toQueryResult(await conn.runAndReadAll(wrapped));
      const truncated = r.rows.length > options.maxRows;
      return { columns: r.columns, rows: truncated ? r.rows.slice(0, options.maxRows) : r.rows, truncated };
    } catch (err) {
      if (err instanceof UserError) throw err;
      const msg = (err as Error).message;
      if (/INTERRUPT/i.test(msg))
        throw new UserError(
          'KAUDIT_QUERY_TIMEOUT',
          `the query ran longer than ${options.timeoutMs} ms and was stopped`,
          {
            hint: 'narrow it with WHERE ts >= ..., or aggregate',
          },
        );
      throw new UserError('KAUDIT_QUERY_FAILED', `query failed: ${msg}`, { cause: err });
    } finally {
      clearTimeout(timer);
      done();
    }
  }
}
