/**
 * MITRE ATT&CK ids from Sigma tags (Sigma tags appendix, namespace `attack`): `attack.t1609` is
 * technique T1609, `attack.t1552.007` sub-technique T1552.007, `attack.execution` a tactic by its
 * name. Other tags (groups, software, cve, detection) stay tags only.
 */

// Enterprise ATT&CK tactics. TA0005 was renamed from Defense Evasion to Stealth (SigmaHQ rules
// now tag `attack.stealth`); older rules still say `defense-evasion`, or `defense_evasion`.
const TACTICS: Readonly<Record<string, string>> = {
  reconnaissance: 'TA0043',
  'resource-development': 'TA0042',
  'initial-access': 'TA0001',
  execution: 'TA0002',
  persistence: 'TA0003',
  'privilege-escalation': 'TA0004',
  stealth: 'TA0005',
  'defense-evasion': 'TA0005',
  'defense-impairment': 'TA0112',
  'credential-access': 'TA0006',
  discovery: 'TA0007',
  'lateral-movement': 'TA0008',
  collection: 'TA0009',
  exfiltration: 'TA0010',
  'command-and-control': 'TA0011',
  impact: 'TA0040',
};

export function attackTags(tags: readonly string[]): { tactic: string[]; technique: string[] } {
  const tactic: string[] = [];
  const technique: string[] = [];
  for (const tag of tags) {
    const t = tag.toLowerCase();
    if (!t.startsWith('attack.')) continue;
    const rest = t.slice('attack.'.length);
    const tech = /^t(\d{4})(?:\.(\d{3}))?$/.exec(rest);
    if (tech !== null) {
      const id = `T${tech[1]}${tech[2] === undefined ? '' : `.${tech[2]}`}`;
      if (!technique.includes(id)) technique.push(id);
      continue;
    }
    const ta = TACTICS[rest.replaceAll('_', '-')];
    if (ta !== undefined && !tactic.includes(ta)) tactic.push(ta);
  }
  return { tactic, technique };
}
