import { render } from 'preact';
import { useState } from 'preact/hooks';
import { get, setToken } from './api.js';
import { useLoad } from './components.js';
import { EventView, Explore } from './pages/explore.js';
import { History } from './pages/history.js';
import { Latency } from './pages/latency.js';
import { Overview } from './pages/overview.js';
import { Policy } from './pages/policy.js';
import { PAGES_AFTER } from './pages/registry.js';
import { hrefOf, navigate, useRoute, withParams } from './state.js';
import type { StoreInfo } from './types.js';

const PAGES: { id: string; title: string; view: (p: { params: URLSearchParams }) => preact.JSX.Element }[] = [
  { id: 'overview', title: 'Overview', view: Overview },
  { id: 'explore', title: 'Explore', view: Explore },
  ...PAGES_AFTER,
  { id: 'latency', title: 'Latency', view: Latency },
  { id: 'history', title: 'History', view: History },
  { id: 'policy', title: 'Policy', view: Policy },
];
const HIDDEN = [{ id: 'event', title: 'Event', view: EventView }];

const RANGES = [
  ['1h', 3_600_000],
  ['6h', 21_600_000],
  ['24h', 86_400_000],
  ['7d', 604_800_000],
  ['30d', 2_592_000_000],
] as const;

/** The time range picker: presets end at the newest stored event (an imported old log just works). */
function RangePicker({ params, info }: { params: URLSearchParams; info: StoreInfo | undefined }) {
  const newest =
    info?.newest === null || info?.newest === undefined ? Date.now() : Date.parse(info.newest) + 1;
  const pick = (span: number) =>
    navigate(
      current(),
      withParams(params, {
        since: new Date(newest - span).toISOString(),
        until: new Date(newest).toISOString(),
      }),
    );
  return (
    <fieldset class="range" aria-label="time range">
      {RANGES.map(([label, span]) => (
        <button type="button" onClick={() => pick(span)}>
          {label}
        </button>
      ))}
      <input
        aria-label="since"
        type="datetime-local"
        value={params.get('since')?.slice(0, 16) ?? ''}
        onChange={(e) => {
          const v = (e.target as HTMLInputElement).value;
          navigate(
            current(),
            withParams(params, { since: v === '' ? undefined : new Date(`${v}Z`).toISOString() }),
          );
        }}
      />
      <input
        aria-label="until"
        type="datetime-local"
        value={params.get('until')?.slice(0, 16) ?? ''}
        onChange={(e) => {
          const v = (e.target as HTMLInputElement).value;
          navigate(
            current(),
            withParams(params, { until: v === '' ? undefined : new Date(`${v}Z`).toISOString() }),
          );
        }}
      />
    </fieldset>
  );
}

function current(): string {
  return location.hash.replace(/^#\/?/, '').split('?')[0] || 'overview';
}

function TokenBox() {
  const [open, setOpen] = useState(false);
  if (!open)
    return (
      <button type="button" class="link" onClick={() => setOpen(true)}>
        token
      </button>
    );
  return (
    <form
      class="token"
      onSubmit={(e) => {
        e.preventDefault();
        const v = String(new FormData(e.target as HTMLFormElement).get('token') ?? '').trim();
        setToken(v === '' ? null : v);
        location.reload();
      }}
    >
      <input name="token" type="password" aria-label="API token" placeholder="bearer token" />
      <button type="submit">Use</button>
    </form>
  );
}

function App() {
  const route = useRoute();
  const info = useLoad('info', () => get<StoreInfo>('/api/v1/info'));
  const page = [...PAGES, ...HIDDEN].find((p) => p.id === route.page) ?? PAGES[0];
  const View = page?.view ?? Overview;
  const clusters = info.data?.clusters ?? [];
  const keep = withParams(route.params, {});
  const shared = new URLSearchParams();
  for (const k of ['since', 'until', 'cluster']) {
    const v = keep.get(k);
    if (v !== null) shared.set(k, v);
  }
  return (
    <>
      <header>
        <a class="brand" href="#/overview">
          kaudit
        </a>
        <nav aria-label="pages">
          {PAGES.map((p) => (
            <a href={hrefOf(p.id, shared)} aria-current={p.id === page?.id ? 'page' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <div class="controls">
          <RangePicker params={route.params} info={info.data} />
          <select
            aria-label="cluster"
            value={route.params.get('cluster') ?? ''}
            onChange={(e) =>
              navigate(
                route.page,
                withParams(route.params, { cluster: (e.target as HTMLSelectElement).value }),
              )
            }
          >
            <option value="">all clusters</option>
            {clusters.map((c) => (
              <option value={c.cluster}>{c.cluster}</option>
            ))}
          </select>
          <TokenBox />
        </div>
      </header>
      <main>
        <View params={route.params} />
      </main>
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
