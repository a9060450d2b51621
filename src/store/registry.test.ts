import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditLine } from '../../test/fixtures/agent/make-events.js';
import { openReadStore, openStore } from './registry.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-registry-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const event = Buffer.from(auditLine('00000001-aaaa-4bbb-8ccc-dddddddddddd').trim());

describe('openStore', () => {
  it('opens the embedded store from a directory or a duckdb: spec, and memory:', async () => {
    const data = join(dir, 'data');
    const a = await openStore(`duckdb:${data}`);
    expect(await a.write({ events: [event], cluster: 'c1' })).toMatchObject({ stored: 1 });
    expect(a.capabilities.sql).toBe(true);
    await a.close();
    const b = await openStore(data);
    expect(await b.count({})).toBe(1);
    await b.close();
    const m = await openStore('memory:');
    expect(m.backend).toBe('memory');
    await m.close();
  });

  it('opens read-only without creating or changing anything, and refuses a missing store', async () => {
    const missing = join(dir, 'missing');
    await expect(openStore(missing, { readOnly: true })).rejects.toMatchObject({
      code: 'KAUDIT_STORE_MISSING',
    });
    await expect(openReadStore(missing)).rejects.toMatchObject({ code: 'KAUDIT_STORE_MISSING' });
    expect(existsSync(missing)).toBe(false);
    const data = join(dir, 'data');
    const w = await openStore(data);
    await w.write({ events: [event], cluster: 'c1' });
    await w.close();
    const snapshot = () => readdirSync(data).map((n) => `${n} ${statSync(join(data, n)).mtimeMs}`);
    const before = snapshot();
    const r = await openReadStore(data);
    expect(await r.count({})).toBe(1);
    expect((await r.info()).details).toMatchObject({ mode: 'read-only' });
    await r.close();
    expect(snapshot()).toEqual(before);
  });
});
