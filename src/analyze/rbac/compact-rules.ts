/**
 * Merges rules without widening them, as audit2rbac's compactRules does: break every rule into
 * single (group, resource, name, verb) atoms, then merge verbs of the same object, names of the same
 * verbs, and resources of the same verbs and names. Each merge is a product of atoms that were all
 * present, so the result allows exactly what the input allowed.
 */
import type { PolicyRule } from './types.js';

const sortedUnique = (xs: Iterable<string>) => [...new Set(xs)].sort();

export function compactRules(rules: readonly PolicyRule[]): PolicyRule[] {
  // group -> resource -> name ('' = every name) -> verbs
  const atoms = new Map<string, Map<string, Map<string, Set<string>>>>();
  const urls = new Map<string, Set<string>>();
  for (const r of rules) {
    for (const u of r.nonResourceURLs ?? []) {
      const v = urls.get(u) ?? new Set();
      for (const verb of r.verbs) v.add(verb);
      urls.set(u, v);
    }
    for (const g of r.apiGroups ?? []) {
      const byRes = atoms.get(g) ?? new Map<string, Map<string, Set<string>>>();
      atoms.set(g, byRes);
      for (const res of r.resources ?? []) {
        const byName = byRes.get(res) ?? new Map<string, Set<string>>();
        byRes.set(res, byName);
        const names = (r.resourceNames ?? []).length > 0 ? (r.resourceNames as string[]) : [''];
        for (const n of names) {
          const v = byName.get(n) ?? new Set<string>();
          for (const verb of r.verbs) v.add(verb);
          byName.set(n, v);
        }
      }
    }
  }
  const out: PolicyRule[] = [];
  for (const g of [...atoms.keys()].sort()) {
    const byRes = atoms.get(g) as Map<string, Map<string, Set<string>>>;
    // (verbs, names) -> resources
    const merged = new Map<string, { verbs: string[]; names: string[]; resources: string[] }>();
    for (const res of [...byRes.keys()].sort()) {
      const byName = byRes.get(res) as Map<string, Set<string>>;
      const unnamed = byName.get('') ?? new Set<string>();
      // verbs -> names; a named verb the unnamed rule already grants is dropped
      const namesByVerbs = new Map<string, string[]>();
      if (unnamed.size > 0) namesByVerbs.set(sortedUnique(unnamed).join(','), []);
      for (const [n, verbs] of byName) {
        if (n === '') continue;
        const left = [...verbs].filter((v) => !unnamed.has(v) && !unnamed.has('*'));
        if (left.length === 0) continue;
        const k = sortedUnique(left).join(',');
        const list = namesByVerbs.get(k) ?? [];
        list.push(n);
        namesByVerbs.set(k, list);
      }
      for (const [verbsKey, names] of namesByVerbs) {
        const namesSorted = sortedUnique(names);
        const k = `${verbsKey}|${namesSorted.join(',')}`;
        const m = merged.get(k) ?? { verbs: verbsKey.split(','), names: namesSorted, resources: [] };
        m.resources.push(res);
        merged.set(k, m);
      }
    }
    const rulesOfGroup = [...merged.values()].map((m) => {
      const rule: PolicyRule = { verbs: m.verbs, apiGroups: [g], resources: sortedUnique(m.resources) };
      if (m.names.length > 0) rule.resourceNames = m.names;
      return rule;
    });
    rulesOfGroup.sort((a, b) => ((a.resources ?? []).join(',') < (b.resources ?? []).join(',') ? -1 : 1));
    out.push(...rulesOfGroup);
  }
  const byVerbs = new Map<string, string[]>();
  for (const u of [...urls.keys()].sort()) {
    const k = sortedUnique(urls.get(u) ?? []).join(',');
    const list = byVerbs.get(k) ?? [];
    list.push(u);
    byVerbs.set(k, list);
  }
  for (const [k, list] of [...byVerbs].sort()) out.push({ verbs: k.split(','), nonResourceURLs: list });
  return out;
}
