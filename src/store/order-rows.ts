import type { AggregateQuery, AggregateRow, GroupKey } from './query.js';

const keyName = (k: GroupKey) => (typeof k === 'string' ? k : 'bucket');

function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  // Lists (groups) compare element by element, a prefix first, as the SQL backends order them.
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareValues(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  return String(a) < String(b) ? -1 : 1;
}

/**
 * Aggregate rows in the contract's order (AggregateQuery.orderBy, then the group keys ascending,
 * nulls last whatever the direction, as the SQL backends' default) and cut to its limit. The memory
 * store's reference order; backends that group in one pass for several orders use it too.
 */
export function orderRows(
  rows: AggregateRow[],
  q: Pick<AggregateQuery, 'groupBy' | 'orderBy' | 'limit'>,
): AggregateRow[] {
  const order = [...(q.orderBy ?? []), ...q.groupBy.map((k) => ({ key: keyName(k), desc: false }))];
  rows.sort((a, b) => {
    for (const o of order) {
      const x = a[o.key];
      const y = b[o.key];
      const xNull = x === null || x === undefined;
      const yNull = y === null || y === undefined;
      if (xNull !== yNull) return xNull ? 1 : -1;
      const c = compareValues(x, y);
      if (c !== 0) return o.desc === true ? -c : c;
    }
    return 0;
  });
  return q.limit === undefined ? rows : rows.slice(0, q.limit);
}
