/**
 * The dashboard's state lives in the URL (`#/latency?since=...&cluster=prod`): links can be shared
 * and the back button works. Pages read it with useRoute() and change it with navigate().
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  page: string;
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const text = hash.replace(/^#\/?/, '');
  const q = text.indexOf('?');
  const page = (q < 0 ? text : text.slice(0, q)) || 'overview';
  return { page, params: new URLSearchParams(q < 0 ? '' : text.slice(q + 1)) };
}

export function hrefOf(page: string, params: URLSearchParams | Record<string, string | undefined>): string {
  const p = params instanceof URLSearchParams ? new URLSearchParams(params) : new URLSearchParams();
  if (!(params instanceof URLSearchParams))
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, v);
  const s = p.toString();
  return `#/${page}${s === '' ? '' : `?${s}`}`;
}

export function navigate(page: string, params: URLSearchParams | Record<string, string | undefined>): void {
  location.hash = hrefOf(page, params);
}

/** A copy of the route's parameters with some set (undefined or '' removes). */
export function withParams(
  params: URLSearchParams,
  changes: Record<string, string | undefined>,
): URLSearchParams {
  const p = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === '') p.delete(k);
    else p.set(k, v);
  }
  return p;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** The parameters every report shares: the time range and the cluster. */
export function rangeParams(params: URLSearchParams): Record<string, string | undefined> {
  return {
    since: params.get('since') ?? undefined,
    until: params.get('until') ?? undefined,
    cluster: params.get('cluster') ?? undefined,
  };
}
