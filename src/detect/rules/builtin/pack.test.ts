import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

// What the builtin pack promises beyond the rule format itself (which the engine's loader checks):
// every rule has a positive and a negative test, every peer rule it names exists under that name,
// every ATT&CK id is one we know the name of, and the README's table is the rules' own.

const DIR = fileURLToPath(new URL('.', import.meta.url));
const THIRD_PARTY = fileURLToPath(new URL('../../../../test/fixtures/third-party/', import.meta.url));

interface PackRule {
  id: string;
  title: string;
  severity: string;
  kind?: string;
  tactic: string[];
  technique: string[];
  equivalents: string[];
}

interface TestFile {
  positive?: { name: string; events: unknown[] }[];
  negative?: { name: string; events: unknown[] }[];
}

/** ATT&CK (Enterprise, v17) names of the ids the pack uses; a typo'd id has no name here. */
const TACTICS: Record<string, string> = {
  TA0001: 'Initial Access',
  TA0002: 'Execution',
  TA0003: 'Persistence',
  TA0004: 'Privilege Escalation',
  TA0005: 'Defense Evasion',
  TA0006: 'Credential Access',
  TA0007: 'Discovery',
  TA0008: 'Lateral Movement',
  TA0010: 'Exfiltration',
  TA0011: 'Command and Control',
  TA0040: 'Impact',
  TA0043: 'Reconnaissance',
};
const TECHNIQUES: Record<string, string> = {
  T1036: 'Masquerading',
  'T1036.005': 'Masquerading: Match Legitimate Resource Name or Location',
  T1040: 'Network Sniffing',
  'T1053.007': 'Scheduled Task/Job: Container Orchestration Job',
  T1059: 'Command and Scripting Interpreter',
  T1069: 'Permission Groups Discovery',
  T1070: 'Indicator Removal',
  T1078: 'Valid Accounts',
  'T1078.001': 'Valid Accounts: Default Accounts',
  T1098: 'Account Manipulation',
  'T1098.006': 'Account Manipulation: Additional Container Cluster Roles',
  T1133: 'External Remote Services',
  T1136: 'Create Account',
  T1498: 'Network Denial of Service',
  T1528: 'Steal Application Access Token',
  T1546: 'Event Triggered Execution',
  'T1550.001': 'Use Alternate Authentication Material: Application Access Token',
  'T1552.005': 'Unsecured Credentials: Cloud Instance Metadata API',
  'T1552.007': 'Unsecured Credentials: Container API',
  'T1565.001': 'Data Manipulation: Stored Data Manipulation',
  T1572: 'Protocol Tunneling',
  T1595: 'Active Scanning',
  T1609: 'Container Administration Command',
  T1610: 'Deploy Container',
  T1611: 'Escape to Host',
  T1613: 'Container and Resource Discovery',
};
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

function loadRules(): { file: string; rule: PackRule }[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((doc) => ({
        file,
        rule: doc.toJS() as PackRule,
      })),
    );
}

function falcoRuleNames(): Set<string> {
  const items = parse(readFileSync(join(THIRD_PARTY, 'falco/k8s_audit_rules.yaml'), 'utf8')) as {
    rule?: string;
  }[];
  return new Set(items.flatMap((i) => (i.rule === undefined ? [] : [i.rule])));
}

function sigmaIds(dir = join(THIRD_PARTY, 'sigma/rules')): Set<string> {
  const ids = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) for (const id of sigmaIds(path)) ids.add(id);
    else if (entry.name.endsWith('.yml')) ids.add((parse(readFileSync(path, 'utf8')) as { id: string }).id);
  }
  return ids;
}

function peerNames(): Record<string, Set<string>> {
  const peers = JSON.parse(readFileSync(join(DIR, 'peer-rules.json'), 'utf8')) as {
    elastic: { names: string[] };
    panther: { names: string[] };
    datadog: { names: Record<string, string> };
  };
  return {
    falco: falcoRuleNames(),
    sigma: sigmaIds(),
    elastic: new Set(peers.elastic.names),
    panther: new Set(peers.panther.names),
    datadog: new Set(Object.keys(peers.datadog.names)),
  };
}

/** The README's table, one row per rule, generated from the rules. */
function readmeTable(rules: PackRule[]): string {
  const cell = (s: string) => s.replaceAll('|', '\\|');
  const rows = rules.map((r) =>
    [
      `\`${r.id}\``,
      cell(r.title),
      r.severity,
      r.kind ?? 'match',
      r.technique.map((t) => `${t} ${TECHNIQUES[t] ?? ''}`.trim()).join('<br>') || '—',
      r.equivalents.map(cell).join('<br>') || '—',
    ].join(' | '),
  );
  return [
    '| id | title | severity | kind | technique | equivalents |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r} |`),
  ].join('\n');
}

const rules = loadRules();

describe('builtin rule pack', () => {
  it('has at least 40 rules, one per file named after its id', () => {
    expect(rules.length).toBeGreaterThanOrEqual(40);
    for (const { file, rule } of rules) expect(file).toBe(`${rule.id}.yaml`);
    expect(new Set(rules.map((r) => r.rule.id)).size).toBe(rules.length);
  });

  it('gives every rule a positive and a negative test', () => {
    const problems: string[] = [];
    for (const { rule } of rules) {
      const path = join(DIR, 'tests', `${rule.id}.yaml`);
      if (!existsSync(path)) {
        problems.push(`${rule.id}: no tests/${rule.id}.yaml`);
        continue;
      }
      const t = parse(readFileSync(path, 'utf8')) as TestFile;
      for (const kind of ['positive', 'negative'] as const) {
        const cases = t[kind] ?? [];
        if (cases.length === 0) problems.push(`${rule.id}: no ${kind} test`);
        for (const c of cases)
          if (c.events.length === 0) problems.push(`${rule.id}: "${c.name}" has no events`);
      }
    }
    const orphans = readdirSync(join(DIR, 'tests'))
      .filter((f) => f.endsWith('.yaml') && !rules.some((r) => `${r.rule.id}.yaml` === f))
      .map((f) => `tests/${f} tests no rule`);
    expect([...problems, ...orphans]).toEqual([]);
  });

  it('uses known severities and ATT&CK tactic and technique ids', () => {
    const problems: string[] = [];
    for (const { rule } of rules) {
      if (!SEVERITIES.includes(rule.severity)) problems.push(`${rule.id}: severity ${rule.severity}`);
      for (const t of rule.tactic) if (!(t in TACTICS)) problems.push(`${rule.id}: tactic ${t}`);
      for (const t of rule.technique) if (!(t in TECHNIQUES)) problems.push(`${rule.id}: technique ${t}`);
      // Activity records may have no technique; detections must.
      if (rule.severity !== 'info' && rule.technique.length === 0) problems.push(`${rule.id}: no technique`);
    }
    expect(problems).toEqual([]);
  });

  it('names only peer rules that exist, spelled as the peer spells them', () => {
    const known = peerNames();
    const problems: string[] = [];
    for (const { rule } of rules) {
      for (const eq of rule.equivalents) {
        const colon = eq.indexOf(':');
        const peer = eq.slice(0, colon);
        const name = eq.slice(colon + 1);
        const names = known[peer];
        if (names === undefined) problems.push(`${rule.id}: unknown peer in "${eq}"`);
        else if (!names.has(name)) problems.push(`${rule.id}: ${peer} has no rule "${name}"`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('lists every rule in README.md (KAUDIT_UPDATE_README=1 rewrites the table)', () => {
    const path = join(DIR, 'README.md');
    const readme = readFileSync(path, 'utf8');
    const begin = '<!-- rules:begin -->\n';
    const end = '\n<!-- rules:end -->';
    const from = readme.indexOf(begin) + begin.length;
    const to = readme.indexOf(end);
    expect(from).toBeGreaterThan(begin.length - 1);
    const table = readmeTable(rules.map((r) => r.rule));
    if (process.env.KAUDIT_UPDATE_README === '1') {
      writeFileSync(path, readme.slice(0, from) + table + readme.slice(to));
      return;
    }
    expect(readme.slice(from, to)).toBe(table);
  });
});
