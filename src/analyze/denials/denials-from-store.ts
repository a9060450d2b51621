import type { EventReader } from '../../store/contract.js';
import type { EventFilter } from '../../store/query.js';
import { storedEvents } from '../../store/stored-events.js';
import { requestRecords } from '../request-record.js';
import { type DenialsOptions, type DenialsReport, reportDenials } from './denials-report.js';

/** One record per request (request-record.ts): the final stage, or a failed authentication's only event. */
const FINAL: EventFilter = { stage: ['ResponseComplete', 'Panic'] };
const FAILED_AUTHN: EventFilter = { stage: ['ResponseStarted'], code: [{ min: 401, max: 401 }] };

/**
 * The denials report over a store: the store counts the window's requests and each subject's
 * successes, and only the refused requests (4xx) are read whole, so the report costs what the
 * denials cost, not what the window holds. The same answer as reportDenials over every event.
 */
export async function denialsFromStore(
  reader: EventReader,
  filter: EventFilter,
  options: Omit<DenialsOptions, 'totals'> = {},
): Promise<DenialsReport> {
  const [final, authn, succeeded] = await Promise.all([
    reader.aggregate({
      filter: { ...filter, ...FINAL },
      groupBy: [],
      measures: { n: { fn: 'count' }, from: { fn: 'min', column: 'ts' }, to: { fn: 'max', column: 'ts' } },
    }),
    reader.aggregate({
      filter: { ...filter, ...FAILED_AUTHN },
      groupBy: [],
      measures: { n: { fn: 'count' }, from: { fn: 'min', column: 'ts' }, to: { fn: 'max', column: 'ts' } },
    }),
    reader.aggregate({
      filter: { ...filter, ...FINAL, code: [{ min: 200, max: 399 }] },
      groupBy: ['subject'],
      measures: { n: { fn: 'count' } },
    }),
  ]);
  const times = [final[0]?.from, final[0]?.to, authn[0]?.from, authn[0]?.to]
    .filter((t): t is string => typeof t === 'string')
    .sort();
  const refused = requestRecords(
    (async function* () {
      for await (const { event } of storedEvents(reader, { ...filter, code: [{ min: 400, max: 499 }] }))
        yield event;
    })(),
  );
  return reportDenials(refused, {
    ...options,
    totals: {
      requests: Number(final[0]?.n ?? 0) + Number(authn[0]?.n ?? 0),
      // The records' own time (requestReceivedTimestamp as written), as reportDenials keeps it.
      from: times[0] ?? null,
      to: times.at(-1) ?? null,
      succeeded: new Map(succeeded.map((r) => [typeof r.subject === 'string' ? r.subject : '', Number(r.n)])),
    },
  });
}
