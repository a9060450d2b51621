/**
 * Detection end to end through the CLI: the simulator's attack scenario found step by step with the
 * right ATT&CK technique and its base traffic quiet, the same alerts from a backtest over the store
 * as from the log file, `rules list` and `rules test`, and bad input refused with exit 2.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ndjson, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('kaudit-detect-');
const log = join(dir, 'audit.log');
const data = join(dir, 'data');

interface Truth {
  steps: { id: string; auditIDs: string[]; expect: { kind: string; technique: string } }[];
}
interface AlertLine {
  auditID: string;
  auditIDs?: string[];
  rule: { id: string; severity: string; technique: string[]; source: string };
}

let alerts: AlertLine[];
let truth: Truth;

beforeAll(async () => {
  const s = await runCli([
    'simulate',
    '--out',
    log,
    '--scenario',
    'normal,attack',
    '--duration',
    '30m',
    '--rate',
    '5',
    '--seed',
    '7',
  ]);
  expect(s.code, s.stderr).toBe(0);
  truth = JSON.parse(readFileSync(`${log}.truth.json`, 'utf8')) as Truth;
  const d = await runCli(['detect', '--json', log]);
  expect(d.code, d.stderr).toBe(0);
  alerts = ndjson(d.stdout) as unknown as AlertLine[];
}, 120_000);

const touches = (a: AlertLine, ids: Set<string>) =>
  ids.has(a.auditID) || (a.auditIDs ?? []).some((id) => ids.has(id));

describe('kaudit detect on the simulator', () => {
  it('detects every attack step with a rule of the expected technique', () => {
    const attack = truth.steps.filter((s) => s.expect.kind === 'attack');
    expect(attack.length).toBeGreaterThanOrEqual(8);
    const missed = attack.filter((step) => {
      const ids = new Set(step.auditIDs);
      return !alerts.some((a) => touches(a, ids) && a.rule.technique.includes(step.expect.technique));
    });
    expect(missed.map((s) => s.id)).toEqual([]);
  });

  it('raises no medium, high or critical alert on the base traffic', () => {
    const attackIDs = new Set(truth.steps.flatMap((s) => s.auditIDs));
    const loud = alerts.filter(
      (a) => !touches(a, attackIDs) && ['medium', 'high', 'critical'].includes(a.rule.severity),
    );
    expect(loud.map((a) => `${a.rule.id} ${a.auditID}`)).toEqual([]);
    // and the base traffic is not silent by accident: someone does exec into pods
    expect(alerts.some((a) => !touches(a, attackIDs))).toBe(true);
  });

  it('raises the same alerts in a backtest over the store, and --save records them once', async () => {
    const i = await runCli(['ingest', '--data', data, '--no-progress', log]);
    expect(i.code, i.stderr).toBe(0);
    const b = await runCli(['detect', '--data', data, '--json', '--save']);
    expect(b.code, b.stderr).toBe(0);
    const key = (a: AlertLine) => `${a.rule.id} ${a.auditID}`;
    expect((ndjson(b.stdout) as unknown as AlertLine[]).map(key).sort()).toEqual(alerts.map(key).sort());
    const again = await runCli(['detect', '--data', data, '--save']);
    expect(again.stderr).toContain('0 new alert(s) recorded');
    const listed = await runCli(['alerts', '--data', data, '--json', '--limit', '100000']);
    expect(ndjson(listed.stdout)).toHaveLength(alerts.length);
    const high = await runCli([
      'alerts',
      '--data',
      data,
      '--json',
      '--severity',
      'high',
      '--limit',
      '100000',
    ]);
    expect(ndjson(high.stdout).length).toBe(
      alerts.filter((a) => ['high', 'critical'].includes(a.rule.severity)).length,
    );
  });

  it('--min-severity and --rule narrow the run', async () => {
    const d = await runCli([
      'detect',
      '--json',
      '--min-severity',
      'high',
      '--rule',
      'k8s-privileged-container',
      log,
    ]);
    expect(d.code, d.stderr).toBe(0);
    const got = ndjson(d.stdout) as unknown as AlertLine[];
    expect(got.length).toBeGreaterThan(0);
    expect(new Set(got.map((a) => a.rule.id))).toEqual(new Set(['k8s-privileged-container']));
  });
});

describe('rules and bad input', () => {
  it('rules list --json prints every rule with its equivalents and source', async () => {
    const r = await runCli(['rules', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rules = ndjson(r.stdout);
    expect(rules.length).toBeGreaterThanOrEqual(40);
    for (const rule of rules) {
      expect(Object.keys(rule)).toEqual(
        expect.arrayContaining(['id', 'title', 'severity', 'tactic', 'technique', 'equivalents', 'source']),
      );
      expect(rule.source).toBe('builtin');
    }
    expect(rules.some((x) => (x.equivalents as string[]).includes('falco:Attach/Exec Pod'))).toBe(true);
  });

  it('refuses a rule file with a typo, naming the file, the line and the allowed values (exit 2)', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'id: mine\ntitle: Mine\nseverity: hihg\nmatch: {field: verb, equal: create}\n');
    const r = await runCli(['detect', '--rules', file, log]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}:3:`);
    expect(r.stderr).toContain('info or low or medium or high or critical');
    expect(r.stderr).toContain(`${file}:4:`);
    expect(r.stderr).toContain('unknown key "equal"');
    expect(r.stdout).toBe('');
  });

  it('rules test runs a rule against its cases and fails when one fails', async () => {
    const rule = join(dir, 'exec.yaml');
    writeFileSync(
      rule,
      'id: my-exec\ntitle: Exec\nseverity: low\nmatch:\n  all:\n    - {field: verb, equals: create}\n    - {field: objectRef.subresource, equals: exec}\n',
    );
    const cases = join(dir, 'cases.yaml');
    writeFileSync(
      cases,
      'positive:\n  - name: exec\n    events: [{verb: create, objectRef: {resource: pods, subresource: exec}}]\nnegative:\n  - name: logs\n    events: [{verb: get, objectRef: {resource: pods, subresource: log}}]\n',
    );
    const ok = await runCli(['rules', 'test', rule, cases]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('ok   my-exec positive: exec');
    writeFileSync(cases, 'positive:\n  - name: a get is not exec\n    events: [{verb: get}]\n');
    const bad = await runCli(['rules', 'test', rule, cases]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('FAIL my-exec positive: a get is not exec (no alert)');
  });

  it('reads the good events of a file with malformed lines, and exits 2', async () => {
    const mixed = join(dir, 'mixed.log');
    const good = readFileSync(log, 'utf8').split('\n').slice(0, 2000).join('\n');
    writeFileSync(mixed, `${good}\n{"kind":"Event", broken\n`);
    const r = await runCli(['detect', '--json', mixed]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/mixed\.log: 1 malformed record\(s\) not read, first at byte \d+/);
    expect(r.stderr).toMatch(/kaudit: 2,000 events/);
  });

  it('names a missing file', async () => {
    const r = await runCli(['detect', join(dir, 'nope.log')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('nope.log');
  });
});
