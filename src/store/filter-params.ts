import { UserError } from '../model/errors.js';
import type { CodeRange, EventFilter } from './query.js';

export interface FilterParamsOptions {
  /** Name problems as command-line flags (`--user-agent`) instead of URL parameters (`userAgent`). */
  flags?: boolean;
}

/**
 * Query parameters (of a URL, or of a command's flags) -> EventFilter. A list parameter takes commas
 * or repeats (`verb=get,list` or `verb=get&verb=list`); every bad value is an error naming it.
 */
export function filterFromParams(p: URLSearchParams, options: FilterParamsOptions = {}): EventFilter {
  const f: EventFilter = {};
  const list = (name: string): string[] | undefined => {
    const values = p
      .getAll(name)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    return values.length === 0 ? undefined : values;
  };
  const one = (name: string): string | undefined => p.get(name) ?? undefined;
  const bad = (name: string, value: string, expected: string): never => {
    const shown = options.flags ? `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}` : name;
    throw new UserError(
      options.flags ? 'KAUDIT_FLAG_INVALID' : 'KAUDIT_API_BAD_PARAMETER',
      `${shown} ${JSON.stringify(value)}: expected ${expected}`,
    );
  };

  for (const name of ['since', 'until'] as const) {
    const v = one(name);
    if (v === undefined) continue;
    const t = Date.parse(v);
    if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T/.test(v)) bad(name, v, 'an RFC3339 time');
    f[name] = new Date(t).toISOString();
  }
  const lists = {
    cluster: 'cluster',
    user: 'user',
    subject: 'subject',
    userGroup: 'userGroup',
    verb: 'verb',
    apiGroup: 'apiGroup',
    namespace: 'namespace',
    name: 'name',
    stage: 'stage',
    level: 'level',
    auditId: 'auditId',
    decision: 'decision',
    sourceIp: 'sourceIp',
  } as const;
  for (const [key, param] of Object.entries(lists) as [keyof typeof lists, string][]) {
    const v = list(param);
    if (v !== undefined) f[key] = v;
  }
  const resources = list('resource');
  if (resources !== undefined)
    f.resource = resources.map((r) => {
      const [resource = '', subresource] = r.split('/', 2);
      if (resource === '') bad('resource', r, 'a resource such as pods, pods/exec or pods/*');
      return subresource === undefined ? { resource } : { resource, subresource };
    });
  const codes = list('code');
  if (codes !== undefined)
    f.code = codes.map(
      (c) => codeRange(c) ?? bad('code', c, 'a code (403), a class (4xx) or a range (400-499)'),
    );
  for (const key of ['userAgent', 'text'] as const) {
    const v = one(key);
    if (v !== undefined) f[key] = v;
  }
  for (const key of ['denied', 'longRunning', 'nonResource'] as const) {
    const v = one(key);
    if (v === undefined) continue;
    if (v !== 'true' && v !== 'false') bad(key, v, 'true or false');
    f[key] = v === 'true';
  }
  const latency = one('minLatencyMs');
  if (latency !== undefined) {
    const n = Number(latency);
    if (!Number.isFinite(n) || n < 0) bad('minLatencyMs', latency, 'a number of milliseconds');
    f.minLatencyMs = n;
  }
  return f;
}

/** `403`, `4xx`, `400-499`. */
export function codeRange(text: string): CodeRange | undefined {
  let m = /^([1-5])xx$/i.exec(text);
  if (m !== null) return { min: Number(m[1]) * 100, max: Number(m[1]) * 100 + 99 };
  m = /^(\d{3})(?:-(\d{3}))?$/.exec(text);
  if (m === null) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : Number(m[2]);
  return min <= max ? { min, max } : undefined;
}
