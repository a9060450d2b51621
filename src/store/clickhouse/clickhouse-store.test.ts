/**
 * What the contract suite does not cover, on a real clickhouse-server (test/clickhouse/global-setup.ts):
 * the schema's version check, user SQL's sandbox, store info, retention.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouseTestStore } from '../../../test/helpers/clickhouse-server.js';
import { prepareLine } from '../../model/prepare.js';
import { ClickHouseStore } from './clickhouse-store.js';

const urls = inject('clickhouse');
const DEMO = readFileSync(
  new URL('../../../test/fixtures/third-party/samples/audit2rbac-demo.log', import.meta.url),
  'utf8',
)
  .split('\n')
  .filter((l) => l.trim() !== '')
  .flatMap((l) => prepareLine(Buffer.from(l)).events);

/** A copy of a demo event received `daysAgo` days ago, under a new auditID. */
function recent(i: number, daysAgo: number): Buffer {
  const e = JSON.parse((DEMO[i % DEMO.length] as Buffer).toString()) as Record<string, unknown>;
  const t = new Date(Date.now() - daysAgo * 86_400_000).toISOString();
  return Buffer.from(
    JSON.stringify({
      ...e,
      auditID: `recent-${daysAgo}-${i}`,
      requestReceivedTimestamp: t,
      stageTimestamp: t,
    }),
  );
}

async function sql(url: string, query: string): Promise<string> {
  const r = await fetch(`${url}/`, { method: 'POST', body: query });
  const text = await r.text();
  if (!r.ok) throw new Error(text);
  return text;
}

describe.skipIf(urls === null)('ClickHouseStore on a real server', () => {
  let opened: Awaited<ReturnType<typeof openClickHouseTestStore>>;
  let store: ClickHouseStore;
  beforeAll(async () => {
    opened = await openClickHouseTestStore(urls as NonNullable<typeof urls>, 'single');
    store = opened.store;
    await store.write({ events: DEMO, cluster: 'demo' });
    await store.write({ events: [recent(0, 1), recent(1, 1), recent(2, 40)], cluster: 'live' });
  });
  afterAll(() => opened?.close());

  it('says what to run when the schema is missing or older', async () => {
    const url = (urls as NonNullable<typeof urls>).single;
    const base = {
      url,
      username: 'default',
      password: '',
      database: store.location.split('/').at(-1) as string,
    };
    await expect(ClickHouseStore.open({ ...base, table: 'nosuch' })).rejects.toMatchObject({
      code: 'KAUDIT_STORE_MISSING',
      hint: expect.stringContaining('kaudit store init --store clickhouse://default@'),
    });
    await expect(ClickHouseStore.open({ ...base, database: 'kaudit_no_such_db' })).rejects.toMatchObject({
      code: 'KAUDIT_STORE_MISSING',
    });
    // A store made by an older kaudit: only version 0 recorded.
    await ClickHouseStore.init({ ...base, table: 'old' });
    await sql(url, `DROP TABLE ${base.database}.old_meta`);
    await sql(
      url,
      `CREATE TABLE ${base.database}.old_meta (key String, value String, at DateTime) ENGINE = TinyLog`,
    );
    await sql(url, `INSERT INTO ${base.database}.old_meta VALUES ('schema_version', '0', now())`);
    await expect(ClickHouseStore.open({ ...base, table: 'old' })).rejects.toMatchObject({
      code: 'KAUDIT_STORE_SCHEMA_OLD',
      hint: expect.stringContaining('?table=old'),
    });
    await ClickHouseStore.init({ ...base, table: 'old' });
    const upgraded = await ClickHouseStore.open({ ...base, table: 'old' });
    expect(upgraded.schemaVersion).toBe(1);
    await upgraded.close();
  });

  it('shows rows per cluster and the bytes on disk', async () => {
    const info = await store.info();
    expect(info.clusters.map((c) => [c.cluster, c.rows])).toEqual([
      ['demo', DEMO.length],
      ['live', 3],
    ]);
    expect(info.bytes).toBeGreaterThan(0);
    expect(info.details.server).toMatch(/^\d+\./);
  });

  it('runs user SQL over the events view, capped, read-only whatever the text says', async () => {
    const r = await store.sql(
      'SELECT audit_id, count() AS n FROM events GROUP BY audit_id ORDER BY n DESC, audit_id',
      {
        maxRows: 2,
        timeoutMs: 10_000,
      },
    );
    expect(r.columns).toEqual(['audit_id', 'n']);
    expect(r.rows).toHaveLength(2);
    expect(r.truncated).toBe(true);
    expect(typeof r.rows[0]?.n).toBe('number');
    await expect(
      store.sql('SELECT * FROM system.users', { maxRows: 5, timeoutMs: 5000 }),
    ).rejects.toMatchObject({
      code: 'KAUDIT_QUERY_FORBIDDEN',
    });
    // The server itself refuses what the text check lets through.
    await expect(
      store.sql('SELECT count() FROM events SETTINGS readonly = 0', { maxRows: 5, timeoutMs: 5000 }),
    ).rejects.toMatchObject({ code: 'KAUDIT_QUERY_FAILED' });
    expect(await store.count({})).toBe(DEMO.length + 3);
  });

  it('stores and finds strings with quotes, backslashes, tabs, line breaks, NUL and unicode as they are', async () => {
    const odd = [
      "a' OR 1=1 --",
      'back\\slash\\',
      'tab\there',
      'line\nbreak\r',
      'nul\u0000byte',
      'ユーザー \u{1F600}',
      "[']",
      // Longer than 127 bytes: a two-byte length in RowBinary; and the same with non-ASCII text.
      `long ${'x'.repeat(300)}`,
      `ü${'é'.repeat(100)}\u{1F600}`,
    ];
    const events = odd.map((v, i) =>
      Buffer.from(
        JSON.stringify({
          ...(JSON.parse((DEMO[0] as Buffer).toString()) as object),
          auditID: `odd-${i}`,
          user: { username: v, groups: [v, 'plain'] },
          userAgent: v,
          requestURI: `/api/v1/namespaces/${v}`,
          requestReceivedTimestamp: new Date().toISOString(),
          stageTimestamp: new Date().toISOString(),
        }),
      ),
    );
    expect((await store.write({ events, cluster: 'odd' })).stored).toBe(odd.length);
    for (const [i, v] of odd.entries()) {
      const page = await store.search({
        filter: { cluster: ['odd'], user: [v], userGroup: [v] },
        limit: 5,
        columns: ['audit_id', 'username', 'groups', 'user_agent', 'request_uri', 'raw'],
      });
      expect(page.rows).toEqual([
        {
          audit_id: `odd-${i}`,
          username: v,
          groups: [v, 'plain'],
          user_agent: v,
          request_uri: `/api/v1/namespaces/${v}`,
          raw: (events[i] as Buffer).toString(),
        },
      ]);
    }
    expect(await store.count({ cluster: ['odd'], text: 'line\nbreak' })).toBe(1);
  });

  it('drops the days older than the retention, whole partitions at a time', async () => {
    // The demo log is from 2017; one `live` event is 40 days old, two are a day old.
    expect(await store.deleteOlderThan(30)).toBe(DEMO.length + 1);
    expect((await store.info()).clusters.map((c) => [c.cluster, c.rows])).toEqual([
      ['live', 2],
      ['odd', 9],
    ]);
  });
});
