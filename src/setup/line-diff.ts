type Op = { kind: ' ' | '-' | '+'; line: string; a: number; b: number };

/** Edit script between two line lists by longest common subsequence (files here are a few hundred lines). */
function editScript(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the LCS of a[i..] and b[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => i * (m + 1) + j;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[at(i, j)] =
        a[i] === b[j]
          ? (lcs[at(i + 1, j + 1)] ?? 0) + 1
          : Math.max(lcs[at(i + 1, j)] ?? 0, lcs[at(i, j + 1)] ?? 0);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ kind: ' ', line: a[i] ?? '', a: i++, b: j++ });
    } else if (j < m && (i === n || (lcs[at(i, j + 1)] ?? 0) >= (lcs[at(i + 1, j)] ?? 0))) {
      ops.push({ kind: '+', line: b[j] ?? '', a: i, b: j++ });
    } else {
      ops.push({ kind: '-', line: a[i] ?? '', a: i++, b: j });
    }
  }
  return ops;
}

const splitLines = (text: string): string[] => {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
};

/** A unified diff (`diff -u` layout, `context` lines around each change); empty when the texts are equal. */
export function lineDiff(
  before: string,
  after: string,
  names: { from: string; to: string },
  context = 3,
): string {
  if (before === after) return '';
  const ops = editScript(splitLines(before), splitLines(after));
  const changed = ops.map((o, k) => (o.kind === ' ' ? -1 : k)).filter((k) => k >= 0);
  const out = [`--- ${names.from}`, `+++ ${names.to}`];
  let k = 0;
  while (k < changed.length) {
    const first = changed[k] ?? 0;
    let last = first;
    // Changes closer than two contexts share one hunk.
    while (k + 1 < changed.length && (changed[k + 1] ?? 0) - last <= 2 * context) last = changed[++k] ?? last;
    k++;
    const start = Math.max(0, first - context);
    const end = Math.min(ops.length, last + context + 1);
    const hunk = ops.slice(start, end);
    const aLines = hunk.filter((o) => o.kind !== '+').length;
    const bLines = hunk.filter((o) => o.kind !== '-').length;
    const head = hunk[0];
    const aStart = aLines === 0 ? (head?.a ?? 0) : (head?.a ?? 0) + 1;
    const bStart = bLines === 0 ? (head?.b ?? 0) : (head?.b ?? 0) + 1;
    out.push(`@@ -${aStart},${aLines} +${bStart},${bLines} @@`);
    for (const o of hunk) out.push(`${o.kind}${o.line}`);
  }
  return `${out.join('\n')}\n`;
}
