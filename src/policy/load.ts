import { Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { type Diagnostic, formatDiagnostic, UserError } from '../model/errors.js';
import { isRecord } from '../model/json.js';
import { yamlValue } from '../model/yaml-input.js';
import { type PolicyFeatures, policyFeatures } from './kube-version.js';
import type { GroupResources, Policy, PolicyRule } from './types.js';
import { validatePolicy } from './validate.js';

export interface LoadOptions {
  /** Shown in diagnostics. */
  file?: string;
  features?: PolicyFeatures;
  /** Accept a bare YAML list of rules (a fragment that a template wraps into a Policy). */
  fragment?: boolean;
}

/** One policy read from a file. A ConfigMap file yields one per `data` entry. */
export interface LoadedPolicy {
  /** The ConfigMap data key the policy came from, if any. */
  entry?: string;
  /** Null when the document cannot be decoded at all. */
  policy: Policy | null;
  /** Loader and validation problems, with positions. `error`s mean kube-apiserver refuses the file. */
  diagnostics: Diagnostic[];
  /** Maps a field path such as `rules[3].verbs` to its position in the file. */
  locate: (path: string) => { line: number; column: number } | undefined;
}

const POLICY_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'rules', 'omitStages', 'omitManagedFields']);
const RULE_FIELDS = new Set([
  'level',
  'users',
  'userGroups',
  'verbs',
  'resources',
  'namespaces',
  'nonResourceURLs',
  'omitStages',
  'omitManagedFields',
]);
const RESOURCE_FIELDS = new Set(['group', 'resources', 'resourceNames']);
export const POLICY_API_VERSION = 'audit.k8s.io/v1';
const REMOVED_API_VERSIONS = new Set(['audit.k8s.io/v1beta1', 'audit.k8s.io/v1alpha1']);

type Segment = string | number;

export function parsePath(path: string): Segment[] {
  const out: Segment[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[1] !== undefined) out.push(m[1]);
    else out.push(Number(m[2]));
  }
  return out;
}

/** Offset in the text of the deepest node on `segments` that exists: the key of a map field, the item of a list. */
function offsetOf(root: unknown, segments: readonly Segment[]): number | undefined {
  let node: unknown = root;
  let best: number | undefined = rangeStart(root);
  for (const seg of segments) {
    if (typeof seg === 'number' && isSeq(node)) {
      node = node.items[seg];
      best = rangeStart(node) ?? best;
    } else if (typeof seg === 'string' && isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      best = rangeStart(pair.key) ?? best;
      node = pair.value;
    } else {
      break;
    }
    if (node === undefined || node === null) break;
  }
  return best;
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const r = (node as Node).range;
    return r?.[0];
  }
  return undefined;
}

class Decoder {
  readonly diagnostics: Diagnostic[] = [];

  problem(severity: 'error' | 'warning', code: string, path: string, message: string, hint?: string): void {
    const d: Diagnostic = { severity, code, path, message };
    if (hint !== undefined) d.hint = hint;
    this.diagnostics.push(d);
  }

  typeError(path: string, want: string, got: unknown): void {
    const hint =
      typeof got === 'boolean' || typeof got === 'number'
        ? 'quote the value: kube-apiserver reads YAML 1.1, where no, yes, on, off and numbers are not strings'
        : undefined;
    this.problem('error', 'KAUDIT_POLICY_TYPE', path, `expected ${want}, found ${describe(got)}`, hint);
  }

  unknownFields(
    obj: Record<string, unknown>,
    known: ReadonlySet<string>,
    at: string,
    hint?: (k: string) => string | undefined,
  ): void {
    for (const k of Object.keys(obj)) {
      if (known.has(k)) continue;
      const path = at === '' ? k : `${at}.${k}`;
      // kube-apiserver (1.26+) decodes strictly, logs the error and retries leniently, dropping the field.
      this.problem(
        'warning',
        'KAUDIT_POLICY_UNKNOWN_FIELD',
        path,
        `unknown field ${JSON.stringify(k)}: kube-apiserver ignores it`,
        hint?.(k) ?? caseHint(k, known) ?? `known fields here: ${[...known].join(', ')}`,
      );
    }
  }

  strings(v: unknown, path: string): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.typeError(path, 'a list of strings', v);
      return undefined;
    }
    const out: string[] = [];
    v.forEach((x, i) => {
      // Go's JSON decoding leaves a null list element as the empty string.
      if (x === null) out.push('');
      else if (typeof x === 'string') out.push(x);
      else this.typeError(`${path}[${i}]`, 'a string', x);
    });
    return out;
  }

  string(v: unknown, path: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string') return v;
    this.typeError(path, 'a string', v);
    return undefined;
  }

  /** A map whose fields outside `known` are warned about; undefined when absent or not a map (reported). */
  map(
    v: unknown,
    path: string,
    want: string,
    known: ReadonlySet<string>,
    hint: (k: string) => string | undefined,
  ): Record<string, unknown> | undefined {
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) {
      this.typeError(path, want, v);
      return undefined;
    }
    this.unknownFields(v, known, path, hint);
    return v;
  }

  bool(v: unknown, path: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'boolean') return v;
    this.typeError(path, 'true or false', v);
    return undefined;
  }

  resources(v: unknown, path: string): GroupResources[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) {
      this.typeError(path, 'a list of {group, resources, resourceNames}', v);
      return undefined;
    }
    return v.map((entry: unknown, j) => {
      const at = `${path}[${j}]`;
      const gr: GroupResources = {};
      const x = this.map(entry, at, 'a map', RESOURCE_FIELDS, (k) =>
        RULE_FIELDS.has(k)
          ? `"${k}" belongs to the rule, not to a resources entry; as written the rule is not restricted by it — move it up one level`
          : undefined,
      );
      if (!x) return gr;
      const group = this.string(x.group, `${at}.group`);
      if (group !== undefined) gr.group = group;
      const resources = this.strings(x.resources, `${at}.resources`);
      if (resources) gr.resources = resources;
      const names = this.strings(x.resourceNames, `${at}.resourceNames`);
      if (names) gr.resourceNames = names;
      return gr;
    });
  }

  rule(v: unknown, at: string): PolicyRule {
    const rule: PolicyRule = { level: '' };
    const x = this.map(v, at, 'a rule (a map)', RULE_FIELDS, (k) =>
      RESOURCE_FIELDS.has(k)
        ? `"${k}" belongs inside a resources entry: resources: [{${k}: ...}]`
        : undefined,
    );
    if (!x) return rule;
    const level = this.string(x.level, `${at}.level`);
    if (level !== undefined) rule.level = level;
    for (const key of [
      'users',
      'userGroups',
      'verbs',
      'namespaces',
      'nonResourceURLs',
      'omitStages',
    ] as const) {
      const list = this.strings(x[key], `${at}.${key}`);
      if (list) rule[key] = list;
    }
    const resources = this.resources(x.resources, `${at}.resources`);
    if (resources) rule.resources = resources;
    const omf = this.bool(x.omitManagedFields, `${at}.omitManagedFields`);
    if (omf !== undefined) rule.omitManagedFields = omf;
    return rule;
  }

  policy(x: Record<string, unknown>, features: PolicyFeatures): Policy {
    this.unknownFields(x, POLICY_FIELDS, '');
    const policy: Policy = { rules: [] };
    const apiVersion = x.apiVersion;
    if (apiVersion === undefined || apiVersion === null) {
      this.problem(
        'error',
        'KAUDIT_POLICY_API_VERSION',
        'apiVersion',
        'apiVersion is missing',
        `add apiVersion: ${POLICY_API_VERSION}`,
      );
    } else if (typeof apiVersion !== 'string') {
      this.typeError('apiVersion', 'a string', apiVersion);
    } else {
      policy.apiVersion = apiVersion;
      if (REMOVED_API_VERSIONS.has(apiVersion)) {
        if (features.v1Only) {
          this.problem(
            'error',
            'KAUDIT_POLICY_API_VERSION',
            'apiVersion',
            `${apiVersion} was removed in Kubernetes 1.24; kube-apiserver only loads ${POLICY_API_VERSION}`,
            `change apiVersion to ${POLICY_API_VERSION} (the fields are the same), or check against an older server with --kubernetes-version 1.23`,
          );
        }
      } else if (apiVersion !== POLICY_API_VERSION) {
        this.problem(
          'error',
          'KAUDIT_POLICY_API_VERSION',
          'apiVersion',
          `unknown apiVersion ${JSON.stringify(apiVersion)}`,
          `use apiVersion: ${POLICY_API_VERSION}`,
        );
      }
    }
    if (x.kind === undefined || x.kind === null) {
      this.problem('error', 'KAUDIT_POLICY_KIND', 'kind', 'kind is missing', 'add kind: Policy');
    } else if (x.kind !== 'Policy') {
      this.problem(
        'error',
        'KAUDIT_POLICY_KIND',
        'kind',
        `kind is ${JSON.stringify(x.kind)}, not Policy`,
        'use kind: Policy',
      );
    } else {
      policy.kind = 'Policy';
    }
    if (x.metadata !== undefined && x.metadata !== null) {
      if (isRecord(x.metadata)) policy.metadata = x.metadata;
      else this.typeError('metadata', 'a map', x.metadata);
    }
    if (x.rules !== undefined && x.rules !== null) {
      if (Array.isArray(x.rules)) policy.rules = x.rules.map((r: unknown, i) => this.rule(r, `rules[${i}]`));
      else this.typeError('rules', 'a list of rules', x.rules);
    }
    const stages = this.strings(x.omitStages, 'omitStages');
    if (stages) policy.omitStages = stages;
    const omf = this.bool(x.omitManagedFields, 'omitManagedFields');
    if (omf !== undefined) policy.omitManagedFields = omf;
    if (
      !features.omitManagedFields &&
      (omf !== undefined || policy.rules.some((r) => r.omitManagedFields !== undefined))
    ) {
      this.problem(
        'warning',
        'KAUDIT_POLICY_UNKNOWN_FIELD',
        'omitManagedFields',
        'omitManagedFields needs Kubernetes 1.23 or newer; older servers ignore it',
      );
    }
    return policy;
  }
}

function caseHint(k: string, known: ReadonlySet<string>): string | undefined {
  const match = [...known].find((x) => x.toLowerCase() === k.toLowerCase());
  return match === undefined ? undefined : `field names are case-sensitive: did you mean "${match}"?`;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

type Position = { line: number; column: number };

/** Decodes one YAML text. `shift` maps a position in this text to the file (for ConfigMap entries). */
function loadText(
  text: string,
  opts: LoadOptions,
  shift: (p: Position) => Position,
  entry?: string,
): LoadedPolicy[] {
  const features = opts.features ?? policyFeatures();
  const lineCounter = new LineCounter();
  // kube-apiserver converts YAML with go-yaml v2, which follows YAML 1.1 (unquoted no/yes/on/off are booleans).
  const docs = parseAllDocuments(text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
    version: '1.1',
  });
  const all = Array.isArray(docs) ? docs : [];
  const doc = all[0] ?? new Document(null);
  const where = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const p = lineCounter.linePos(offset);
    return shift({ line: p.line, column: p.col });
  };
  const decoder = new Decoder();
  let isFragment = false;
  const locate = (path: string): Position | undefined => {
    const segs = parsePath(path);
    return where(offsetOf(doc.contents, isFragment && segs[0] === 'rules' ? segs.slice(1) : segs));
  };
  const finish = (policy: Policy | null): LoadedPolicy[] => {
    const diagnostics = decoder.diagnostics.map((d) => {
      const pos = d.line === undefined && d.path !== undefined ? locate(d.path) : undefined;
      const withFile: Diagnostic =
        opts.file === undefined ? { ...d } : { ...d, file: entry ? `${opts.file}#${entry}` : opts.file };
      return pos ? { ...withFile, line: pos.line, column: pos.column } : withFile;
    });
    const loaded: LoadedPolicy = { policy, diagnostics, locate };
    if (entry !== undefined) loaded.entry = entry;
    return [loaded];
  };

  if (all.length > 1) {
    // kube-apiserver's YAML-to-JSON step reads only the first document of a file.
    const second = all[1]?.range[0];
    decoder.diagnostics.push({
      severity: 'warning',
      code: 'KAUDIT_POLICY_MULTIPLE_DOCUMENTS',
      message: `the file holds ${all.length} YAML documents; kube-apiserver reads only the first`,
      hint: 'keep one policy per file',
      ...where(second),
    });
  }
  for (const e of doc.errors) {
    const pos = where(e.pos[0]);
    const message = e.message.split('\n')[0] ?? e.message;
    if (e.code === 'DUPLICATE_KEY') {
      // kube-apiserver's strict decoding rejects duplicate fields, then its lenient retry keeps the last value.
      decoder.diagnostics.push({
        severity: 'warning',
        code: 'KAUDIT_POLICY_DUPLICATE_FIELD',
        message: `${message}; kube-apiserver keeps the last value`,
        ...pos,
      });
    } else {
      decoder.diagnostics.push({ severity: 'error', code: 'KAUDIT_POLICY_YAML', message, ...pos });
    }
  }
  if (decoder.diagnostics.some((d) => d.severity === 'error')) return finish(null);
  const expanded = yamlValue(doc);
  if ('error' in expanded) {
    decoder.diagnostics.push({ severity: 'error', code: 'KAUDIT_POLICY_YAML', message: expanded.error });
    return finish(null);
  }
  const value: unknown = expanded.value;
  if (value === null || value === undefined) {
    decoder.problem(
      'error',
      'KAUDIT_POLICY_EMPTY',
      '',
      'the policy file is empty',
      `write an ${POLICY_API_VERSION} Policy with at least one rule`,
    );
    return finish(null);
  }
  if (Array.isArray(value)) {
    if (!opts.fragment) {
      decoder.problem(
        'error',
        'KAUDIT_POLICY_FRAGMENT',
        '',
        'this file is a list of rules, not a Policy; kube-apiserver cannot load it',
        'wrap it as apiVersion: audit.k8s.io/v1, kind: Policy, rules: [...], or pass --fragment to check the rules alone',
      );
      return finish(null);
    }
    isFragment = true;
    return finish(decoder.policy({ apiVersion: POLICY_API_VERSION, kind: 'Policy', rules: value }, features));
  }
  if (!isRecord(value)) {
    decoder.typeError('', 'a Policy (a map)', value);
    return finish(null);
  }
  if (value.kind === 'ConfigMap' && entry === undefined)
    return loadConfigMap(doc.contents, value, text, lineCounter, opts, decoder, finish);
  const policy = decoder.policy(value, features);
  decoder.diagnostics.push(...validatePolicy(policy, features));
  if (policy.rules.length === 0) {
    // reader.go rejects a policy with zero rules, though ValidatePolicy accepts it.
    decoder.problem(
      'error',
      'KAUDIT_POLICY_NO_RULES',
      'rules',
      'the policy has no rules; kube-apiserver refuses to load it',
      'add at least one rule, e.g. - level: Metadata',
    );
  }
  return finish(policy);
}

/** A ConfigMap whose data entries are policies (as OpenShift ships them): each entry is loaded on its own. */
function loadConfigMap(
  root: unknown,
  value: Record<string, unknown>,
  text: string,
  lineCounter: LineCounter,
  opts: LoadOptions,
  decoder: Decoder,
  finish: (p: Policy | null) => LoadedPolicy[],
): LoadedPolicy[] {
  const data = value.data;
  if (!isRecord(data) || Object.keys(data).length === 0 || !isMap(root)) {
    decoder.problem(
      'error',
      'KAUDIT_POLICY_KIND',
      'data',
      'this ConfigMap has no data entries holding a policy',
    );
    return finish(null);
  }
  const dataNode = root.get('data', true);
  const out: LoadedPolicy[] = [];
  let lines: string[] | undefined;
  for (const [key, v] of Object.entries(data)) {
    if (typeof v !== 'string' || !isMap(dataNode)) continue;
    const node = dataNode.get(key, true);
    let shift = (p: Position): Position => p;
    if (isScalar(node) && node.range && (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED')) {
      // Lines of a block scalar map one to one onto the file, shifted by the header line and the indent.
      const header = lineCounter.linePos(node.range[0]).line;
      lines ??= text.split('\n');
      const firstLine = lines.slice(header).find((l) => l.trim() !== '') ?? '';
      const indent = firstLine.length - firstLine.trimStart().length;
      shift = (p) => ({ line: p.line + header, column: p.column + indent });
    } else if (isScalar(node) && node.range) {
      const at = lineCounter.linePos(node.range[0]);
      shift = () => ({ line: at.line, column: at.col });
    }
    out.push(...loadText(v, opts, shift, key));
  }
  return out;
}

/** Reads a policy file like kube-apiserver's loader: every problem at once, with line and column. */
export function loadPolicyText(text: string, opts: LoadOptions = {}): LoadedPolicy[] {
  return loadText(text, opts, (p) => p);
}

/** Loads exactly one valid policy or throws a UserError listing every problem. */
export function loadPolicyOrThrow(text: string, opts: LoadOptions & { entry?: string } = {}): Policy {
  const all = loadPolicyText(text, opts);
  const name = opts.file ?? 'policy';
  const chosen = opts.entry === undefined ? all : all.filter((p) => p.entry === opts.entry);
  if (chosen.length === 0) {
    throw new UserError('KAUDIT_POLICY_ENTRY', `${name} has no data entry ${JSON.stringify(opts.entry)}`, {
      hint: `entries: ${all.map((p) => p.entry).join(', ')}`,
    });
  }
  if (chosen.length > 1) {
    throw new UserError('KAUDIT_POLICY_ENTRY', `${name} is a ConfigMap with ${chosen.length} policies`, {
      hint: `choose one with --entry: ${chosen.map((p) => p.entry).join(', ')}`,
    });
  }
  const [one] = chosen;
  const errors = one?.diagnostics.filter((d) => d.severity === 'error') ?? [];
  if (!one?.policy || errors.length > 0) {
    throw new UserError(
      'KAUDIT_POLICY_INVALID',
      `${name} is not a valid audit policy:\n${errors.map(formatDiagnostic).join('\n')}`,
      {
        hint: `run kaudit policy lint ${name} for details`,
      },
    );
  }
  return one.policy;
}
