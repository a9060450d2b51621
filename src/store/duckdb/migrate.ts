/**
 * Brings a file's table to the current layout (schema.ts SCHEMA_VERSION) when it is opened for
 * writing: an older table is copied into a new one, which then takes its place, in one transaction
 * (a crash leaves the old table whole). Opened read-only, nothing is written: an older table is read
 * through a temporary view that shows it in the current layout.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import {
  CREATE_META,
  createTable,
  createView,
  currentColumnsFrom,
  FAILED_EVENTS_VIEW,
  layoutOf,
  SCHEMA_VERSION,
  TABLE_COLUMNS,
  type TableShape,
} from './schema.js';

export const CATALOG = 'kaudit';

/** The shape of the file's audit_events table; null when it has none. */
export async function readShape(conn: DuckDBConnection): Promise<TableShape | null> {
  const columns = await conn.runAndReadAll(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = '${CATALOG}' AND table_schema = 'main' AND table_name = 'audit_events'`,
  );
  const types = new Map(columns.getRows().map(([name, type]) => [String(name), String(type)]));
  if (types.size === 0) return null;
  return {
    rawIsBlob: types.get('raw') === 'BLOB',
    storesDerived: types.has('subject'),
    storesDecisionSource: types.has('decision_source'),
    splitsRaw: types.has('raw_failed'),
  };
}

export interface PreparedTable {
  /** The layout the file had when opened (SCHEMA_VERSION for a new one). */
  openedLayout: number;
  /** Rows copied by a migration; 0 when none ran. */
  migratedRows: number;
}

/** Creates or migrates the table and the view of a file opened for writing. */
export async function prepareTable(conn: DuckDBConnection): Promise<PreparedTable> {
  const shape = await readShape(conn);
  if (shape === null) {
    await inTransaction(conn, async () => {
      await conn.run(CREATE_META);
      await conn.run(createTable('audit_events'));
      await conn.run(createView());
      await setLayout(conn);
    });
    return { openedLayout: SCHEMA_VERSION, migratedRows: 0 };
  }
  const layout = layoutOf(shape);
  if (layout < SCHEMA_VERSION) return { openedLayout: layout, migratedRows: await migrate(conn, shape) };
  // A file of this layout made by another build may lack the view, or have an older one.
  await conn.run(CREATE_META);
  await conn.run(createView());
  const meta = await conn.runAndReadAll("SELECT value FROM kaudit_meta WHERE key = 'schema_version'");
  if (String(meta.getRows()[0]?.[0] ?? '') !== String(SCHEMA_VERSION)) await setLayout(conn);
  return { openedLayout: layout, migratedRows: 0 };
}

async function inTransaction(conn: DuckDBConnection, fn: () => Promise<void>): Promise<void> {
  await conn.run('BEGIN TRANSACTION');
  try {
    await fn();
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

async function setLayout(conn: DuckDBConnection): Promise<void> {
  await conn.run(
    `INSERT INTO kaudit_meta VALUES ('schema_version', '${SCHEMA_VERSION}') ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  );
}

/** Copies an older table into the current layout and swaps it in, in one transaction. */
async function migrate(conn: DuckDBConnection, shape: TableShape): Promise<number> {
  let copied = 0;
  await inTransaction(conn, async () => {
    await conn.run(CREATE_META);
    await conn.run('DROP VIEW IF EXISTS events');
    await conn.run(`DROP VIEW IF EXISTS ${FAILED_EVENTS_VIEW}`);
    await conn.run(createTable('audit_events_next'));
    const r = await conn.run(
      `INSERT INTO audit_events_next (${TABLE_COLUMNS.join(', ')}) SELECT ${currentColumnsFrom(shape)} FROM audit_events`,
    );
    copied = r.rowsChanged;
    await conn.run('DROP TABLE audit_events');
    await conn.run('ALTER TABLE audit_events_next RENAME TO audit_events');
    await conn.run(createView());
    await setLayout(conn);
  });
  return copied;
}

/**
 * How the connections of a file opened read-only see the current layout: nothing to do when the
 * file has it, else statements each connection runs (temporary objects are per connection) to make
 * a temporary `events` view over the older table, or over an empty table when the file has none.
 */
export async function readOnlyViews(
  conn: DuckDBConnection,
): Promise<{ layout: number; perConnection: string[] }> {
  const shape = await readShape(conn);
  if (shape === null)
    return {
      layout: SCHEMA_VERSION,
      perConnection: [createTable('temp.main.audit_events'), createView('temp.main.audit_events', true)],
    };
  const layout = layoutOf(shape);
  if (layout < SCHEMA_VERSION)
    return {
      layout,
      perConnection: [
        `CREATE OR REPLACE TEMP VIEW audit_events AS SELECT ${currentColumnsFrom(shape)} FROM ${CATALOG}.main.audit_events`,
        createView('temp.main.audit_events', true),
      ],
    };
  const views = await conn.runAndReadAll(
    `SELECT count(*) FROM information_schema.tables WHERE table_catalog = '${CATALOG}' AND table_name IN ('events', '${FAILED_EVENTS_VIEW}')`,
  );
  const hasView = Number(views.getRows()[0]?.[0] ?? 0) === 2;
  return { layout, perConnection: hasView ? [] : [createView(`${CATALOG}.main.audit_events`, true)] };
}
