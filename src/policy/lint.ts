import type { Diagnostic } from '../model/errors.js';
import type { Level } from '../model/event.js';
import { LEVELS } from '../model/event.js';
import { evaluatePolicy } from './evaluate.js';
import {
  AUTHORIZATION_ONLY_VERBS,
  BUILTIN_RESOURCES,
  BUILTIN_SUBRESOURCES,
  CREATE_ONLY_RESOURCES,
  closest,
  REQUEST_VERBS,
  RESOURCE_VERBS,
  SENSITIVE_RESOURCES,
} from './known-api.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import type { GroupResources, Policy, PolicyRule } from './types.js';

const levelRank = (l: string): number => LEVELS.indexOf(l as Level);
const nonEmpty = (xs: readonly string[] | undefined): xs is string[] => xs !== undefined && xs.length > 0;

/** `outer` allows every value `inner` allows (an empty list allows everything). */
function listCovers(outer: readonly string[] | undefined, inner: readonly string[] | undefined): boolean {
  if (!nonEmpty(outer)) return true;
  return nonEmpty(inner) && inner.every((x) => outer.includes(x));
}

type RuleKind = 'any' | 'resource' | 'nonResource';
function kindOf(r: PolicyRule): RuleKind {
  if (nonEmpty(r.namespaces) || (r.resources ?? []).length > 0) return 'resource';
  if (nonEmpty(r.nonResourceURLs)) return 'nonResource';
  return 'any';
}

/** Every path matched by URL spec `inner` is matched by spec `outer`. */
function urlCovers(outer: string, inner: string): boolean {
  if (outer === '*' || outer === inner) return true;
  if (!outer.endsWith('*')) return false;
  const prefix = outer.replace(/\*+$/, '');
  return (inner === '*' ? '' : inner.replace(/\*+$/, '')).startsWith(prefix);
}

/** Every request for resource pattern `inner` is matched by resource pattern `outer` (checker.go semantics). */
function resourcePatternCovers(outer: string, inner: string): boolean {
  if (outer === '*' || outer === inner) return true;
  // checker.go: "*/*" matches no request (no subresource is named "*", no resource is named "*").
  if (outer.startsWith('*/')) {
    return outer !== '*/*' && inner.includes('/') && inner.slice(inner.indexOf('/')) === outer.slice(1);
  }
  if (outer.endsWith('/*')) {
    const base = outer.slice(0, -2);
    return inner === base || inner.startsWith(`${base}/`);
  }
  return false;
}

function groupCovers(outer: string, inner: string, f: PolicyFeatures): boolean {
  return outer === inner || (f.groupWildcard && outer === '*');
}

/** One resources entry of `outer` matches everything `inner` entry `gr`, pattern `res` (or all, if undefined) matches. */
function entryCovers(
  outer: GroupResources,
  inner: GroupResources,
  res: string | undefined,
  f: PolicyFeatures,
): boolean {
  if (!groupCovers(outer.group ?? '', inner.group ?? '', f)) return false;
  const outerRes = outer.resources ?? [];
  if (outerRes.length === 0) return true;
  if (
    nonEmpty(outer.resourceNames) &&
    !(res !== undefined && listCovers(outer.resourceNames, inner.resourceNames))
  )
    return false;
  if (res === undefined) return outerRes.includes('*') && !nonEmpty(outer.resourceNames);
  return outerRes.some((o) => resourcePatternCovers(o, res));
}

/** Whether every request rule `b` matches is also matched by rule `a` (so `a` first makes `b` dead). */
export function ruleCovers(a: PolicyRule, b: PolicyRule, f: PolicyFeatures = policyFeatures()): boolean {
  if (
    !listCovers(a.users, b.users) ||
    !listCovers(a.userGroups, b.userGroups) ||
    !listCovers(a.verbs, b.verbs)
  ) {
    return false;
  }
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === 'any') return true;
  if (ka !== kb) return false;
  if (ka === 'nonResource') {
    return (b.nonResourceURLs ?? []).every((u) => (a.nonResourceURLs ?? []).some((o) => urlCovers(o, u)));
  }
  if (!listCovers(a.namespaces, b.namespaces)) return false;
  const ar = a.resources ?? [];
  if (ar.length === 0) return true;
  const br = b.resources ?? [];
  if (br.length === 0) return false;
  return br.every((entry) => {
    const pats = entry.resources ?? [];
    if (pats.length === 0) return ar.some((o) => entryCovers(o, entry, undefined, f));
    return pats.every((p) => ar.some((o) => entryCovers(o, entry, p, f)));
  });
}

const MAX_PIECES = 4096;

/**
 * Splits a rule into rules that each allow one value per list (users, groups, verbs, namespaces, URLs,
 * resource patterns). Every list is an "any of", so the rule matches exactly the union of its pieces.
 * Undefined when there would be too many pieces to check.
 */
function splitRule(rule: PolicyRule): PolicyRule[] | undefined {
  let parts: PolicyRule[] = [rule];
  for (const key of ['users', 'userGroups', 'verbs', 'namespaces', 'nonResourceURLs'] as const) {
    parts = parts.flatMap((p) => {
      const values = p[key];
      return nonEmpty(values) ? values.map((v) => ({ ...p, [key]: [v] })) : [p];
    });
    if (parts.length > MAX_PIECES) return undefined;
  }
  parts = parts.flatMap((p) => {
    const entries = p.resources ?? [];
    if (entries.length === 0) return [p];
    return entries.flatMap((e) => {
      const res = e.resources ?? [];
      return res.length === 0
        ? [{ ...p, resources: [e] }]
        : res.map((r) => ({ ...p, resources: [{ ...e, resources: [r] }] }));
    });
  });
  return parts.length > MAX_PIECES ? undefined : parts;
}

function isCatchAll(r: PolicyRule): boolean {
  return !nonEmpty(r.users) && !nonEmpty(r.userGroups) && !nonEmpty(r.verbs) && kindOf(r) === 'any';
}

/** Whether a resources entry can match requests for group/resource[/subresource] (for some name). */
function entryCanMatch(
  gr: GroupResources,
  group: string,
  resource: string,
  subresource: string,
  f: PolicyFeatures,
): boolean {
  const g = gr.group ?? '';
  if (g !== group && !(f.groupWildcard && g === '*')) return false;
  const res = gr.resources ?? [];
  if (res.length === 0) return true;
  const combined = subresource === '' ? resource : `${resource}/${subresource}`;
  return res.some(
    (r) =>
      r === '*' ||
      r === combined ||
      (subresource !== '' && r === `*/${subresource}`) ||
      (r.endsWith('/*') && r.slice(0, -2) === resource),
  );
}

/** A rule's values on one dimension; undefined when it does not constrain it (matches any value). */
type Dimension = (r: PolicyRule) => readonly string[] | undefined;

const DIMENSIONS: readonly Dimension[] = [
  (r) => (nonEmpty(r.users) ? r.users : undefined),
  (r) => (nonEmpty(r.userGroups) ? r.userGroups : undefined),
  // A rule without resources or URLs matches every namespace.
  (r) => (nonEmpty(r.namespaces) && kindOf(r) === 'resource' ? r.namespaces : undefined),
  // API groups of its resources; `*` (or no resources) matches any.
  (r) => {
    const groups = (r.resources ?? []).map((e) => e.group ?? '');
    return groups.length === 0 || groups.includes('*') ? undefined : groups;
  },
];

/** The value a probe (or request) has on each dimension: the first one, which a covering rule must list. */
function probeValues(probe: PolicyRule): (string | undefined)[] {
  return [
    probe.users?.[0],
    probe.userGroups?.[0],
    probe.namespaces?.[0],
    probe.resources?.[0]?.group ?? undefined,
  ];
}

/**
 * Which rules could cover (or match) a rule or request, so that a policy of thousands of rules is
 * not checked pair by pair: a rule that lists users covers only requests of those users, and so on
 * for groups, namespaces and API groups. Candidates are a superset; ruleCovers/ruleMatches decide.
 */
class RuleIndex {
  private readonly unconstrained: number[][] = [];
  private readonly byValue: Map<string, number[]>[] = [];

  constructor(rules: readonly PolicyRule[]) {
    for (const values of DIMENSIONS) {
      const any: number[] = [];
      const by = new Map<string, number[]>();
      rules.forEach((r, i) => {
        const vs = values(r);
        if (vs === undefined) any.push(i);
        else
          for (const v of new Set(vs)) {
            const list = by.get(v);
            if (list === undefined) by.set(v, [i]);
            else list.push(i);
          }
      });
      this.unconstrained.push(any);
      this.byValue.push(by);
    }
  }

  /** Indices below `k`, ascending, of the rules that may cover `probe` (or match a request like it). */
  candidates(probe: PolicyRule, k: number): number[] {
    let best: number[] | undefined;
    const values = probeValues(probe);
    for (const [d, any] of this.unconstrained.entries()) {
      const first = values[d];
      const named = first === undefined ? [] : (this.byValue[d]?.get(first) ?? []);
      if (best !== undefined && any.length + named.length >= best.length) continue;
      best = mergeBelow(any, named, k);
    }
    return best ?? [];
  }
}

/** Two ascending lists merged, only values below `k`. */
function mergeBelow(a: readonly number[], b: readonly number[], k: number): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  for (;;) {
    const x = a[i] ?? k;
    const y = b[j] ?? k;
    if (x >= k && y >= k) return out;
    if (x <= y) {
      out.push(x);
      i++;
      if (x === y) j++;
    } else {
      out.push(y);
      j++;
    }
  }
}

/** The first of `candidates` (ascending rule indices) for which `test` holds, or -1. */
function firstOf(
  rules: readonly PolicyRule[],
  candidates: readonly number[],
  test: (r: PolicyRule) => boolean,
): number {
  for (const i of candidates) {
    const r = rules[i];
    if (r !== undefined && test(r)) return i;
  }
  return -1;
}

function warning(code: string, path: string, message: string, hint: string): Diagnostic {
  return { severity: 'warning', code, path, message, hint };
}

/** Of `verbs`, those with which a request narrowed to `probe` still reaches rule `k` (no earlier rule takes all of it). */
function verbsReaching(
  policy: Policy,
  index: RuleIndex,
  k: number,
  probe: PolicyRule,
  verbs: readonly string[],
  f: PolicyFeatures,
): string[] {
  const candidates = index.candidates(probe, k);
  return verbs.filter((v) => {
    const narrowed: PolicyRule = { ...probe, verbs: [v] };
    return firstOf(policy.rules, candidates, (earlier) => ruleCovers(earlier, narrowed, f)) < 0;
  });
}

function describeLevelOf(policy: Policy, rule: number | null): string {
  return rule === null ? 'no rule (not logged)' : `rules[${rule}] (${policy.rules[rule]?.level})`;
}

const POD_SUBRESOURCES: readonly { sub: string; verb: string }[] = [
  { sub: 'exec', verb: 'create' },
  { sub: 'attach', verb: 'create' },
  { sub: 'portforward', verb: 'create' },
  { sub: 'log', verb: 'get' },
];

/**
 * Problems beyond validity: dead rules, missing catch-all, doubled volume, secrets in bodies, huge list
 * bodies, `pods` without its subresources, and names that look like typos. Pure; positions come from the loader.
 */
export function lintPolicy(policy: Policy, f: PolicyFeatures = policyFeatures()): Diagnostic[] {
  const out: Diagnostic[] = [];
  const rules = policy.rules;
  const index = new RuleIndex(rules);

  rules.forEach((rule, j) => {
    const i = firstOf(rules, index.candidates(rule, j), (e) => ruleCovers(e, rule, f));
    if (i >= 0) {
      out.push(
        warning(
          'KAUDIT_LINT_SHADOWED',
          `rules[${j}]`,
          `rules[${j}] can never match: rules[${i}] comes first and matches every request it would`,
          rules[i]?.level === rule.level
            ? `rules[${i}] already logs these requests at ${rule.level}; delete rules[${j}]`
            : `move rules[${j}] above rules[${i}], or narrow rules[${i}]`,
        ),
      );
      return;
    }
    // Several earlier rules may take a piece each (one verb, one resource, ...) and together all of it.
    const pieces = splitRule(rule);
    if (pieces === undefined || pieces.length < 2) return;
    const takers = new Set<number>();
    for (const piece of pieces) {
      const k = firstOf(rules, index.candidates(piece, j), (e) => ruleCovers(e, piece, f));
      if (k < 0) return;
      takers.add(k);
    }
    const list = [...takers].sort((a, b) => a - b).map((k) => `rules[${k}]`);
    out.push(
      warning(
        'KAUDIT_LINT_SHADOWED',
        `rules[${j}]`,
        `rules[${j}] can never match: between them ${list.join(', ')} come first and match every request it would`,
        `move rules[${j}] above them, or delete it`,
      ),
    );
  });

  if (rules.length > 0 && !rules.some(isCatchAll)) {
    out.push(
      warning(
        'KAUDIT_LINT_NO_CATCH_ALL',
        `rules[${rules.length - 1}]`,
        'no catch-all rule: requests that match no rule are not audited at all',
        'end the policy with a rule that has only a level, e.g. "- level: Metadata"',
      ),
    );
  }

  if (!(policy.omitStages ?? []).includes('RequestReceived')) {
    const logging = rules.flatMap((r, i) =>
      levelRank(r.level) > 0 && !(r.omitStages ?? []).includes('RequestReceived') ? [i] : [],
    );
    if (logging.length > 0) {
      out.push(
        warning(
          'KAUDIT_LINT_REQUEST_RECEIVED',
          policy.omitStages ? 'omitStages' : `rules[${logging[0]}]`,
          `RequestReceived is not omitted for ${logging.map((i) => `rules[${i}]`).join(', ')}: every request is written twice (RequestReceived and ResponseComplete)`,
          'add "omitStages: [RequestReceived]" at the top of the policy',
        ),
      );
    }
  }

  // Pod subresources some rule names: requests for them are not what a bare "pods" misses.
  const named = new Set(
    rules.flatMap((r) =>
      (r.resources ?? []).flatMap((x) =>
        (x.resources ?? []).filter((p) => p.startsWith('pods/') || p.startsWith('*/')),
      ),
    ),
  );
  rules.forEach((rule, k) => {
    const kind = kindOf(rule);
    if (kind === 'nonResource') return;
    const level = levelRank(rule.level);
    const ruleVerbs = nonEmpty(rule.verbs) ? rule.verbs : [...RESOURCE_VERBS];
    const entries = rule.resources ?? [];
    const base: PolicyRule = { level: rule.level };
    if (rule.users) base.users = rule.users;
    if (rule.userGroups) base.userGroups = rule.userGroups;
    if (rule.namespaces) base.namespaces = rule.namespaces;

    if (level >= levelRank('Request')) {
      for (const s of SENSITIVE_RESOURCES) {
        if (
          entries.length > 0 &&
          !entries.some((e) => entryCanMatch(e, s.group, s.resource, s.subresource, f))
        )
          continue;
        // At Request only bodies of writes hold the data; at RequestResponse every response does.
        const candidates = (
          rule.level === 'RequestResponse'
            ? ruleVerbs
            : ruleVerbs.filter((v) => ['create', 'update', 'patch'].includes(v))
        ).filter((v) => s.verbs === undefined || s.verbs.includes(v));
        const probe: PolicyRule = { ...base, resources: [{ group: s.group, resources: [s.label] }] };
        const verbs = verbsReaching(policy, index, k, probe, candidates, f);
        if (verbs.length === 0) continue;
        // A TokenRequest's request body is only its spec; the token itself is in the response.
        const responseOnly = s.label === 'serviceaccounts/token' && rule.level === 'Request';
        const finding = warning(
          'KAUDIT_LINT_SENSITIVE_BODY',
          `rules[${k}]`,
          responseOnly
            ? `rules[${k}] logs ${s.label} at Request (verbs ${verbs.join(', ')}): only the TokenRequest spec is logged, but raising this rule to RequestResponse would log the issued tokens`
            : `rules[${k}] logs ${s.label} at ${rule.level} (verbs ${verbs.join(', ')}): their ${rule.level === 'Request' ? 'request' : 'request and response'} bodies carry secret data or tokens into the audit log`,
          `add before rules[${k}] a rule "- level: Metadata" with resources: [{group: "${s.group}", resources: ["${s.label}"]}]`,
        );
        out.push(responseOnly ? { ...finding, severity: 'info' } : finding);
      }
    }

    const createOnly =
      entries.length > 0 &&
      entries.every(
        (e) =>
          (e.resources ?? []).length > 0 && (e.resources ?? []).every((r) => CREATE_ONLY_RESOURCES.has(r)),
      );
    if (rule.level === 'RequestResponse' && !createOnly) {
      const candidates = ruleVerbs.filter((v) => v === 'list' || v === 'watch');
      const verbs = verbsReaching(
        policy,
        index,
        k,
        { ...base, ...(entries.length > 0 ? { resources: entries } : {}) },
        candidates,
        f,
      );
      if (verbs.length > 0) {
        out.push(
          warning(
            'KAUDIT_LINT_LIST_BODIES',
            `rules[${k}]`,
            `rules[${k}] logs ${verbs.join(' and ')} at RequestResponse: each list response holds every object listed, which makes the largest events in the log`,
            `add before rules[${k}] a rule at Request or Metadata with verbs: [${verbs.join(', ')}] for the same resources`,
          ),
        );
      }
    }

    entries.forEach((gr, e) => {
      const group = gr.group ?? '';
      if (group !== '' && !(f.groupWildcard && group === '*')) return;
      const res = gr.resources ?? [];
      if (!res.includes('pods') || res.includes('pods/*') || res.includes('*')) return;
      const namespace =
        rule.namespaces?.find((n) => n !== '') ?? (nonEmpty(rule.namespaces) ? undefined : 'default');
      if (namespace === undefined) return;
      const fallsTo: string[] = [];
      for (const { sub, verb } of POD_SUBRESOURCES) {
        if (named.has(`pods/${sub}`) || named.has(`*/${sub}`)) continue;
        if (nonEmpty(rule.verbs) && !rule.verbs.includes(verb)) continue;
        const group = rule.userGroups?.[0];
        const username = rule.users?.[0] ?? 'someone';
        // Only the rules that can match this user, group and namespace are evaluated, in order.
        const matching = index.candidates(
          {
            level: rule.level,
            users: [username],
            userGroups: [group ?? 'system:authenticated'],
            namespaces: [namespace],
            resources: [{ group: '', resources: [`pods/${sub}`] }],
          },
          rules.length,
        );
        const decided = evaluatePolicy(
          { ...policy, rules: matching.map((i) => rules[i] as PolicyRule) },
          {
            user: {
              username,
              groups: group === undefined ? ['system:authenticated'] : [group],
            },
            verb,
            namespace,
            apiGroup: '',
            apiVersion: 'v1',
            resource: 'pods',
            subresource: sub,
            name: gr.resourceNames?.[0] ?? 'a-pod',
            resourceRequest: true,
            path: `/api/v1/namespaces/${namespace}/pods/a-pod/${sub}`,
          },
          f,
        );
        const decision = {
          ...decided,
          rule: decided.rule === null ? null : (matching[decided.rule] ?? null),
        };
        if (levelRank(decision.level) < level)
          fallsTo.push(`pods/${sub} → ${describeLevelOf(policy, decision.rule)}`);
      }
      if (fallsTo.length > 0) {
        out.push(
          warning(
            'KAUDIT_LINT_PODS_SUBRESOURCES',
            `rules[${k}].resources[${e}].resources`,
            `"pods" does not match pod subresources, so they are logged below ${rule.level}: ${fallsTo.join('; ')}`,
            'write "pods/*" to cover pods and all its subresources, or list "pods/exec", "pods/log", ... explicitly',
          ),
        );
      }
    });
  });

  rules.forEach((rule, k) => {
    for (const field of ['verbs', 'users', 'userGroups', 'namespaces'] as const) {
      (rule[field] ?? []).forEach((v, n) => {
        if (v === '*') {
          out.push(
            warning(
              'KAUDIT_LINT_NOT_A_WILDCARD',
              `rules[${k}].${field}[${n}]`,
              `"*" is not a wildcard in ${field}: it only matches the literal value "*"`,
              `drop ${field} to match every value`,
            ),
          );
        }
      });
    }
    (rule.verbs ?? []).forEach((v, n) => {
      if (v === '*' || (REQUEST_VERBS as readonly string[]).includes(v)) return;
      const at = `rules[${k}].verbs[${n}]`;
      if ((AUTHORIZATION_ONLY_VERBS as readonly string[]).includes(v)) {
        out.push(
          warning(
            'KAUDIT_LINT_UNKNOWN_VERB',
            at,
            `"${v}" is an RBAC verb that no request carries, so it never matches`,
            'audit rules see request verbs: get, list, watch, create, update, patch, delete, deletecollection',
          ),
        );
        return;
      }
      const near = closest(v, REQUEST_VERBS);
      out.push(
        warning(
          'KAUDIT_LINT_UNKNOWN_VERB',
          at,
          `unknown verb "${v}" never matches`,
          near ? `did you mean "${near}"?` : `request verbs are ${REQUEST_VERBS.join(', ')}`,
        ),
      );
    });
    (rule.resources ?? []).forEach((gr, e) => {
      const group = gr.group ?? '';
      const known = BUILTIN_RESOURCES[group];
      (gr.resources ?? []).forEach((res, n) => {
        const at = `rules[${k}].resources[${e}].resources[${n}]`;
        const [base = '', sub] = res.split('/', 2);
        if (base !== '*' && known && !known.includes(base)) {
          const home = Object.entries(BUILTIN_RESOURCES).find(
            ([g, list]) => g !== 'metrics.k8s.io' && g !== group && list.includes(base),
          )?.[0];
          const near = closest(base, known);
          if (home !== undefined && near === undefined) {
            out.push(
              warning(
                'KAUDIT_LINT_WRONG_GROUP',
                at,
                `"${base}" is not served by the ${group === '' ? 'core' : `"${group}"`} group, so this entry never matches it`,
                `put it in a resources entry with group: "${home}"`,
              ),
            );
          } else if (near !== undefined || base !== base.toLowerCase()) {
            out.push(
              warning(
                'KAUDIT_LINT_UNKNOWN_RESOURCE',
                at,
                `unknown resource "${base}" in the ${group === '' ? 'core' : `"${group}"`} group never matches`,
                near ? `did you mean "${near}"?` : 'resource names are lower-case plurals, e.g. "pods"',
              ),
            );
          }
        }
        if (sub !== undefined && sub !== '*' && !(BUILTIN_SUBRESOURCES as readonly string[]).includes(sub)) {
          const near = closest(sub, BUILTIN_SUBRESOURCES);
          if (near) {
            out.push(
              warning(
                'KAUDIT_LINT_UNKNOWN_RESOURCE',
                at,
                `unknown subresource "${sub}" never matches`,
                `did you mean "${base}/${near}"?`,
              ),
            );
          }
        }
      });
    });
  });

  return out;
}
