import { sanitize } from '../model/sanitize.js';
/**
 * A report as a person reads it: a title, a few facts, and tables. Each report command turns its
 * typed result into one, printed as text tables on a terminal or as Markdown to paste into a
 * ticket (`--format md`); `--json` prints the typed result itself instead.
 */

export type Cell = string | number | boolean | null | undefined;

export interface DocTable {
  title: string;
  columns: readonly string[];
  rows: readonly (readonly Cell[])[];
  /** Said instead of an empty table. */
  empty?: string;
}

export interface ReportDoc {
  title: string;
  facts: readonly (readonly [string, Cell])[];
  tables: readonly DocTable[];
  /** Free text after the tables (e.g. generated YAML), verbatim. */
  blocks?: readonly { title: string; text: string; language?: string }[];
}

function text(c: Cell): string {
  if (c === null || c === undefined) return '-';
  if (typeof c === 'number') return Number.isInteger(c) ? String(c) : c.toFixed(1);
  // Control characters from events must not reach the terminal raw.
  return sanitize(String(c));
}

function clip(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(1, width - 1))}…`;
}

/** Text tables; cells wider than `maxCell` are cut with an ellipsis. */
export function renderText(doc: ReportDoc, maxCell = 48): string {
  const out: string[] = [doc.title, '='.repeat(doc.title.length)];
  for (const [k, v] of doc.facts) out.push(`${k}: ${text(v)}`);
  for (const t of doc.tables) {
    out.push('', t.title, '-'.repeat(t.title.length));
    if (t.rows.length === 0) {
      out.push(t.empty ?? '(none)');
      continue;
    }
    const cells = t.rows.map((r) => r.map((c) => clip(text(c), maxCell)));
    const widths = t.columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
    const line = (vals: readonly string[]) =>
      vals
        .map((v, i) => v.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd();
    out.push(line(t.columns.map((c) => c.toUpperCase())));
    for (const r of cells) out.push(line(r));
  }
  for (const b of doc.blocks ?? []) out.push('', b.title, '-'.repeat(b.title.length), b.text.trimEnd());
  return `${out.join('\n')}\n`;
}

function md(c: Cell): string {
  return text(c).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function renderMarkdown(doc: ReportDoc): string {
  const out: string[] = [`## ${doc.title}`, ''];
  for (const [k, v] of doc.facts) out.push(`- **${k}**: ${md(v)}`);
  for (const t of doc.tables) {
    out.push('', `### ${t.title}`, '');
    if (t.rows.length === 0) {
      out.push(t.empty ?? '(none)');
      continue;
    }
    out.push(`| ${t.columns.join(' | ')} |`, `|${t.columns.map(() => '---').join('|')}|`);
    for (const r of t.rows) out.push(`| ${r.map(md).join(' | ')} |`);
  }
  for (const b of doc.blocks ?? [])
    out.push('', `### ${b.title}`, '', `\`\`\`${b.language ?? ''}`, b.text.trimEnd(), '```');
  return `${out.join('\n')}\n`;
}
