import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clickhouseOptionsFromConfig, clickhouseOptionsFromUrl } from './store-url.js';

const dir = mkdtempSync(join(tmpdir(), 'kaudit-churl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clickhouse:// URLs', () => {
  it('takes user, host, port, database, table and the Distributed cluster', () => {
    expect(
      clickhouseOptionsFromUrl('clickhouse://kaudit@ch.internal:9123/audit?table=k8s&distributed=two', {}),
    ).toEqual({
      url: 'http://ch.internal:9123',
      database: 'audit',
      username: 'kaudit',
      password: '',
      table: 'k8s',
      distributed: 'two',
    });
    expect(clickhouseOptionsFromUrl('clickhouses://ch/k', {})).toMatchObject({
      url: 'https://ch:8443',
      username: 'default',
    });
  });

  it('refuses a password in the URL, and takes it from KAUDIT_CLICKHOUSE_PASSWORD or a file', () => {
    expect(() => clickhouseOptionsFromUrl('clickhouse://u:secret@h:8123/db', {})).toThrow(
      expect.objectContaining({
        code: 'KAUDIT_STORE_PASSWORD_IN_URL',
        message: expect.not.stringContaining('secret'),
      }),
    );
    expect(
      clickhouseOptionsFromUrl('clickhouse://u@h:8123/db', { KAUDIT_CLICKHOUSE_PASSWORD: 'p1' }).password,
    ).toBe('p1');
    const file = join(dir, 'pw');
    writeFileSync(file, 'p2\n');
    expect(clickhouseOptionsFromUrl(`clickhouse://u@h:8123/db?password_file=${file}`, {}).password).toBe(
      'p2',
    );
    expect(() =>
      clickhouseOptionsFromUrl(`clickhouse://u@h:8123/db?password_file=${file}-missing`, {}),
    ).toThrow(expect.objectContaining({ code: 'KAUDIT_STORE_PASSWORD_FILE' }));
  });

  it('refuses names that are not plain identifiers', () => {
    for (const bad of [
      'clickhouse://h/db;drop',
      'clickhouse://h/db?table=a%60b',
      'clickhouse://h/db?distributed=x%27',
    ])
      expect(() => clickhouseOptionsFromUrl(bad, {})).toThrow(
        expect.objectContaining({ code: 'KAUDIT_STORE_URL_INVALID' }),
      );
  });
});

describe('the agent config store: section', () => {
  it('takes url, database, username, password_file and table', () => {
    const file = join(dir, 'pw-config');
    writeFileSync(file, 'from-file');
    expect(
      clickhouseOptionsFromConfig(
        {
          type: 'clickhouse',
          url: 'http://ch:8123',
          database: 'kaudit',
          username: 'agent',
          password_file: file,
          table: 'events_a',
        },
        {},
      ),
    ).toEqual({
      url: 'http://ch:8123',
      database: 'kaudit',
      username: 'agent',
      password: 'from-file',
      table: 'events_a',
    });
    expect(
      clickhouseOptionsFromConfig({ type: 'clickhouse', url: 'clickhouse://agent@ch:8123/k' }, {}),
    ).toMatchObject({
      url: 'http://ch:8123',
      database: 'k',
      username: 'agent',
    });
  });
});
