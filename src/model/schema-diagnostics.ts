import { z } from 'zod';
import type { Diagnostic } from './errors.js';
import { type FieldPath, formatPath, type YamlInput } from './yaml-input.js';

export interface ValidateContext {
  input: YamlInput;
  file?: string | undefined;
  /** Hints by field path (`run_path` -> 'or set KAUDIT_RUN_PATH'), shown when that field is at fault. */
  hints?: Readonly<Record<string, string>>;
  /** The diagnostic code; KAUDIT_CONFIG_INVALID unless said. */
  code?: string;
}

/**
 * Validates `value` (found at `at` in the document) with a zod schema; every problem becomes a
 * Diagnostic naming the file, line, field and, for unknown keys and choices, what is allowed.
 */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  at: FieldPath,
  ctx: ValidateContext,
  out: Diagnostic[],
): z.output<S> | undefined {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return r.data;
  for (const issue of r.error.issues) {
    const path = [...at, ...(issue.path as (string | number)[])];
    if (issue.code === 'unrecognized_keys') {
      const allowed = objectKeysAt(schema, issue.path as (string | number)[]);
      for (const key of issue.keys) {
        out.push(
          diagnostic(
            ctx,
            [...path, key],
            `unknown key "${key}"`,
            allowed && `allowed here: ${allowed.join(', ')}`,
          ),
        );
      }
      continue;
    }
    out.push(diagnostic(ctx, path, messageOf(issue)));
  }
  return undefined;
}

export function diagnostic(
  ctx: ValidateContext,
  path: FieldPath,
  message: string,
  hint?: string,
): Diagnostic {
  const field = formatPath(path);
  const d: Diagnostic = {
    severity: 'error',
    code: ctx.code ?? 'KAUDIT_CONFIG_INVALID',
    message,
    path: field,
  };
  if (ctx.file !== undefined) d.file = ctx.file;
  const pos = ctx.input.locate(path);
  if (pos !== undefined) Object.assign(d, pos);
  const h = hint ?? ctx.hints?.[field];
  if (h !== undefined && h !== '') d.hint = h;
  return d;
}

function shown(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

function messageOf(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type': {
      if (input === undefined) return 'is required';
      const want: Record<string, string> = {
        string: 'a string',
        number: 'a number',
        int: 'a whole number',
        boolean: 'true or false',
        array: 'a list',
        object: 'a mapping',
      };
      const expected = want[issue.expected] ?? issue.expected;
      return issue.expected === 'boolean'
        ? `must be true or false, got ${shown(input)}`
        : `must be ${expected}, got ${shown(input)}`;
    }
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array') return `needs at least ${String(issue.minimum)} item(s)`;
      return `must be ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}, got ${shown(input)}`;
    case 'too_big':
      return `must be ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}, got ${shown(input)}`;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => String(v)).join(' or ')}, got ${shown(input)}`;
    default:
      return issue.message;
  }
}

/** The keys of the object schema at `path` inside `schema`, for "allowed here" hints. */
function objectKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] | undefined {
  let s: z.ZodType | undefined = schema;
  for (const step of [...path, null]) {
    for (;;) {
      if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault)
        s = s.unwrap() as z.ZodType;
      else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
      else break;
    }
    if (step === null) break;
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(step)];
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else return undefined;
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : undefined;
}
