import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditLine } from '../../../test/fixtures/agent/make-events.js';
import { DuckDBStore } from './duckdb-store.js';

const LAYOUT_1_COLUMNS = (
  raw: string,
) => `ts TIMESTAMP NOT NULL, stage_ts TIMESTAMP, audit_id VARCHAR NOT NULL,
  stage VARCHAR NOT NULL, level VARCHAR, verb VARCHAR, username VARCHAR, user_uid VARCHAR, groups VARCHAR[],
  impersonated_user VARCHAR, subject VARCHAR, source_ip VARCHAR, source_ips VARCHAR[], user_agent VARCHAR,
  api_group VARCHAR, api_version VARCHAR, resource VARCHAR, subresource VARCHAR, namespace VARCHAR,
  name VARCHAR, request_uri VARCHAR, code INTEGER, decision VARCHAR, reason VARCHAR, latency_ms DOUBLE,
  long_running BOOLEAN, latency_breakdown MAP(VARCHAR, DOUBLE), truncated BOOLEAN, cluster VARCHAR NOT NULL,
  ingested_at TIMESTAMP NOT NULL, raw ${raw}`;

// Backslash sequences a cast to BLOB would read as escapes, and text beyond ASCII.
const event = (i: number) =>
  Buffer.from(
    auditLine(`0000000${i}-aaaa-4bbb-8ccc-dddddddddddd`, { userAgent: 'kubectl \\x41\\\\x42 é 漢字' }).trim(),
  );

const all = { maxRows: 1000, timeoutMs: 60_000 };
const VIEW = 'SELECT * EXCLUDE (ingested_at) FROM events ORDER BY audit_id';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-migrate-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A file of an older layout in `dataDir`, made by `sql` with `src` a current-layout store holding
 * `events` and `old` the new file.
 */
async function makeOldFile(dataDir: string, events: Buffer[], sql: string): Promise<void> {
  const source = await DuckDBStore.open({ dataDir: join(dir, 'source') });
  await source.write({ events, cluster: 'c1' });
  await source.close();
  mkdirSync(dataDir, { recursive: true });
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`ATTACH '${join(dir, 'source', 'kaudit.duckdb')}' AS src (READ_ONLY)`);
  await c.run(`ATTACH '${join(dataDir, 'kaudit.duckdb')}' AS old`);
  await c.run(sql);
  c.closeSync();
  db.closeSync();
  rmSync(join(dir, 'source'), { recursive: true, force: true });
}

/**
 * A file as a release of layout 1 left it (every derived column stored, raw as text; or, as a
 * development build had it, raw a BLOB already).
 */
const makeLayout1 = (dataDir: string, raw: 'VARCHAR' | 'BLOB', events: Buffer[]) =>
  makeOldFile(
    dataDir,
    events,
    `CREATE TABLE old.kaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    INSERT INTO old.kaudit_meta VALUES ('schema_version', '1');
    CREATE TABLE old.audit_events (${LAYOUT_1_COLUMNS(raw)});
    INSERT INTO old.audit_events SELECT ts, stage_ts, audit_id, stage, level, verb, username, user_uid, groups,
      impersonated_user, subject, source_ip, source_ips, user_agent, api_group, api_version, resource, subresource,
      namespace, name, request_uri, code, decision, reason, latency_ms, long_running, latency_breakdown, truncated,
      cluster, ingested_at, ${raw === 'VARCHAR' ? 'raw' : 'encode(raw)'} FROM src.events`,
  );

/**
 * A file as a release of layout 2 left it: raw a BLOB, `decision` only the annotation, no
 * decision_source or long_running (the view derived them).
 */
const makeLayout2 = (dataDir: string, events: Buffer[]) =>
  makeOldFile(
    dataDir,
    events,
    `CREATE TABLE old.kaudit_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    INSERT INTO old.kaudit_meta VALUES ('schema_version', '2');
    CREATE TABLE old.audit_events AS
      SELECT * EXCLUDE (decision_source, long_running, raw, raw_failed), coalesce(raw, raw_failed) AS raw FROM src.audit_events;
    UPDATE old.audit_events SET decision = NULL WHERE decision IS NOT NULL
      AND json_extract_string(decode(raw), '$.annotations."authorization.k8s.io/decision"') IS NULL;`,
  );

/** Name, size and mtime of every file under `d`. */
function listing(d: string): string[] {
  return readdirSync(d, { recursive: true, withFileTypes: true }).map((e) => {
    const p = join(e.parentPath, e.name);
    const st = statSync(p);
    return `${p} ${st.size} ${st.mtimeMs}`;
  });
}

describe('DuckDB table layouts', () => {
  for (const raw of ['VARCHAR', 'BLOB'] as const) {
    it(`reads a layout 1 file (raw ${raw}) as it is when read-only, and migrates it when opened to write`, async () => {
      const old = join(dir, 'old');
      await makeLayout1(old, raw, [event(1), event(2)]);
      const current = await DuckDBStore.open({ dataDir: join(dir, 'current') });
      await current.write({ events: [event(1), event(2)], cluster: 'c1' });
      const expected = await current.sql(VIEW, all);
      const columns = await current.sql('DESCRIBE events', all);
      await current.close();

      const before = listing(old);
      const reader = await DuckDBStore.open({ dataDir: old, readOnly: true });
      try {
        expect((await reader.sql(VIEW, all)).rows).toEqual(expected.rows);
        expect((await reader.sql('DESCRIBE events', all)).rows).toEqual(columns.rows);
        expect(await reader.count({})).toBe(2);
        expect(await reader.info()).toMatchObject({ rows: 2, details: { mode: 'read-only', fileLayout: 1 } });
      } finally {
        await reader.close();
      }
      expect(listing(old)).toEqual(before);

      const writer = await DuckDBStore.open({ dataDir: old });
      try {
        expect(await writer.info()).toMatchObject({
          rows: 2,
          schemaVersion: 3,
          details: { mode: 'read-write', migratedFromLayout: 1 },
        });
        expect((await writer.sql(VIEW, all)).rows).toEqual(expected.rows);
        const table = await writer.sql(
          "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'audit_events' AND column_name IN ('raw', 'subject')",
          all,
        );
        expect(table.rows).toEqual([{ column_name: 'raw', data_type: 'BLOB' }]);
        expect(
          (await writer.sql("SELECT value FROM kaudit_meta WHERE key = 'schema_version'", all)).rows,
        ).toEqual([{ value: '3' }]);
        // The keys it migrated are still known: a repeat is found in the table.
        expect(await writer.write({ events: [event(2), event(3)], cluster: 'c1' })).toMatchObject({
          stored: 1,
          duplicates: 1,
        });
      } finally {
        await writer.close();
      }
      // Opened again: nothing left to migrate.
      const again = await DuckDBStore.open({ dataDir: old });
      expect((await again.info()).details).not.toHaveProperty('migratedFromLayout');
      expect((await again.info()).rows).toBe(3);
      await again.close();
    });
  }

  it('reads a layout 2 file with the decision derived from a 403 message, and migrates it', async () => {
    // An authorizer's 403 without the decision annotation (clusters before 1.11): the decision is
    // read from the message; the watch is long-running.
    const forbidden = Buffer.from(
      auditLine('00000009-aaaa-4bbb-8ccc-dddddddddddd', {
        annotations: {},
        responseStatus: { code: 403, message: 'pods is forbidden: User "bob" cannot list resource "pods"' },
      }).trim(),
    );
    const watch = Buffer.from(auditLine('00000008-aaaa-4bbb-8ccc-dddddddddddd', { verb: 'watch' }).trim());
    const events = [event(1), forbidden, watch];
    const old = join(dir, 'old');
    await makeLayout2(old, events);
    const current = await DuckDBStore.open({ dataDir: join(dir, 'current') });
    await current.write({ events, cluster: 'c1' });
    const expected = await current.sql(VIEW, all);
    await current.close();
    const derived = expected.rows.map((r) => [r.audit_id, r.decision, r.decision_source, r.long_running]);
    expect(derived).toContainEqual(['00000009-aaaa-4bbb-8ccc-dddddddddddd', 'forbid', 'response', false]);
    expect(derived).toContainEqual(['00000008-aaaa-4bbb-8ccc-dddddddddddd', 'allow', 'annotation', true]);

    const reader = await DuckDBStore.open({ dataDir: old, readOnly: true });
    try {
      expect(await reader.info()).toMatchObject({ details: { mode: 'read-only', fileLayout: 2 } });
      expect((await reader.sql(VIEW, all)).rows).toEqual(expected.rows);
      expect(await reader.count({ decision: ['forbid'] })).toBe(1);
    } finally {
      await reader.close();
    }
    const writer = await DuckDBStore.open({ dataDir: old });
    try {
      expect(await writer.info()).toMatchObject({ schemaVersion: 3, details: { migratedFromLayout: 2 } });
      expect((await writer.sql(VIEW, all)).rows).toEqual(expected.rows);
      const stored = await writer.sql(
        "SELECT decision, decision_source FROM audit_events WHERE audit_id = '00000009-aaaa-4bbb-8ccc-dddddddddddd'",
        all,
      );
      expect(stored.rows).toEqual([{ decision: 'forbid', decision_source: 'response' }]);
    } finally {
      await writer.close();
    }
  });
});
