/**
 * Who uses the API server and how: top subjects, user agents, source IPs, verbs and resources;
 * the request rate over time by verb and by response class; and the subjects and user agents seen
 * for the first time in the window (new automation, new people, a stolen token used from a new tool).
 */
import { aggregateSets } from '../store/aggregate-sets.js';
import type { EventReader } from '../store/contract.js';
import type { AggregateRow, EventFilter, GroupColumn } from '../store/query.js';
import { inRange, type ReportRange, resolveRange } from './report-range.js';

export interface ActivityOptions {
  filter: EventFilter;
  /** Rows per table; default 10. */
  limit?: number;
}

export interface Ranked {
  value: string | null;
  count: number;
}

export interface ActivityReport {
  range: ReportRange;
  requests: number;
  top: {
    subjects: Ranked[];
    userAgents: Ranked[];
    sourceIps: Ranked[];
    verbs: Ranked[];
    resources: (Ranked & { subresource: string | null })[];
  };
  /** Requests per bucket and verb. */
  rateByVerb: { bucket: string; verb: string; count: number }[];
  /** Requests per bucket and response class (2, 3, 4, 5; null without a response). */
  rateByClass: { bucket: string; codeClass: number | null; count: number }[];
  /** First seen inside the window: never before it in the store. */
  newSubjects: { value: string; firstSeen: string; count: number }[];
  newUserAgents: { value: string; firstSeen: string; count: number }[];
}

type FirstSeen = ActivityReport['newSubjects'][number];

const n = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
const s = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export async function activityReport(reader: EventReader, opts: ActivityOptions): Promise<ActivityReport> {
  const range = await resolveRange(reader, opts.filter);
  const limit = opts.limit ?? 10;
  // One row per request: the stages of one request are one call.
  const filter: EventFilter = { ...inRange(opts.filter, range), stage: ['ResponseComplete', 'Panic'] };
  const top = (...groupBy: GroupColumn[]) => ({ groupBy, orderBy: [{ key: 'count', desc: true }], limit });
  const bucket = { bucket: 'ts' as const, everyMs: range.bucketMs };
  // The groupings of the window's requests in one pass where the store can, beside the first-seen
  // values, which look before the window.
  const [[totals, subjects, agents, ips, verbs, resources, byVerb, byClass], seen] = await Promise.all([
    aggregateSets(reader, {
      filter,
      measures: { count: { fn: 'count' } },
      sets: [
        { groupBy: [] },
        top('subject'),
        top('user_agent'),
        top('source_ip'),
        top('verb'),
        top('resource', 'subresource'),
        { groupBy: [bucket, 'verb'], orderBy: [{ key: 'bucket' }] },
        { groupBy: [bucket, 'code_class'], orderBy: [{ key: 'bucket' }] },
      ],
    }),
    firstSeen(reader, opts.filter, range, limit),
  ]);
  const total = n(totals[0]?.count);
  const ranked = (rows: AggregateRow[], column: string): Ranked[] =>
    rows.map((r) => ({ value: s(r[column]), count: n(r.count) }));
  return {
    range,
    requests: total,
    top: {
      subjects: ranked(subjects, 'subject'),
      userAgents: ranked(agents, 'user_agent'),
      sourceIps: ranked(ips, 'source_ip'),
      verbs: ranked(verbs, 'verb'),
      resources: resources.map((r) => ({
        value: s(r.resource),
        subresource: s(r.subresource),
        count: n(r.count),
      })),
    },
    rateByVerb: byVerb.map((r) => ({ bucket: String(r.bucket), verb: String(r.verb), count: n(r.count) })),
    rateByClass: byClass.map((r) => ({
      bucket: String(r.bucket),
      codeClass: r.code_class === null || r.code_class === undefined ? null : n(r.code_class),
      count: n(r.count),
    })),
    newSubjects: seen.subjects,
    newUserAgents: seen.userAgents,
  };
}

/**
 * Subjects and user agents whose earliest event in the store (up to the window's end, same other
 * filters) falls in the window.
 */
async function firstSeen(
  reader: EventReader,
  filter: EventFilter,
  range: ReportRange,
  limit: number,
): Promise<{ subjects: FirstSeen[]; userAgents: FirstSeen[] }> {
  const { since: _since, ...rest } = filter;
  const sets = await aggregateSets(reader, {
    filter: { ...rest, until: range.until },
    measures: { first: { fn: 'min', column: 'ts' }, count: { fn: 'count' } },
    sets: [
      { groupBy: ['subject'], orderBy: [{ key: 'first', desc: true }] },
      { groupBy: ['user_agent'], orderBy: [{ key: 'first', desc: true }] },
    ],
  });
  const inWindow = (rows: AggregateRow[], column: 'subject' | 'user_agent') => {
    const out: FirstSeen[] = [];
    for (const r of rows) {
      const value = s(r[column]);
      const first = s(r.first);
      if (value === null || first === null || first < range.since) continue;
      out.push({ value, firstSeen: first, count: n(r.count) });
      if (out.length >= limit) break;
    }
    return out;
  };
  return { subjects: inWindow(sets[0], 'subject'), userAgents: inWindow(sets[1], 'user_agent') };
}
