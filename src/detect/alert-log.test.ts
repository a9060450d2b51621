import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlertLog, type LoggedAlert, queryAlerts } from './alert-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-alerts-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const alert = (id: string, auditID: string, severity: string, time: string): LoggedAlert => ({
  time,
  rule: { id, severity, title: id },
  auditID,
  stage: 'ResponseComplete',
  cluster: 'c1',
});

describe('AlertLog', () => {
  it('records an alert once per rule and event, across reopenings (a re-read log alerts nothing twice)', async () => {
    const log = await AlertLog.open(dir);
    const a = alert('k8s-exec-into-pod', 'a1', 'medium', '2026-01-15T09:00:01.000Z');
    expect(await log.append([a, a])).toHaveLength(1);
    const again = await AlertLog.open(dir);
    expect(
      await again.append([a, alert('k8s-exec-into-pod', 'a2', 'medium', '2026-01-15T09:00:02.000Z')]),
    ).toHaveLength(1);
    expect(await queryAlerts(dir)).toHaveLength(2);
  });

  it('lists newest first, by time range, minimum severity and rule, skipping a torn last line', async () => {
    const log = await AlertLog.open(dir);
    await log.append([
      alert('r-low', 'a1', 'low', '2026-01-15T09:00:01.000Z'),
      alert('r-high', 'a2', 'high', '2026-01-15T09:00:03.000Z'),
      alert('r-crit', 'a3', 'critical', '2026-01-15T09:00:02.000Z'),
    ]);
    appendFileSync(log.path, '{"time":"2026-01-15T09:00:09.000Z","rule":{"id":');
    const ids = async (q: Parameters<typeof queryAlerts>[1]) =>
      (await queryAlerts(dir, q)).map((a) => a.rule.id);
    expect(await ids({})).toEqual(['r-high', 'r-crit', 'r-low']);
    expect(await ids({ minSeverity: 'high' })).toEqual(['r-high', 'r-crit']);
    expect(await ids({ since: '2026-01-15T09:00:02.000Z' })).toEqual(['r-high', 'r-crit']);
    expect(await ids({ rule: ['r-low'] })).toEqual(['r-low']);
    expect(await ids({ limit: 1 })).toEqual(['r-high']);
  });
});
