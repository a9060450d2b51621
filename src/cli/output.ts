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

/** A plain aligned text table; long cells are cut at `maxCell` characters. */
export function formatTable(columns: readonly string[], rows: readonly Row[], maxCell = 60): string {
  const cells = rows.map((r) =>
    columns.map((c) => {
      const s = cell(r[c]).replace(/[ \t]+/g, ' ');
      return s.length > maxCell ? `${s.slice(0, maxCell - 1)}…` : s;
    }),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (vals: readonly string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n') + '\n';
}
