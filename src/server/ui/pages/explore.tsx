import { useEffect, useState } from 'preact/hooks';
import { get } from '../api.js';
import { Status, Table, TimeChart, useLoad } from '../components.js';
import { hrefOf, navigate, withParams } from '../state.js';
import type { EventRow } from '../types.js';

const FILTERS = [
  ['subject', 'subject'],
  ['verb', 'verb'],
  ['resource', 'resource (pods, pods/exec)'],
  ['namespace', 'namespace'],
  ['code', 'code (403, 4xx)'],
  ['text', 'URI contains'],
] as const;

const FILTER_KEYS = ['since', 'until', 'cluster', 'denied', ...FILTERS.map(([k]) => k)];

function filterOf(params: URLSearchParams): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const k of FILTER_KEYS) out[k] = params.get(k) ?? undefined;
  return out;
}

export function Explore({ params }: { params: URLSearchParams }) {
  const filter = filterOf(params);
  const key = JSON.stringify(filter);
  const histogram = useLoad(key, () =>
    get<{ buckets: { bucket: string; count: number }[] }>('/api/v1/histogram', filter),
  );
  const [rows, setRows] = useState<EventRow[]>([]);
  const [next, setNext] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const load = (cursor?: string) =>
    get<{ rows: EventRow[]; next?: string }>('/api/v1/events', { ...filter, limit: '100', cursor }).then(
      (page) => {
        setRows((old) => (cursor === undefined ? page.rows : [...old, ...page.rows]));
        setNext(page.next);
        setError(undefined);
      },
      (e: Error) => setError(e.message),
    );
  useEffect(() => {
    void load();
  }, [key]);

  const submit = (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const changes: Record<string, string | undefined> = {};
    for (const [k] of FILTERS) changes[k] = String(form.get(k) ?? '').trim();
    changes.denied = form.get('denied') === 'on' ? 'true' : undefined;
    navigate('explore', withParams(params, changes));
  };

  return (
    <>
      <h1>Explore</h1>
      <form class="filters card" onSubmit={submit} aria-label="filters">
        {FILTERS.map(([k, label]) => (
          <label>
            {label}
            <input name={k} value={params.get(k) ?? ''} />
          </label>
        ))}
        <label class="check">
          <input type="checkbox" name="denied" checked={params.get('denied') === 'true'} /> denied only
        </label>
        <button type="submit">Search</button>
      </form>
      <Status state={histogram}>
        {(h) => (
          <TimeChart
            title="Matching events over time (drag to zoom)"
            times={h.buckets.map((b) => Date.parse(b.bucket))}
            series={[{ label: 'events', values: h.buckets.map((b) => b.count) }]}
            bars
            onSelect={(from, to) =>
              navigate(
                'explore',
                withParams(params, {
                  since: new Date(from).toISOString(),
                  until: new Date(to).toISOString(),
                }),
              )
            }
          />
        )}
      </Status>
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <Table
        caption="Events, newest first (click one for its JSON)"
        testId="events"
        columns={['time', 'subject', 'verb', 'resource', 'namespace', 'name', 'code', 'ms']}
        rows={rows.map((r) => [
          r.ts,
          r.subject,
          r.verb,
          r.resource === null ? null : r.subresource === null ? r.resource : `${r.resource}/${r.subresource}`,
          r.namespace,
          r.name,
          r.code,
          r.latency_ms,
        ])}
        onRow={(i) => {
          const r = rows[i];
          if (r !== undefined) navigate('event', { id: r.audit_id, stage: r.stage });
        }}
        empty="No events match."
      />
      {next !== undefined && (
        <button type="button" onClick={() => void load(next)}>
          Load more
        </button>
      )}
    </>
  );
}

export function EventView({ params }: { params: URLSearchParams }) {
  const id = params.get('id') ?? '';
  const stage = params.get('stage') ?? undefined;
  const ev = useLoad(`${id}/${stage}`, () =>
    get<{ events: EventRow[] }>(`/api/v1/events/${encodeURIComponent(id)}`, { stage }),
  );
  return (
    <>
      <h1>Event {id}</h1>
      <Status state={ev}>
        {(d) => (
          <>
            {d.events.map((e) => (
              <section class="card">
                <h2>
                  {e.stage} · {e.verb} {e.resource ?? ''} {e.namespace ?? ''}/{e.name ?? ''}
                </h2>
                <p>
                  {e.subject !== null && (
                    <a href={hrefOf('explore', { subject: e.subject })}>All requests of {e.subject}</a>
                  )}
                  {e.resource !== null && e.name !== null && (
                    <>
                      {' · '}
                      <a
                        href={hrefOf('history', {
                          object: [e.resource, e.namespace, e.name].filter((x) => x !== null).join('/'),
                        })}
                      >
                        History of this object
                      </a>
                    </>
                  )}
                </p>
                <pre data-testid="event-json">{JSON.stringify(e.raw, null, 2)}</pre>
              </section>
            ))}
          </>
        )}
      </Status>
    </>
  );
}
