import { sanitize } from '../model/sanitize.js';
import type { Row } from '../store/contract.js';

/** JSON.stringify that writes bigint as a number when safe, else as a string, and Dates as RFC3339. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') {
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(v)
        : v.toString();
    }
    return v;
  });
}

export function writeNdjson(rows: readonly Row[], out: NodeJS.WritableStream = process.stdout): void {
  for (const row of rows) out.write(`${toJson(row)}\n`);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  // Event text (an ESC in a user agent could rewrite the terminal) is shown escaped, never raw.
  if (typeof v === 'string') return sanitize(v);
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return toJson(v);
}

/**
 * The width tables must fit: the terminal's when stdout is one, else `COLUMNS` when set, else no
 * limit (a pipe or a file gets whole rows). `KAUDIT_WIDE=1` (or `--wide`) lifts the limit.
 */
export function tableWidth(): number | undefined {
  if (process.env.KAUDIT_WIDE === '1') return undefined;
  const columns = Number(process.env.COLUMNS);
  if (process.stdout.isTTY && process.stdout.columns > 0) return process.stdout.columns;
  return Number.isInteger(columns) && columns > 0 ? columns : undefined;
}

/**
 * A plain aligned text table; long cells are cut at `maxCell` characters, and when the rows are
 * wider than `width` the widest columns are trimmed (with an ellipsis) until they fit.
 */
export function formatTable(
  columns: readonly string[],
  rows: readonly Row[],
  maxCell = 60,
  width: number | undefined = tableWidth(),
): string {
  const raw = rows.map((r) => columns.map((c) => cell(r[c]).replace(/[ \t]+/g, ' ')));
  const widths = columns.map((c, i) =>
    Math.min(Math.max(c.length, ...raw.map((r) => (r[i] ?? '').length)), Math.max(maxCell, c.length)),
  );
  if (width !== undefined) {
    const gaps = 2 * (columns.length - 1);
    // Narrow the widest column, one character at a time, down to a floor that keeps it readable.
    const floor = (i: number) => Math.min(widths[i] ?? 0, Math.max(8, (columns[i] ?? '').length));
    for (let total = widths.reduce((a, b) => a + b, 0) + gaps; total > width; total--) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++)
        if ((widths[i] ?? 0) > floor(i) && (widest < 0 || (widths[i] ?? 0) > (widths[widest] ?? 0)))
          widest = i;
      if (widest < 0) break;
      widths[widest] = (widths[widest] ?? 0) - 1;
    }
  }
  const clip = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
  const line = (vals: readonly string[]) =>
    vals
      .map((v, i) => clip(v, widths[i] ?? 0).padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.toUpperCase())), ...raw.map(line)].join('\n')}\n`;
}
