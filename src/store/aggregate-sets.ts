import type { EventReader } from './contract.js';
import type { AggregateRow, AggregateSetsQuery } from './query.js';

type Sets = AggregateSetsQuery['sets'];

/**
 * For each set of the query, the rows aggregate() gives for it, in the sets' order: in one pass
 * where the backend has one (EventReader.aggregateSets), else one aggregate() per set, side by side.
 */
export async function aggregateSets<const S extends Sets>(
  reader: EventReader,
  query: AggregateSetsQuery & { sets: S },
): Promise<{ -readonly [K in keyof S]: AggregateRow[] }> {
  const rows =
    reader.aggregateSets !== undefined
      ? await reader.aggregateSets(query)
      : await Promise.all(
          query.sets.map((s) =>
            reader.aggregate({
              filter: query.filter,
              measures: query.measures,
              groupBy: s.groupBy,
              ...(s.orderBy === undefined ? {} : { orderBy: s.orderBy }),
              ...(s.limit === undefined ? {} : { limit: s.limit }),
            }),
          ),
        );
  if (rows.length !== query.sets.length)
    throw new Error(`aggregateSets: ${rows.length} results for ${query.sets.length} sets`);
  return rows as { -readonly [K in keyof S]: AggregateRow[] };
}
