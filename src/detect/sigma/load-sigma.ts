/**
 * Loads Sigma rules (SigmaHQ format, specification v2) as kaudit detection rules: each Kubernetes
 * audit rule (`logsource: {product: kubernetes, service: audit}`) becomes a match rule, each
 * correlation rule (event_count, value_count, temporal, temporal_ordered) a threshold or sequence
 * rule over the rules it refers to. Nothing is dropped silently: a rule for another log source is
 * a warning (KAUDIT_SIGMA_SKIPPED), one that uses what kaudit cannot do an error
 * (KAUDIT_SIGMA_UNSUPPORTED) with the reason, a malformed one an error (KAUDIT_SIGMA_INVALID);
 * each names the file, line and field. One bad rule costs only that rule.
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { z } from 'zod';
import type { Diagnostic } from '../../model/errors.js';
import { diagnostic, type ValidateContext, validate } from '../../model/schema-diagnostics.js';
import { type FieldPath, readYamlDocuments, type YamlInput } from '../../model/yaml-input.js';
import type { Condition } from '../condition.js';
import { duplicateIds, type LoadedRules, MAX_RULE_FILE_BYTES, ruleFiles } from '../load-rules.js';
import { emptyAllowlist, parseDuration, type Rule, type Severity } from '../rule.js';
import { attackTags } from './attack-tags.js';
import { compileDetection, type DetectionProblem } from './compile-detection.js';
import { mapSigmaField } from './field-map.js';

export const SIGMA_INVALID = 'KAUDIT_SIGMA_INVALID';
export const SIGMA_UNSUPPORTED = 'KAUDIT_SIGMA_UNSUPPORTED';
export const SIGMA_SKIPPED = 'KAUDIT_SIGMA_SKIPPED';
/** Rule files are small; a big one is a mistake (an audit log named as rules), not worth parsing. */
/** Sigma rule files are small; a bigger one is a mistake (an audit log given as rules). */
export const MAX_SIGMA_FILE_BYTES = MAX_RULE_FILE_BYTES;

const LEVELS: Readonly<Record<string, Severity>> = {
  informational: 'info',
  low: 'low',
  medium: 'medium',
  high: 'high',
  critical: 'critical',
};

const strings = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .default([]);

// Sigma rules carry more attributes (author, date, status, related, fields, ...); kaudit reads these.
const metaSchema = z.object({
  title: z.string().min(1),
  id: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  description: z.string().default(''),
  level: z.enum(Object.keys(LEVELS) as [string, ...string[]]).optional(),
  tags: strings,
  references: strings,
  falsepositives: strings,
});

const logsourceSchema = z.object({
  product: z.string().optional(),
  service: z.string().optional(),
  category: z.string().optional(),
});

// Strict: a key kaudit does not know (`ordered` of a draft of the specification, a typo) would
// change what the correlation means if it were ignored.
const correlationSchema = z.strictObject({
  type: z.enum(['event_count', 'value_count', 'temporal', 'temporal_ordered']),
  rules: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  'group-by': z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  timespan: z.string().min(1),
  condition: z.record(z.string(), z.unknown()).optional(),
  generate: z.boolean().optional(),
  aliases: z.unknown().optional(),
});

interface Doc {
  file: string;
  /** Position of the document in its file, for rules without an id. */
  index: number;
  input: YamlInput;
  value: Record<string, unknown>;
}

/** A loaded Sigma detection rule, kept by id and name for correlations to find. */
interface Base {
  sigmaId: string | undefined;
  name: string | undefined;
  rule: Rule | undefined;
  /** Why it did not become a rule: skipped (another log source) or failed (its errors). */
  skipped?: string;
  failed?: string;
  correlation: boolean;
}

/** Sigma rules from the text of one file (a correlation finds its rules only in this text). */
export function loadSigmaText(text: string, file: string): LoadedRules {
  const diagnostics: Diagnostic[] = [];
  const docs = documents(text, file, diagnostics);
  const loaded = loadDocuments(docs);
  return { rules: loaded.rules, diagnostics: [...diagnostics, ...loaded.diagnostics] };
}

/** Sigma rules from files and directories (every `.yml`/`.yaml` below a directory). */
export function loadSigmaFiles(paths: readonly string[]): LoadedRules {
  const diagnostics: Diagnostic[] = [];
  const docs: Doc[] = [];
  for (const file of ruleFiles(paths, diagnostics, ['.yml', '.yaml'])) {
    let text: string;
    try {
      if (statSync(file).size > MAX_SIGMA_FILE_BYTES) {
        diagnostics.push({
          severity: 'error',
          code: 'KAUDIT_RULE_UNREADABLE',
          file,
          message: `larger than ${MAX_SIGMA_FILE_BYTES >> 20} MiB: not a Sigma rule file`,
          hint: 'an audit log given where rules were expected?',
        });
        continue;
      }
      text = readFileSync(file, 'utf8');
    } catch (err) {
      diagnostics.push({
        severity: 'error',
        code: 'KAUDIT_RULE_UNREADABLE',
        file,
        message: err instanceof Error ? err.message : String(err),
      });
      continue;
    }
    docs.push(...documents(text, file, diagnostics));
  }
  const loaded = loadDocuments(docs);
  return { rules: loaded.rules, diagnostics: [...diagnostics, ...loaded.diagnostics] };
}

function documents(text: string, file: string, diagnostics: Diagnostic[]): Doc[] {
  const out: Doc[] = [];
  readYamlDocuments(text, file).forEach((input, index) => {
    if (input.diagnostics.length > 0) {
      diagnostics.push(...input.diagnostics.map((d) => ({ ...d, code: SIGMA_INVALID })));
      return;
    }
    if (input.value === null || input.value === undefined) return; // an empty document
    if (typeof input.value !== 'object' || Array.isArray(input.value)) {
      diagnostics.push(report({ input, file }, [], 'a Sigma rule must be a mapping', SIGMA_INVALID));
      return;
    }
    out.push({ file, index, input, value: input.value as Record<string, unknown> });
  });
  return out;
}

function report(
  doc: { input: YamlInput; file: string },
  path: FieldPath,
  message: string,
  code: string,
  hint?: string,
): Diagnostic {
  const ctx: ValidateContext = { input: doc.input, file: doc.file, code };
  const d = diagnostic(ctx, path, message, hint);
  if (code === SIGMA_SKIPPED) d.severity = 'warning';
  return d;
}

function loadDocuments(docs: readonly Doc[]): LoadedRules {
  const diagnostics: Diagnostic[] = [];
  const bases: Base[] = [];
  const correlations: Doc[] = [];
  for (const doc of docs) {
    const v = doc.value;
    if ('correlation' in v) {
      correlations.push(doc);
      // Registered now so rules may refer to correlations they come before.
      bases.push({
        sigmaId: typeof v.id === 'string' ? v.id.toLowerCase() : undefined,
        name: typeof v.name === 'string' ? v.name : undefined,
        rule: undefined,
        correlation: true,
      });
    } else if ('filter' in v && !('detection' in v))
      diagnostics.push(
        report(
          doc,
          ['filter'],
          'Sigma filters (meta-filters) are not supported',
          SIGMA_UNSUPPORTED,
          'put the exclusion in the rule itself, or in an allowlist of the kaudit config',
        ),
      );
    else if ('action' in v && !('detection' in v))
      diagnostics.push(
        report(
          doc,
          ['action'],
          `Sigma 1 rule collections (action: ${String(v.action)}) are not supported`,
          SIGMA_UNSUPPORTED,
          'write each rule out in full',
        ),
      );
    else if (!('detection' in v))
      diagnostics.push(
        report(
          doc,
          [],
          'neither a Sigma rule (no "detection") nor a correlation rule (no "correlation")',
          SIGMA_INVALID,
        ),
      );
    else bases.push(loadBase(doc, diagnostics));
  }
  const rules: Rule[] = [];
  const quiet = new Set<Rule>();
  const generated = new Set<Rule>();
  for (const doc of correlations) {
    const c = loadCorrelation(doc, bases, diagnostics);
    if (c === undefined) continue;
    rules.push(c.rule);
    // Correlation specification, "Generate": the rules a correlation refers to raise no alerts of
    // their own unless it says `generate: true` (one correlation saying so is enough).
    for (const r of c.refs) (c.generate ? generated : quiet).add(r);
  }
  const alone = (r: Rule | undefined): r is Rule => r !== undefined && (!quiet.has(r) || generated.has(r));
  const out = [...bases.map((b) => b.rule).filter(alone), ...rules];
  diagnostics.push(...duplicateIds(out));
  return { rules: out, diagnostics };
}

function problemsToDiagnostics(doc: Doc, problems: readonly DetectionProblem[]): Diagnostic[] {
  return problems.map((p) =>
    report(doc, p.path, p.message, p.unsupported ? SIGMA_UNSUPPORTED : SIGMA_INVALID, p.hint),
  );
}

/** A kaudit rule id: the Sigma id (UUIDs are lowercase ids already), else its name, else the file. */
function ruleId(doc: Doc, id: string | undefined, name: string | undefined): string {
  const raw =
    id ?? name ?? `${basename(doc.file, extname(doc.file))}${doc.index > 0 ? `-${doc.index + 1}` : ''}`;
  const clean = raw
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '');
  return clean === '' ? 'sigma-rule' : clean;
}

function metadata(doc: Doc, diagnostics: Diagnostic[]) {
  const problems: Diagnostic[] = [];
  const meta = validate(
    metaSchema,
    doc.value,
    [],
    { input: doc.input, file: doc.file, code: SIGMA_INVALID },
    problems,
  );
  diagnostics.push(...problems);
  if (meta === undefined) return undefined;
  const { tactic, technique } = attackTags(meta.tags);
  const sigmaId = meta.id?.toLowerCase();
  const rule: Omit<Rule, 'kind' | 'message'> = {
    id: ruleId(doc, meta.id, meta.name),
    // Sigma leaves `level` optional; kaudit needs a severity, and medium is the middle one.
    severity: meta.level === undefined ? 'medium' : (LEVELS[meta.level] ?? 'medium'),
    title: meta.title,
    description: meta.description.trim(),
    tactic,
    technique,
    tags: meta.tags,
    references: meta.references,
    falsePositives: meta.falsepositives,
    equivalents: sigmaId === undefined ? [] : [`sigma:${sigmaId}`],
    allow: emptyAllowlist(),
    source: 'sigma',
    file: doc.file,
  };
  return { rule, sigmaId, name: meta.name };
}

function loadBase(doc: Doc, diagnostics: Diagnostic[]): Base {
  const v = doc.value;
  const base: Base = {
    sigmaId: typeof v.id === 'string' ? v.id.toLowerCase() : undefined,
    name: typeof v.name === 'string' ? v.name : undefined,
    rule: undefined,
    correlation: false,
  };
  // A rule kaudit will not run is only reported as skipped: its other problems are not ours.
  const skip = (path: FieldPath, why: string, hint: string) => {
    base.skipped = why;
    const title = typeof v.title === 'string' ? `"${v.title}"` : '(untitled)';
    diagnostics.push(report(doc, path, `rule ${title} skipped: ${why}`, SIGMA_SKIPPED, hint));
    return base;
  };
  const problems: Diagnostic[] = [];
  const logsource = validate(
    logsourceSchema,
    v.logsource,
    ['logsource'],
    { input: doc.input, file: doc.file, code: SIGMA_INVALID },
    problems,
  );
  if (
    logsource !== undefined &&
    (logsource.product?.toLowerCase() !== 'kubernetes' || logsource.service?.toLowerCase() !== 'audit')
  ) {
    const shown = Object.entries(logsource)
      .map(([k, x]) => `${k}: ${x}`)
      .join(', ');
    return skip(
      ['logsource'],
      `its logsource {${shown}} is not Kubernetes audit`,
      'kaudit runs Sigma rules with logsource {product: kubernetes, service: audit}',
    );
  }
  // Sigma rules specification, "Status": deprecated rules were replaced by another rule (SigmaHQ
  // keeps them beside it), unsupported ones cannot be used as they are.
  if (v.status === 'deprecated' || v.status === 'unsupported')
    return skip(['status'], `its status is ${v.status}`, 'use the rule that replaces it (see its "related")');
  const before = diagnostics.length;
  diagnostics.push(...problems);
  const meta = metadata(doc, diagnostics);
  if (meta !== undefined) {
    base.sigmaId = meta.sigmaId;
    base.name = meta.name;
  }
  const detectionProblems: DetectionProblem[] = [];
  const detection = compileDetection(v.detection, detectionProblems);
  diagnostics.push(...problemsToDiagnostics(doc, detectionProblems));
  if (diagnostics.length > before || meta === undefined || detection === undefined) {
    base.failed = detectionProblems.some((p) => p.unsupported) ? SIGMA_UNSUPPORTED : SIGMA_INVALID;
    return base;
  }
  const shown = detection.fields.filter((f) => !ALERT_FIELDS.has(f.path.join('.')));
  base.rule = {
    ...meta.rule,
    kind: 'match',
    match: detection.condition,
    message: messageOf(meta.rule.title, shown),
  };
  return base;
}

/** Fields every alert carries on its own: the message need not repeat them. */
const ALERT_FIELDS = new Set([
  'verb',
  'objectRef.resource',
  'objectRef.subresource',
  'objectRef.namespace',
  'objectRef.name',
  'user.username',
  'subject',
  'sourceIPs',
  'sourceIP',
  'userAgent',
]);

/** The title (braces would read as placeholders), then who did what, then the tested fields. */
function messageOf(title: string, fields: readonly { label: string; path: string[] }[]): string {
  const safe = title.replaceAll('{', '(').replaceAll('}', ')');
  const extra = fields.map((f) => `, ${f.label}={${pathText(f.path)}}`).join('');
  return `${safe}: {subject} {verb} {objectRef.resource}${extra}`;
}

/** A path as a message placeholder (bracket form for keys that hold dots). */
function pathText(path: readonly string[]): string {
  return path
    .map((s, i) => (/^[^.[\]"]+$/.test(s) ? `${i > 0 ? '.' : ''}${s}` : `["${s.replace(/["\\]/g, '\\$&')}"]`))
    .join('');
}

function loadCorrelation(
  doc: Doc,
  bases: readonly Base[],
  diagnostics: Diagnostic[],
): { rule: Rule; refs: Rule[]; generate: boolean } | undefined {
  const before = diagnostics.length;
  const meta = metadata(doc, diagnostics);
  const problems: Diagnostic[] = [];
  const ctx: ValidateContext = { input: doc.input, file: doc.file, code: SIGMA_INVALID };
  const c = validate(correlationSchema, doc.value.correlation, ['correlation'], ctx, problems);
  diagnostics.push(...problems);
  if (meta === undefined || c === undefined) return undefined;
  const at = (path: FieldPath, message: string, code = SIGMA_INVALID, hint?: string) =>
    diagnostics.push(report(doc, ['correlation', ...path], message, code, hint));

  if (c.aliases !== undefined)
    at(
      ['aliases'],
      'field name aliases are not supported: every referenced rule is grouped by the same fields',
      SIGMA_UNSUPPORTED,
    );
  const windowMs = parseDuration(c.timespan);
  if (windowMs === undefined)
    at(['timespan'], `"${c.timespan}" is not a timespan`, SIGMA_INVALID, 'e.g. 30s, 10m, 1h, 7d');
  const groupByNames =
    c['group-by'] === undefined ? [] : Array.isArray(c['group-by']) ? c['group-by'] : [c['group-by']];
  const groupBy = groupByNames.map((name, i) => {
    const p = mapSigmaField(name);
    if (p === undefined) at(['group-by', i], `"${name}" is not a field path`);
    return p ?? [];
  });

  const refNames = Array.isArray(c.rules) ? c.rules : [c.rules];
  const refs: Rule[] = [];
  refNames.forEach((ref, i) => {
    const path = Array.isArray(c.rules) ? ['rules', i] : ['rules'];
    const low = ref.toLowerCase();
    const base = bases.find((b) => b.sigmaId === low) ?? bases.find((b) => b.name === ref);
    if (base === undefined)
      at(
        path,
        `rule "${ref}" is not among the loaded Sigma rules (by id or name)`,
        SIGMA_INVALID,
        'load the file that holds it too',
      );
    else if (base.correlation)
      at(
        path,
        `"${ref}" is a correlation rule: correlations of correlations are not supported`,
        SIGMA_UNSUPPORTED,
      );
    else if (base.skipped !== undefined) at(path, `rule "${ref}" is skipped: ${base.skipped}`, SIGMA_SKIPPED);
    else if (base.rule === undefined)
      at(path, `rule "${ref}" did not load (see its own diagnostics)`, base.failed ?? SIGMA_INVALID);
    else refs.push(base.rule);
  });

  const count = correlationCount(c.type, c.condition ?? {}, refNames.length, at);
  const distinctName = c.type === 'value_count' ? c.condition?.field : undefined;
  let distinct: string[] | undefined;
  if (c.type === 'value_count') {
    if (typeof distinctName !== 'string')
      at(['condition', 'field'], 'a value_count correlation needs the field whose values it counts');
    else {
      distinct = mapSigmaField(distinctName);
      if (distinct === undefined) at(['condition', 'field'], `"${distinctName}" is not a field path`);
    }
  }
  if ((c.type === 'temporal' || c.type === 'temporal_ordered') && refNames.length < 2)
    at(['rules'], `a ${c.type} correlation needs at least two rules`);
  if (diagnostics.length > before || windowMs === undefined || count === undefined) return undefined;

  const conditions = refs.map((r) => r.match as Condition);
  const labels = groupBy.map((p, i) => ({ label: groupByNames[i] ?? '', path: p }));
  const safe = meta.rule.title.replaceAll('{', '(').replaceAll('}', ')');
  const message =
    labels.length === 0
      ? safe
      : `${safe}: ${labels.map((l) => `${l.label}={${pathText(l.path)}}`).join(', ')}`;
  const rule: Rule = { ...meta.rule, kind: 'threshold', message };
  if (c.type === 'temporal' || c.type === 'temporal_ordered') {
    rule.kind = 'sequence';
    rule.sequence = { by: groupBy, windowMs, steps: conditions, ordered: c.type === 'temporal_ordered' };
  } else {
    rule.match = conditions.length === 1 ? (conditions[0] as Condition) : { kind: 'any', of: conditions };
    rule.threshold = { groupBy, windowMs, count };
    if (distinct !== undefined) rule.threshold.distinct = distinct;
  }
  return { rule, refs, generate: c.generate ?? doc.value.generate === true };
}

/**
 * The count a correlation fires at. kaudit's threshold fires when the count reaches n, so `gte: n`
 * and `gt: n` (n + 1) fit; lt/lte/eq would need to wait for the window to close, and are refused.
 * A temporal correlation fires when all its rules matched; its condition may only say so.
 */
function correlationCount(
  type: string,
  cond: Record<string, unknown>,
  rules: number,
  at: (path: FieldPath, message: string, code?: string, hint?: string) => void,
): number | undefined {
  const ops = Object.keys(cond).filter((k) => k !== 'field');
  const temporal = type === 'temporal' || type === 'temporal_ordered';
  if (ops.length === 0) {
    if (temporal) return rules;
    at(
      ['condition'],
      `the ${type} correlation needs a condition`,
      SIGMA_INVALID,
      'e.g. condition: {gte: 10}',
    );
    return undefined;
  }
  const unsupported = ops.filter((k) => k !== 'gte' && k !== 'gt');
  if (unsupported.length > 0 || ops.length > 1) {
    at(
      ['condition'],
      `condition ${ops.join(' and ')} is not supported: only gte or gt (one of them)`,
      ['lt', 'lte', 'eq', 'neq'].some((k) => ops.includes(k)) || ops.length > 1
        ? SIGMA_UNSUPPORTED
        : SIGMA_INVALID,
      'kaudit fires when the count reaches a value; lt, lte, eq and ranges would need the window to close first',
    );
    return undefined;
  }
  const op = ops[0] as 'gte' | 'gt';
  const n = cond[op];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
    at(['condition', op], `must be a whole number, got ${JSON.stringify(n)}`);
    return undefined;
  }
  const count = op === 'gt' ? n + 1 : n;
  if (temporal) {
    if (count === rules) return rules;
    at(
      ['condition', op],
      `a ${type} correlation here fires when all ${rules} rules matched; counting ${count} of them is not supported`,
      SIGMA_UNSUPPORTED,
    );
    return undefined;
  }
  if (count < 1) {
    at(['condition', op], 'must count at least one event');
    return undefined;
  }
  return count;
}
