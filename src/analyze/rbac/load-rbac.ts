/**
 * Loads what `kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml` prints:
 * a v1 List, several YAML documents, or single objects (JSON is YAML too). Every problem is
 * reported with its line and field; the checks follow kube-apiserver's
 * pkg/apis/rbac/validation/validation.go (ValidatePolicyRule, ValidateRoleBindingSubject, roleRef).
 */

import { type Document, LineCounter, parseAllDocuments } from 'yaml';
import { type Diagnostic, formatDiagnostic, UserError } from '../../model/errors.js';
import { yamlValue } from '../../model/yaml-input.js';
import {
  addRbacObject,
  type ClusterRole,
  emptyRbac,
  type LabelSelector,
  type ObjectMeta,
  type PolicyRule,
  RBAC_API_VERSION,
  RBAC_GROUP,
  type RbacObject,
  type RbacSet,
  type RoleRef,
  type Subject,
} from './types.js';

export interface LoadRbacResult {
  rbac: RbacSet;
  diagnostics: Diagnostic[];
}

type Path = (string | number)[];
type Json = Record<string, unknown>;

const KINDS = new Set(['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding']);
// v1beta1/v1alpha1 have the same fields; clusters stopped serving them in 1.22 but old dumps have them.
const API_VERSIONS = new Set([RBAC_API_VERSION, `${RBAC_GROUP}/v1beta1`, `${RBAC_GROUP}/v1alpha1`]);

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function pathText(p: Path): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

class Checker {
  readonly diagnostics: Diagnostic[] = [];
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private lineOf(path: Path): number | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.lines.linePos(node.range[0]).line;
    }
    return undefined;
  }

  report(severity: 'error' | 'warning', path: Path, message: string, hint?: string): void {
    const line = this.lineOf(path);
    this.diagnostics.push({
      severity,
      code: 'KAUDIT_RBAC_INVALID',
      message,
      file: this.file,
      ...(line === undefined ? {} : { line }),
      ...(path.length > 0 ? { path: pathText(path) } : {}),
      ...(hint === undefined ? {} : { hint }),
    });
  }

  string(v: unknown, path: Path, required: boolean): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.report('error', path, 'required field is missing');
      return undefined;
    }
    if (typeof v !== 'string') {
      this.report('error', path, `expected a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    if (required && v === '') this.report('error', path, 'must not be empty');
    return v;
  }

  strings(v: unknown, path: Path): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.report('error', path, `expected a list of strings, got ${JSON.stringify(v)}`);
      return undefined;
    }
    const out: string[] = [];
    v.forEach((x, i) => {
      if (typeof x === 'string') out.push(x);
      else this.report('error', [...path, i], `expected a string, got ${JSON.stringify(x)}`);
    });
    return out;
  }

  stringMap(v: unknown, path: Path): Record<string, string> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) {
      this.report('error', path, 'expected a map of strings');
      return undefined;
    }
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string') out[k] = x;
      else this.report('error', [...path, k], `expected a string, got ${JSON.stringify(x)}`);
    }
    return out;
  }

  metadata(v: unknown, path: Path, namespaced: boolean): ObjectMeta | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'required field is missing');
      return undefined;
    }
    const name = this.string(v.name, [...path, 'name'], true);
    const namespace = this.string(v.namespace, [...path, 'namespace'], false);
    const labels = this.stringMap(v.labels, [...path, 'labels']);
    const annotations = this.stringMap(v.annotations, [...path, 'annotations']);
    if (name === undefined) return undefined;
    const meta: ObjectMeta = { name };
    if (namespaced) {
      if (namespace === undefined || namespace === '') {
        this.report(
          'warning',
          [...path, 'namespace'],
          'no namespace: taken as "default", as kubectl apply would',
        );
        meta.namespace = 'default';
      } else meta.namespace = namespace;
    }
    if (labels) meta.labels = labels;
    if (annotations) meta.annotations = annotations;
    return meta;
  }

  rule(v: unknown, path: Path, namespaced: boolean): PolicyRule | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'expected a rule (a map with verbs, apiGroups, resources ...)');
      return undefined;
    }
    const verbs = this.strings(v.verbs, [...path, 'verbs']);
    const apiGroups = this.strings(v.apiGroups, [...path, 'apiGroups']);
    const resources = this.strings(v.resources, [...path, 'resources']);
    const resourceNames = this.strings(v.resourceNames, [...path, 'resourceNames']);
    const nonResourceURLs = this.strings(v.nonResourceURLs, [...path, 'nonResourceURLs']);
    // validation.go ValidatePolicyRule
    if (verbs === undefined || verbs.length === 0) {
      this.report('error', [...path, 'verbs'], 'verbs must contain at least one value');
    }
    const hasURLs = (nonResourceURLs?.length ?? 0) > 0;
    if (hasURLs) {
      if (namespaced) {
        this.report(
          'error',
          [...path, 'nonResourceURLs'],
          'namespaced rules cannot apply to non-resource URLs',
        );
      }
      if ((apiGroups?.length ?? 0) > 0 || (resources?.length ?? 0) > 0) {
        this.report(
          'error',
          [...path, 'nonResourceURLs'],
          'rules cannot apply to both regular resources and non-resource URLs',
        );
      }
    } else {
      if ((apiGroups?.length ?? 0) === 0) {
        this.report(
          'error',
          [...path, 'apiGroups'],
          'resource rules must supply at least one api group',
          'the core group is ""',
        );
      }
      if ((resources?.length ?? 0) === 0) {
        this.report('error', [...path, 'resources'], 'resource rules must supply at least one resource');
      }
    }
    const rule: PolicyRule = { verbs: verbs ?? [] };
    if (apiGroups) rule.apiGroups = apiGroups;
    if (resources) rule.resources = resources;
    if (resourceNames) rule.resourceNames = resourceNames;
    if (nonResourceURLs) rule.nonResourceURLs = nonResourceURLs;
    return rule;
  }

  rules(v: unknown, path: Path, namespaced: boolean, required: boolean): PolicyRule[] {
    if (v === undefined || v === null) {
      if (required) return [];
      return [];
    }
    if (!Array.isArray(v)) {
      this.report('error', path, 'expected a list of rules');
      return [];
    }
    const out: PolicyRule[] = [];
    v.forEach((r, i) => {
      const rule = this.rule(r, [...path, i], namespaced);
      if (rule) out.push(rule);
    });
    return out;
  }

  selector(v: unknown, path: Path): LabelSelector | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'expected a label selector (matchLabels, matchExpressions)');
      return undefined;
    }
    const sel: LabelSelector = {};
    const ml = this.stringMap(v.matchLabels, [...path, 'matchLabels']);
    if (ml) sel.matchLabels = ml;
    if (v.matchExpressions !== undefined && v.matchExpressions !== null) {
      if (!Array.isArray(v.matchExpressions)) {
        this.report('error', [...path, 'matchExpressions'], 'expected a list');
      } else {
        sel.matchExpressions = [];
        v.matchExpressions.forEach((x, i) => {
          const p = [...path, 'matchExpressions', i];
          if (!isObj(x)) {
            this.report('error', p, 'expected {key, operator, values}');
            return;
          }
          const key = this.string(x.key, [...p, 'key'], true);
          const op = this.string(x.operator, [...p, 'operator'], true);
          const values = this.strings(x.values, [...p, 'values']) ?? [];
          if (op !== undefined && !['In', 'NotIn', 'Exists', 'DoesNotExist'].includes(op)) {
            this.report(
              'error',
              [...p, 'operator'],
              `unknown operator ${JSON.stringify(op)}`,
              'one of In, NotIn, Exists, DoesNotExist',
            );
            return;
          }
          // apimachinery ValidateLabelSelectorRequirement: In/NotIn need values, Exists/DoesNotExist forbid them.
          if ((op === 'In' || op === 'NotIn') && values.length === 0) {
            this.report('error', [...p, 'values'], `must be specified when operator is ${op}`);
          }
          if ((op === 'Exists' || op === 'DoesNotExist') && values.length > 0) {
            this.report('error', [...p, 'values'], `may not be specified when operator is ${op}`);
          }
          if (key !== undefined && op !== undefined) {
            sel.matchExpressions?.push({
              key,
              operator: op as 'In' | 'NotIn' | 'Exists' | 'DoesNotExist',
              ...(values.length > 0 ? { values } : {}),
            });
          }
        });
      }
    }
    return sel;
  }

  subject(v: unknown, path: Path, namespacedBinding: boolean): Subject | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'expected a subject {kind, name, namespace}');
      return undefined;
    }
    const kind = this.string(v.kind, [...path, 'kind'], true);
    const name = this.string(v.name, [...path, 'name'], true);
    const namespace = this.string(v.namespace, [...path, 'namespace'], false);
    const apiGroup = this.string(v.apiGroup, [...path, 'apiGroup'], false);
    if (kind === undefined || name === undefined) return undefined;
    // validation.go ValidateRoleBindingSubject
    if (kind === 'ServiceAccount') {
      if (apiGroup !== undefined && apiGroup !== '') {
        this.report(
          'error',
          [...path, 'apiGroup'],
          `must be "" for a ServiceAccount, not ${JSON.stringify(apiGroup)}`,
        );
      }
      if (!namespacedBinding && (namespace === undefined || namespace === '')) {
        // A ClusterRoleBinding's ServiceAccount without a namespace matches nobody (rule.go appliesToUser).
        this.report(
          'warning',
          [...path, 'namespace'],
          'a ServiceAccount subject without a namespace matches no one',
        );
      }
    } else if (kind === 'User' || kind === 'Group') {
      if (apiGroup !== undefined && apiGroup !== RBAC_GROUP) {
        this.report(
          'error',
          [...path, 'apiGroup'],
          `must be ${JSON.stringify(RBAC_GROUP)} for a ${kind}, not ${JSON.stringify(apiGroup)}`,
        );
      }
    } else {
      this.report(
        'error',
        [...path, 'kind'],
        `unknown subject kind ${JSON.stringify(kind)}`,
        'one of User, Group, ServiceAccount',
      );
      return undefined;
    }
    const s: Subject = { kind, name };
    if (namespace !== undefined && namespace !== '') s.namespace = namespace;
    if (kind !== 'ServiceAccount') s.apiGroup = RBAC_GROUP;
    return s;
  }

  roleRef(v: unknown, path: Path, clusterBinding: boolean): RoleRef | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'required field is missing');
      return undefined;
    }
    const kind = this.string(v.kind, [...path, 'kind'], true);
    const name = this.string(v.name, [...path, 'name'], true);
    const apiGroup = this.string(v.apiGroup, [...path, 'apiGroup'], false);
    if (apiGroup !== undefined && apiGroup !== RBAC_GROUP) {
      this.report(
        'error',
        [...path, 'apiGroup'],
        `must be ${JSON.stringify(RBAC_GROUP)}, not ${JSON.stringify(apiGroup)}`,
      );
    }
    if (kind === undefined || name === undefined) return undefined;
    if (clusterBinding ? kind !== 'ClusterRole' : kind !== 'Role' && kind !== 'ClusterRole') {
      this.report(
        'error',
        [...path, 'kind'],
        `${JSON.stringify(kind)} is not allowed`,
        clusterBinding ? 'a ClusterRoleBinding refers to a ClusterRole' : 'Role or ClusterRole',
      );
      return undefined;
    }
    return { apiGroup: RBAC_GROUP, kind: kind as 'Role' | 'ClusterRole', name };
  }

  subjects(v: unknown, path: Path, namespacedBinding: boolean): Subject[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.report('error', path, 'expected a list of subjects');
      return [];
    }
    const out: Subject[] = [];
    v.forEach((s, i) => {
      const x = this.subject(s, [...path, i], namespacedBinding);
      if (x) out.push(x);
    });
    return out;
  }

  object(v: unknown, path: Path): RbacObject | undefined {
    if (!isObj(v)) {
      this.report('error', path, 'expected a Kubernetes object (apiVersion, kind, metadata)');
      return undefined;
    }
    const kind = v.kind;
    if (typeof kind !== 'string' || !KINDS.has(kind)) {
      this.report(
        'error',
        [...path, 'kind'],
        `${kind === undefined ? 'no kind' : `kind ${JSON.stringify(kind)}`}: not an RBAC object`,
        'expected Role, ClusterRole, RoleBinding or ClusterRoleBinding (kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml)',
      );
      return undefined;
    }
    if (typeof v.apiVersion !== 'string' || !API_VERSIONS.has(v.apiVersion)) {
      this.report(
        'error',
        [...path, 'apiVersion'],
        `apiVersion ${JSON.stringify(v.apiVersion)} is not ${RBAC_API_VERSION}`,
      );
    }
    const namespaced = kind === 'Role' || kind === 'RoleBinding';
    const metadata = this.metadata(v.metadata, [...path, 'metadata'], namespaced);
    if (kind === 'Role' || kind === 'ClusterRole') {
      const rules = this.rules(v.rules, [...path, 'rules'], namespaced, true);
      let aggregationRule: ClusterRole['aggregationRule'];
      if (kind === 'ClusterRole' && v.aggregationRule !== undefined && v.aggregationRule !== null) {
        const ar = v.aggregationRule;
        const ap = [...path, 'aggregationRule'];
        if (!isObj(ar) || !Array.isArray(ar.clusterRoleSelectors)) {
          this.report('error', ap, 'expected {clusterRoleSelectors: [...]}');
        } else {
          aggregationRule = { clusterRoleSelectors: [] };
          ar.clusterRoleSelectors.forEach((s, i) => {
            const sel = this.selector(s, [...ap, 'clusterRoleSelectors', i]);
            if (sel) aggregationRule?.clusterRoleSelectors.push(sel);
          });
        }
      }
      if (!metadata) return undefined;
      if (kind === 'Role') {
        return {
          apiVersion: RBAC_API_VERSION,
          kind,
          metadata: { ...metadata, namespace: metadata.namespace ?? 'default' },
          rules,
        };
      }
      return {
        apiVersion: RBAC_API_VERSION,
        kind,
        metadata,
        rules,
        ...(aggregationRule ? { aggregationRule } : {}),
      };
    }
    const subjects = this.subjects(v.subjects, [...path, 'subjects'], kind === 'RoleBinding');
    const roleRef = this.roleRef(v.roleRef, [...path, 'roleRef'], kind === 'ClusterRoleBinding');
    if (!metadata || !roleRef) return undefined;
    if (kind === 'RoleBinding') {
      return {
        apiVersion: RBAC_API_VERSION,
        kind,
        metadata: { ...metadata, namespace: metadata.namespace ?? 'default' },
        subjects,
        roleRef,
      };
    }
    return { apiVersion: RBAC_API_VERSION, kind: 'ClusterRoleBinding', metadata, subjects, roleRef };
  }
}

/** Parses and checks one file; `diagnostics` holds every problem found, errors and warnings. */
export function loadRbac(text: string, file = '<rbac>'): LoadRbacResult {
  const rbac = emptyRbac();
  const diagnostics: Diagnostic[] = [];
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: false });
  const list = Array.isArray(docs) ? docs : [];
  let objects = 0;
  for (const doc of list) {
    for (const err of doc.errors) {
      const pos = err.linePos?.[0];
      diagnostics.push({
        severity: 'error',
        code: 'KAUDIT_RBAC_INVALID',
        message: `not YAML: ${err.message.split('\n')[0] ?? ''}`,
        file,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
      });
    }
    if (doc.errors.length > 0) continue;
    const expanded = yamlValue(doc);
    if ('error' in expanded) {
      diagnostics.push({ severity: 'error', code: 'KAUDIT_RBAC_INVALID', message: expanded.error, file });
      continue;
    }
    const value: unknown = expanded.value;
    if (value === null || value === undefined) continue;
    const c = new Checker(file, doc, lines);
    if (
      isObj(value) &&
      typeof value.kind === 'string' &&
      value.kind.endsWith('List') &&
      Array.isArray(value.items)
    ) {
      value.items.forEach((item, i) => {
        const o = c.object(item, ['items', i]);
        if (o) {
          addRbacObject(rbac, o);
          objects++;
        }
      });
    } else {
      const o = c.object(value, []);
      if (o) {
        addRbacObject(rbac, o);
        objects++;
      }
    }
    diagnostics.push(...c.diagnostics);
  }
  if (objects === 0 && !diagnostics.some((d) => d.severity === 'error')) {
    diagnostics.push({
      severity: 'error',
      code: 'KAUDIT_RBAC_INVALID',
      message: 'no Role, ClusterRole, RoleBinding or ClusterRoleBinding in the file',
      file,
    });
  }
  return { rbac, diagnostics };
}

/** loadRbac, throwing one UserError (KAUDIT_RBAC_INVALID) that lists every error. */
export function loadRbacOrThrow(text: string, file: string): { rbac: RbacSet; warnings: Diagnostic[] } {
  const { rbac, diagnostics } = loadRbac(text, file);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    throw new UserError(
      'KAUDIT_RBAC_INVALID',
      `${file} is not valid Kubernetes RBAC (${errors.length} problem${errors.length === 1 ? '' : 's'}):\n${errors.map(formatDiagnostic).join('\n')}`,
      { hint: 'kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o yaml > rbac.yaml' },
    );
  }
  return { rbac, warnings: diagnostics.filter((d) => d.severity !== 'error') };
}
