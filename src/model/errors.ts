import type { ErrorCode } from './error-codes.js';

/** A problem the user can fix: a bad file, flag, policy or config. The CLI exits 2 on these. */
export class UserError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.code = code;
    this.hint = options.hint;
  }
}

export type Severity = 'error' | 'warning' | 'info';

/** One problem found by a validator or linter. Validators return all of them, never only the first. */
export interface Diagnostic {
  severity: Severity;
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
  /** Field path, e.g. `rules[3].resources[0].group`. */
  path?: string;
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = [d.file, d.line, d.column].filter((x) => x !== undefined).join(':');
  const field = d.path ? ` ${d.path}:` : '';
  const hint = d.hint ? `\n  hint: ${d.hint}` : '';
  return `${where ? `${where}: ` : ''}${d.severity}[${d.code}]${field} ${d.message}${hint}`;
}
