/**
 * `clickhouse://user@host:8123/db?table=audit_events&distributed=cluster` (`clickhouses://` for
 * HTTPS) and the agent config's `store:` section -> the store's options. The password is never
 * part of either: it comes from KAUDIT_CLICKHOUSE_PASSWORD or a file (`password_file`), so that it
 * shows in no process list, shell history or config diff.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../../model/errors.js';
import type { ClickHouseStoreOptions } from './clickhouse-store.js';

export const CLICKHOUSE_SPEC = /^clickhouses?:\/\//;

/** The agent config's `store:` section for ClickHouse. */
export interface ClickHouseStoreConfig {
  type: 'clickhouse';
  /** `http://host:8123`, `https://...`, or a clickhouse:// URL. */
  url: string;
  database?: string | undefined;
  username?: string | undefined;
  password_file?: string | undefined;
  table?: string | undefined;
  /** The remote_servers cluster of a Distributed setup. */
  distributed?: string | undefined;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function passwordOf(file: string | undefined, env: NodeJS.ProcessEnv, where: string): string {
  const fromEnv = env.KAUDIT_CLICKHOUSE_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  if (file === undefined) return '';
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new UserError('KAUDIT_STORE_PASSWORD_FILE', `${where}: cannot read password_file ${file}`, {
      hint: 'point password_file at a readable file holding only the password',
      cause,
    });
  }
}

function checkName(what: string, value: string, where: string): string {
  if (!NAME.test(value))
    throw new UserError(
      'KAUDIT_STORE_URL_INVALID',
      `${where}: ${what} ${JSON.stringify(value)} is not a plain name (letters, digits, _)`,
    );
  return value;
}

/** Options from a `clickhouse://` spec (as `--store` takes it). */
export function clickhouseOptionsFromUrl(
  spec: string,
  env: NodeJS.ProcessEnv = process.env,
): ClickHouseStoreOptions {
  let u: URL;
  try {
    u = new URL(spec);
  } catch (cause) {
    throw new UserError('KAUDIT_STORE_URL_INVALID', `--store ${JSON.stringify(spec)}: not a URL`, {
      hint: 'e.g. clickhouse://kaudit@clickhouse.example:8123/kaudit',
      cause,
    });
  }
  const shown = `clickhouse://${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`;
  if (u.password !== '')
    throw new UserError('KAUDIT_STORE_PASSWORD_IN_URL', `${shown}: the URL carries a password`, {
      hint: 'remove it from the URL; set KAUDIT_CLICKHOUSE_PASSWORD, or add ?password_file=PATH',
    });
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'kaudit';
  const table = u.searchParams.get('table') ?? undefined;
  const distributed = u.searchParams.get('distributed') ?? undefined;
  const scheme = u.protocol === 'clickhouses:' ? 'https' : 'http';
  const port = u.port || (scheme === 'https' ? '8443' : '8123');
  const opts: ClickHouseStoreOptions = {
    url: `${scheme}://${u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname}:${port}`,
    database: checkName('database', database, shown),
    username: decodeURIComponent(u.username) || 'default',
    password: passwordOf(u.searchParams.get('password_file') ?? undefined, env, shown),
  };
  if (table !== undefined) opts.table = checkName('table', table, shown);
  if (distributed !== undefined) opts.distributed = checkName('distributed', distributed, shown);
  return opts;
}

/** Options from the agent config's `store:` section. */
export function clickhouseOptionsFromConfig(
  c: ClickHouseStoreConfig,
  env: NodeJS.ProcessEnv = process.env,
  where = 'store',
): ClickHouseStoreOptions {
  if (CLICKHOUSE_SPEC.test(c.url)) {
    const fromUrl = clickhouseOptionsFromUrl(c.url, env);
    return {
      ...fromUrl,
      ...(c.database !== undefined ? { database: checkName('database', c.database, where) } : {}),
      ...(c.username !== undefined ? { username: c.username } : {}),
      ...(c.table !== undefined ? { table: checkName('table', c.table, where) } : {}),
      ...(c.distributed !== undefined ? { distributed: checkName('distributed', c.distributed, where) } : {}),
      password: passwordOf(c.password_file, env, where),
    };
  }
  let u: URL;
  try {
    u = new URL(c.url);
  } catch (cause) {
    throw new UserError('KAUDIT_STORE_URL_INVALID', `${where}.url ${JSON.stringify(c.url)}: not a URL`, {
      cause,
    });
  }
  if (u.password !== '')
    throw new UserError('KAUDIT_STORE_PASSWORD_IN_URL', `${where}.url carries a password`, {
      hint: 'use password_file or KAUDIT_CLICKHOUSE_PASSWORD',
    });
  const opts: ClickHouseStoreOptions = {
    url: `${u.protocol}//${u.host}`,
    database: checkName('database', c.database ?? 'kaudit', where),
    username: c.username ?? 'default',
    password: passwordOf(c.password_file, env, where),
  };
  if (c.table !== undefined) opts.table = checkName('table', c.table, where);
  if (c.distributed !== undefined) opts.distributed = checkName('distributed', c.distributed, where);
  return opts;
}
