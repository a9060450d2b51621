import { resolve } from 'node:path';
import { Option } from 'commander';
import { UserError } from '../model/errors.js';
import { parseDurationMs } from '../simulate/time.js';

export const DEFAULT_DATA_DIR = './kaudit-data';

/** `--data DIR`, else `KAUDIT_DATA`, else ./kaudit-data. */
export function dataOption(): Option {
  return new Option('--data <dir>', 'data directory holding the store (env KAUDIT_DATA)').default(
    undefined,
    DEFAULT_DATA_DIR,
  );
}

export function resolveDataDir(flag: string | undefined): string {
  return resolve(flag ?? process.env.KAUDIT_DATA ?? DEFAULT_DATA_DIR);
}

/** `--since 1h` (relative to now) or an RFC3339 time -> RFC3339 UTC. */
export function parseTimeFlag(flag: string, value: string, now = Date.now()): string {
  const rel = parseDurationMs(value.trim());
  if (rel !== undefined) {
    // Dates reach ±8.64e15 ms: a duration beyond that is no time at all, and says so (not a RangeError).
    const t = now - rel;
    if (!Number.isFinite(t) || Math.abs(t) > 8.64e15)
      throw new UserError(
        'KAUDIT_FLAG_INVALID',
        `${flag} ${JSON.stringify(value)}: a duration too long to count back from now`,
      );
    return new Date(t).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return new Date(t).toISOString();
  }
  throw new UserError(
    'KAUDIT_FLAG_INVALID',
    `${flag} ${JSON.stringify(value)}: expected a duration such as 1h or 30m, or an RFC3339 time`,
  );
}

export function parseIntFlag(flag: string, value: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `${flag} ${JSON.stringify(value)}: expected a whole number ≥ ${min}`,
    );
  }
  return n;
}

export function parsePositiveNumberFlag(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `${flag} ${JSON.stringify(value)}: expected a positive number`,
    );
  }
  return n;
}
