/** The dashboard's client of the JSON API: same origin, with the bearer token when one was given. */

const TOKEN_KEY = 'kaudit.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'KAUDIT_API_NOT_JSON', `${path}: HTTP ${res.status}`);
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(res.status, e?.code ?? 'KAUDIT_API_ERROR', e?.message ?? `HTTP ${res.status}`);
  }
  return body as T;
}

export function get<T>(path: string, params: Record<string, string | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return request<T>(s === '' ? path : `${path}?${s}`);
}

export function post<T>(
  path: string,
  body: string,
  params: Record<string, string | undefined> = {},
): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return request<T>(s === '' ? path : `${path}?${s}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/yaml' },
  });
}
