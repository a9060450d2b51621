import { describe, expect, it } from 'vitest';
import { loadRbac } from '../../src/analyze/rbac/load-rbac.js';
import { loadRuleText } from '../../src/detect/load-rules.js';
import { readYaml } from '../../src/model/yaml-input.js';
import { loadPolicyText } from '../../src/policy/load.js';

/** Twelve lines that expand to 10^12 strings. */
function bomb(): string {
  const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  let prev = 'a';
  for (let i = 1; i < 12; i++) {
    const n = String.fromCharCode(97 + i);
    lines.push(`${n}: &${n} [${Array(10).fill(`*${prev}`).join(',')}]`);
    prev = n;
  }
  return `${lines.join('\n')}\n`;
}

describe('a YAML alias bomb is refused by every loader, with a message, never expanded or thrown', () => {
  it('config (readYaml)', () => {
    const r = readYaml(bomb(), 'kaudit.yaml');
    expect(r.value).toBeUndefined();
    expect(r.diagnostics[0]?.message).toContain('alias bomb');
  });

  it('audit policy', () => {
    const [p] = loadPolicyText(
      `apiVersion: audit.k8s.io/v1\nkind: Policy\n${bomb()}rules:\n- level: Metadata\n`,
    );
    expect(p?.diagnostics.map((d) => d.message).join()).toContain('alias bomb');
  });

  it('RBAC file', () => {
    expect(
      loadRbac(bomb(), 'rbac.yaml')
        .diagnostics.map((d) => d.message)
        .join(),
    ).toContain('alias bomb');
  });

  it('detection rules', () => {
    expect(
      loadRuleText(bomb(), 'rules.yaml', 'user')
        .diagnostics.map((d) => d.message)
        .join(),
    ).toContain('alias bomb');
  });
});
