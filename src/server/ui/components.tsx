import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { ApiError } from './api.js';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | Error | undefined;
  loading: boolean;
}

/** Runs `load` whenever `key` changes; keeps the last data while the next loads. */
export function useLoad<T>(key: string, load: () => Promise<T>): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ data: undefined, error: undefined, loading: true });
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: Error) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [key]);
  return state;
}

export function Status<T>({
  state,
  children,
}: {
  state: Loaded<T>;
  children: (data: T) => ComponentChildren;
}) {
  if (state.error !== undefined)
    return (
      <p class="error" role="alert">
        {state.error instanceof ApiError && state.error.status === 401
          ? 'This server wants a token: enter it at the top right.'
          : state.error.message}
      </p>
    );
  if (state.data === undefined) return <p class="muted">Loading…</p>;
  return <div aria-busy={state.loading}>{children(state.data)}</div>;
}

export type CellValue = string | number | null | undefined | { text: string; href: string };

function cellText(v: CellValue): ComponentChildren {
  if (v === null || v === undefined) return <span class="muted">-</span>;
  if (typeof v === 'object') return <a href={v.href}>{v.text}</a>;
  if (typeof v === 'number') return v.toLocaleString('en', { maximumFractionDigits: 1 });
  return v;
}

export function Table({
  caption,
  columns,
  rows,
  empty,
  onRow,
  testId,
}: {
  caption: string;
  columns: string[];
  rows: CellValue[][];
  empty?: string;
  onRow?: (index: number) => void;
  testId?: string;
}) {
  return (
    <section class="card">
      <h2>{caption}</h2>
      {rows.length === 0 ? (
        <p class="muted">{empty ?? 'Nothing in this window.'}</p>
      ) : (
        <div class="scroll">
          <table data-testid={testId}>
            <thead>
              <tr>
                {columns.map((c) => (
                  <th scope="col">{c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr
                  class={onRow ? 'clickable' : undefined}
                  tabIndex={onRow ? 0 : undefined}
                  onClick={onRow ? () => onRow(i) : undefined}
                  onKeyDown={onRow ? (e) => e.key === 'Enter' && onRow(i) : undefined}
                >
                  {r.map((v) => (
                    <td>{cellText(v)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function Figure({
  label,
  value,
  testId,
}: {
  label: string;
  value: ComponentChildren;
  testId?: string;
}) {
  return (
    <div class="figure">
      <div class="figure-value" data-testid={testId}>
        {value}
      </div>
      <div class="figure-label">{label}</div>
    </div>
  );
}

export interface Series {
  label: string;
  values: (number | null)[];
}

const PALETTE = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
];

/**
 * A time-series chart (uPlot). `times` are epoch milliseconds; with `onSelect`, dragging across
 * the chart picks a time range.
 */
export function TimeChart({
  title,
  times,
  series,
  onSelect,
  bars,
}: {
  title: string;
  times: number[];
  series: Series[];
  onSelect?: (fromMs: number, toMs: number) => void;
  bars?: boolean;
}) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = el.current;
    if (host === null || times.length === 0) return;
    const width = Math.max(320, host.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: true } },
        axes: [{}, { size: 64 }],
        legend: { show: true },
        cursor: { drag: { x: onSelect !== undefined, y: false } },
        series: [
          {},
          ...series.map((s, i): uPlot.Series => {
            const colour = PALETTE[i % PALETTE.length] ?? '#888';
            const one: uPlot.Series = { label: s.label, stroke: colour };
            const barPaths = bars ? uPlot.paths.bars?.({ size: [0.9] }) : undefined;
            if (barPaths !== undefined) {
              one.fill = `${colour}88`;
              one.paths = barPaths;
            }
            return one;
          }),
        ],
        hooks: onSelect
          ? {
              setSelect: [
                (u: uPlot) => {
                  if (u.select.width < 2) return;
                  const from = u.posToVal(u.select.left, 'x');
                  const to = u.posToVal(u.select.left + u.select.width, 'x');
                  onSelect(from * 1000, to * 1000);
                },
              ],
            }
          : {},
      },
      [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData,
      host,
    );
    return () => plot.destroy();
  }, [times, series]);
  return (
    <section class="card">
      <h2>{title}</h2>
      {times.length === 0 ? <p class="muted">No data in this window.</p> : <div ref={el} class="chart" />}
    </section>
  );
}

/** Pivots rows of (bucket, key, value) into one series per key over the sorted buckets. */
export function pivot(
  rows: { bucket: string; key: string; value: number | null }[],
  maxSeries = 8,
): { times: number[]; series: Series[] } {
  const times = [...new Set(rows.map((r) => r.bucket))].sort().map((b) => Date.parse(b));
  const index = new Map(times.map((t, i) => [t, i]));
  const totals = new Map<string, number>();
  for (const r of rows) totals.set(r.key, (totals.get(r.key) ?? 0) + (r.value ?? 0));
  const keys = [...totals.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, maxSeries)
    .map(([k]) => k);
  const series = keys.map((k) => ({ label: k, values: times.map(() => 0 as number | null) }));
  for (const r of rows) {
    const s = series[keys.indexOf(r.key)];
    const i = index.get(Date.parse(r.bucket));
    if (s !== undefined && i !== undefined) s.values[i] = r.value;
  }
  return { times, series };
}

/** Copies text (a YAML fix, a role) to the clipboard. */
export function CopyButton({ text }: { text: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(() => setDone(true));
      }}
    >
      {done ? 'Copied' : 'Copy YAML'}
    </button>
  );
}
