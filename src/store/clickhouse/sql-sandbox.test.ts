import { describe, expect, it } from 'vitest';
import { checkUserSql } from './sql-sandbox.js';

const ok = (sql: string) => () => checkUserSql(sql, 'kaudit', 'events');

describe('user SQL reads only the events view', () => {
  it('lets queries of the view through', () => {
    for (const sql of [
      'SELECT count() FROM events',
      'select verb, count() AS n from kaudit.events where ts > now() - 3600 group by verb',
      'SELECT * FROM (SELECT subject FROM events) WHERE subject IN (SELECT subject FROM events WHERE code = 403)',
      "SELECT g, count() FROM events ARRAY JOIN groups AS g WHERE raw LIKE '%FROM system.users%' GROUP BY g",
      'WITH 5 AS k SELECT k FROM `events` e JOIN events f USING audit_id',
      "SELECT 'FROM secrets' AS s -- FROM system.users\nFROM events",
    ])
      expect(ok(sql)).not.toThrow();
  });

  it('refuses other tables, databases, table functions, IN a table and dictionaries', () => {
    for (const sql of [
      'SELECT * FROM system.users',
      'SELECT * FROM audit_events',
      'SELECT * FROM other.events',
      'SELECT * FROM events JOIN system.tables ON 1',
      "SELECT * FROM file('/etc/passwd', 'CSV', 'a String')",
      'SELECT * FROM events WHERE subject IN system.users',
      "SELECT dictGetString('d', 'a', toUInt64(1)) FROM events",
      'SELECT * FROM `system`.`parts`',
      "SELECT * FROM (SELECT * FROM remote('127.0.0.1', system.one))",
    ])
      expect(ok(sql), sql).toThrow(expect.objectContaining({ code: 'KAUDIT_QUERY_FORBIDDEN' }));
  });

  it('refuses what is not one SELECT', () => {
    expect(ok('DROP TABLE events')).toThrow(expect.objectContaining({ code: 'KAUDIT_QUERY_READONLY' }));
    expect(ok('INSERT INTO events VALUES (1)')).toThrow(
      expect.objectContaining({ code: 'KAUDIT_QUERY_READONLY' }),
    );
    expect(ok('SELECT 1 FROM events; DROP TABLE events')).toThrow(
      expect.objectContaining({ code: 'KAUDIT_QUERY_INVALID' }),
    );
  });
});
