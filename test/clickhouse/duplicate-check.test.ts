/**
 * The insert-side duplicate check (docs/clickhouse.md, "Each event once") on both setups: a store
 * matches keys against its own recent inserts only when the stored rows in the batch's time
 * intervals are exactly those, and reads the keys back from the server whenever another writer (or
 * an earlier run) put rows there. Either way every event is stored once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { prepareLine } from '../../src/model/prepare.js';
import { generateLines } from '../../src/simulate/generator.js';
import { ClickHouseStore, type ClickHouseStoreOptions } from '../../src/store/clickhouse/clickhouse-store.js';
import { TWO_SHARDS } from '../helpers/clickhouse-server.js';

const urls = inject('clickhouse');
const START_MS = Date.parse('2026-03-01T10:00:00Z');

function events(seed: number, count: number): Buffer[] {
  const out: Buffer[] = [];
  for (const l of generateLines({ seed, count, startMs: START_MS }))
    out.push(...prepareLine(Buffer.from(l)).events);
  return out;
}

describe.skipIf(urls === null).each(['single', 'distributed'] as const)('duplicate check (%s)', (kind) => {
  const u = urls as NonNullable<typeof urls>;
  const opts: ClickHouseStoreOptions = {
    url: kind === 'distributed' ? u.shards[0] : u.single,
    database: `kaudit_test_${randomBytes(6).toString('hex')}`,
    username: 'default',
    password: '',
    ...(kind === 'distributed' ? { distributed: TWO_SHARDS } : {}),
  };
  const opened: ClickHouseStore[] = [];
  const open = async () => {
    const s = await ClickHouseStore.open(opts);
    opened.push(s);
    return s;
  };
  beforeAll(() => ClickHouseStore.init(opts, kind === 'distributed' ? [...u.shards] : []));
  afterAll(async () => {
    for (const s of opened) await s.close();
    for (const url of kind === 'distributed' ? u.shards : [u.single])
      await fetch(`${url}/`, { method: 'POST', body: `DROP DATABASE IF EXISTS ${opts.database}` });
  });

  const a = events(11, 3000);
  const foreign = events(12, 800);
  const later = events(13, 800);

  it('matches its own inserts in memory, and reads keys back for what others wrote', async () => {
    const first = await open();
    expect(await first.write({ events: a.slice(0, 2000), cluster: 'c' })).toMatchObject({
      stored: 2000,
      duplicates: 0,
    });
    // Overlapping its own batch: the stored rows in range are all its own, no keys read back.
    const overlap = await first.write({ events: a.slice(1000), cluster: 'c' });
    expect(overlap).toMatchObject({ stored: 1000, duplicates: 1000 });
    expect(overlap.duplicateIndexes).toEqual([...Array(1000).keys()]);
    expect(first.keyLookups).toBe(0);

    // Another writer (or a restarted agent) knows none of them: it reads the keys back.
    const second = await open();
    expect(await second.write({ events: a, cluster: 'c' })).toMatchObject({ stored: 0, duplicates: 3000 });
    expect(second.keyLookups).toBeGreaterThan(0);
    expect(await second.write({ events: foreign, cluster: 'c' })).toMatchObject({ stored: 800 });

    // The first store now meets rows it did not write in the same time range: the counts differ,
    // so it reads the keys back and finds the other writer's events.
    const lookupsBefore = first.keyLookups;
    const mixed = await first.write({ events: [...foreign, ...later], cluster: 'c' });
    expect(mixed).toMatchObject({ stored: 800, duplicates: 800 });
    expect(first.keyLookups).toBeGreaterThan(lookupsBefore);
    expect(await first.count({ cluster: ['c'] })).toBe(3000 + 800 + 800);
    // Another cluster's identical events are its own.
    expect(await first.write({ events: a.slice(0, 100), cluster: 'd' })).toMatchObject({ stored: 100 });
  });
});
