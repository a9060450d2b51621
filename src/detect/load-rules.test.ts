import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../model/errors.js';
import { loadRuleFiles, loadRuleText } from './load-rules.js';

const GOOD = `id: exec-into-pod
title: Exec into a pod
severity: medium
technique: T1609
match:
  all:
    - {field: verb, equals: create}
    - {field: objectRef.subresource, in: [exec, attach]}
`;

function problems(text: string): string[] {
  return loadRuleText(text, 'rules/x.yaml', 'user').diagnostics.map(formatDiagnostic);
}

describe('loading rules', () => {
  it('loads a rule with its defaults', () => {
    const { rules, diagnostics } = loadRuleText(GOOD, 'x.yaml', 'user');
    expect(diagnostics).toEqual([]);
    expect(rules).toHaveLength(1);
    expect(rules[0]).toMatchObject({
      id: 'exec-into-pod',
      kind: 'match',
      technique: ['T1609'],
      tactic: [],
      message: 'Exec into a pod',
      source: 'user',
      file: 'x.yaml',
    });
  });

  it('loads several rules from one file', () => {
    const { rules } = loadRuleText(`${GOOD}---\n${GOOD.replace('exec-into-pod', 'other')}`, 'x.yaml', 'user');
    expect(rules.map((r) => r.id)).toEqual(['exec-into-pod', 'other']);
  });

  it('refuses a misspelt severity with the line and the allowed values', () => {
    const p = problems(GOOD.replace('severity: medium', 'severity: meduim'));
    expect(p).toHaveLength(1);
    expect(p[0]).toContain('rules/x.yaml:3:');
    expect(p[0]).toContain('severity');
    expect(p[0]).toContain('info or low or medium or high or critical');
  });

  it('refuses an unknown operator with the line and the operators', () => {
    const p = problems(GOOD.replace('equals: create', 'equal: create'));
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /rules\/x\.yaml:7:\d+: error\[KAUDIT_RULE_INVALID\] match\.all\[0\]\.equal: unknown key "equal"/,
    );
    expect(p[0]).toContain('allowed: all, any, not, field, equals, in');
  });

  it('refuses an unknown top-level key (a typo) with the keys allowed', () => {
    const p = problems(GOOD.replace('technique:', 'techniqe:'));
    expect(p.join('\n')).toContain('unknown key "techniqe"');
    expect(p.join('\n')).toContain('allowed here: id, title');
  });

  it('reports every problem of a file at once', () => {
    const bad = `id: Bad Id
title: ''
severity: urgent
tactic: [execution]
technique: [T16]
kind: threshold
match: {field: verb, regex: "("}
threshold: {groupBy: [subject], window: 10 minutes, count: 0}
allow: {sourceCidrs: [10.0.0.0/33]}
`;
    const p = problems(bad);
    const text = p.join('\n');
    for (const want of ['id', 'title', 'severity', 'threshold.count']) expect(text).toContain(`] ${want}`);
    expect(p.length).toBeGreaterThanOrEqual(4);
  });

  it('checks operands: regex, cidr, numbers, exists', () => {
    expect(problems(GOOD.replace('equals: create', 'regex: "a("')).join()).toContain(
      'bad regular expression',
    );
    expect(
      problems(GOOD.replace('{field: verb, equals: create}', '{field: sourceIP, cidr: 10.0.0.0/40}')).join(),
    ).toContain('is not an IP address or CIDR');
    expect(problems(GOOD.replace('equals: create', 'gt: "5"')).join()).toContain('must be a number');
    expect(problems(GOOD.replace('equals: create', 'exists: yes')).join()).toContain('must be true or false');
    expect(problems(GOOD.replace('equals: create', 'equals: create, in: [a]')).join()).toContain(
      'one operator per test',
    );
  });

  it('checks the parts each kind needs', () => {
    expect(problems(GOOD.replace('severity: medium', 'severity: medium\nkind: threshold')).join()).toContain(
      'a threshold rule needs "threshold"',
    );
    const seq = `id: s
title: s
severity: low
kind: sequence
sequence:
  by: [subject]
  window: 10m
  steps:
    - match: {field: verb, equals: create}
`;
    expect(problems(seq).join()).toContain('sequence.steps: needs at least 2 item(s)');
    const two = `${seq}    - match: {field: verb, equals: delete}\n`;
    expect(problems(two)).toEqual([]);
    expect(problems(two.replace('window: 10m', 'window: soon')).join()).toContain('"soon" is not a duration');
  });

  it('names YAML syntax errors by line', () => {
    const p = problems('id: x\ntitle: [unclosed\n');
    expect(p[0]).toMatch(/^rules\/x\.yaml:\d+:\d+: error\[KAUDIT_RULE_INVALID\]/);
  });

  const dir = mkdtempSync(join(tmpdir(), 'kaudit-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('walks directories, skips tests/, and refuses duplicate ids across files', () => {
    writeFileSync(join(dir, 'a.yaml'), GOOD);
    writeFileSync(join(dir, 'b.yml'), GOOD);
    writeFileSync(join(dir, 'notes.txt'), 'not a rule');
    const { rules, diagnostics } = loadRuleFiles([dir], 'user');
    expect(rules).toHaveLength(2);
    expect(diagnostics.map((d) => d.code)).toEqual(['KAUDIT_RULE_DUPLICATE']);
    expect(diagnostics[0]?.file).toBe(join(dir, 'b.yml'));
  });

  it('reports a path that does not exist', () => {
    const { diagnostics } = loadRuleFiles([join(dir, 'missing')], 'user');
    expect(diagnostics[0]).toMatchObject({ code: 'KAUDIT_RULE_UNREADABLE', file: join(dir, 'missing') });
  });
});

describe('every problem of a rule at once', () => {
  it('reports a bad condition even when a top-level field is wrong too', () => {
    const p = loadRuleText(
      'id: x\ntitle: X\nseverity: hihg\nmatch: {field: verb, equal: create}\n',
      'f.yaml',
      'user',
    )
      .diagnostics.map(formatDiagnostic)
      .join('\n');
    expect(p).toContain('f.yaml:3:');
    expect(p).toContain('f.yaml:4:');
    expect(p).toContain('unknown key "equal"');
  });
});

describe('a file too big to be rules', () => {
  const d = mkdtempSync(join(tmpdir(), 'kaudit-rules-big-'));
  afterAll(() => rmSync(d, { recursive: true, force: true }));
  it('is refused without being parsed', () => {
    const big = join(d, 'audit.yaml');
    writeFileSync(big, `# ${'x'.repeat(5 << 20)}\n`);
    const { diagnostics } = loadRuleFiles([big], 'user');
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]?.message).toContain('not a rule file');
  });
});
