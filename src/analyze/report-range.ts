import { UserError } from '../model/errors.js';
import type { EventReader } from '../store/contract.js';
import type { EventFilter } from '../store/query.js';

/** The time range a report covers, always closed: reports say what window they describe. */
export interface ReportRange {
  since: string;
  until: string;
  /** A bucket width for series over the range (about 60 buckets, on a round step). */
  bucketMs: number;
}

const DAY_MS = 86_400_000;
const STEPS_MS = [
  1_000,
  5_000,
  10_000,
  30_000,
  60_000,
  300_000,
  600_000,
  1_800_000,
  3_600_000,
  10_800_000,
  21_600_000,
  43_200_000,
  DAY_MS,
];

/**
 * The filter's range, completed: without --since/--until a report covers the last 24 hours of the
 * data (not of the wall clock), so that an imported old log just works.
 */
export async function resolveRange(reader: EventReader, filter: EventFilter): Promise<ReportRange> {
  let { since, until } = filter;
  if (since === undefined || until === undefined) {
    const info = await reader.info();
    const clusters = filter.cluster;
    const newest =
      clusters === undefined
        ? info.newest
        : info.clusters
            .filter((c) => clusters.includes(c.cluster))
            .map((c) => c.newest)
            .filter((t): t is string => t !== null)
            .sort()
            .at(-1);
    const oldest =
      clusters === undefined
        ? info.oldest
        : info.clusters
            .filter((c) => clusters.includes(c.cluster))
            .map((c) => c.oldest)
            .filter((t): t is string => t !== null)
            .sort()[0];
    const end = until ?? (newest === null || newest === undefined ? new Date().toISOString() : newest);
    // Exclusive: the newest event itself is in.
    until ??= new Date(Date.parse(end) + 1).toISOString();
    // The last day of the data, or all of it when it covers less (so series get buckets that show it).
    const dayBefore = Date.parse(until) - DAY_MS;
    since ??= new Date(
      oldest === null || oldest === undefined ? dayBefore : Math.max(dayBefore, Date.parse(oldest)),
    ).toISOString();
  }
  const span = Date.parse(until) - Date.parse(since);
  if (!(span > 0))
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `the time range is empty: --since ${since} is not before --until ${until}`,
    );
  const bucketMs = STEPS_MS.find((s) => span / s <= 60) ?? Math.ceil(span / 60 / DAY_MS) * DAY_MS;
  return { since, until, bucketMs };
}

/** The filter restricted to the range. */
export function inRange(filter: EventFilter, range: ReportRange): EventFilter {
  return { ...filter, since: range.since, until: range.until };
}
