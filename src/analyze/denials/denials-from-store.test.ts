import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/temp.js';
import { prepareLine } from '../../model/prepare.js';
import { generateLines } from '../../simulate/generator.js';
import { MemoryStore } from '../../store/memory/memory-store.js';
import { openStore } from '../../store/registry.js';
import { storedEvents } from '../../store/stored-events.js';
import { requestRecords } from '../request-record.js';
import { denialsFromStore } from './denials-from-store.js';
import { reportDenials } from './denials-report.js';

describe('denialsFromStore', () => {
  it('gives the report of every event while reading only the refused ones', async () => {
    const events: Buffer[] = [];
    for (const line of generateLines({ seed: 12, count: 6000 }))
      events.push(...prepareLine(Buffer.from(line)).events);
    const embedded = await openStore(join(tempDir('kaudit-denials-'), 'data'));
    try {
      for (const store of [new MemoryStore(), embedded]) {
        await store.write({ events, cluster: 'c' });
        const full = await reportDenials(
          requestRecords(
            (async function* () {
              for await (const { event } of storedEvents(store)) yield event;
            })(),
          ),
        );
        const fast = await denialsFromStore(store, {});
        expect(fast.denied).toBeGreaterThan(0);
        const { from: f1, to: t1, ...a } = full;
        const { from: f2, to: t2, ...b } = fast;
        expect(b).toEqual(a);
        expect(Date.parse(f2 ?? '')).toBeCloseTo(Date.parse(f1 ?? ''), -1);
        expect(Date.parse(t2 ?? '')).toBeCloseTo(Date.parse(t1 ?? ''), -1);
      }
    } finally {
      await embedded.close();
    }
  });
});
