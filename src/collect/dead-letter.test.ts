import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DeadLetter } from './dead-letter.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'kaudit-dl-'));
  dirs.push(d);
  return d;
}

describe('DeadLetter', () => {
  it('recovers after one failed write: the next add succeeds', async () => {
    const dir = tempDir();
    const dl = new DeadLetter(dir);
    // A directory where the file should be makes open() fail once.
    mkdirSync(dl.path);
    await expect(dl.add({ source: 's', reason: 'bad', data: 'x' })).rejects.toThrow();
    rmSync(dl.path, { recursive: true });
    await dl.add({ source: 's', reason: 'bad', data: 'second' });
    await dl.close();
    expect(readFileSync(dl.path, 'utf8')).toContain('"data":"second"');
  });

  it('creates the file readable by its owner only (0600)', async () => {
    const dl = new DeadLetter(tempDir());
    await dl.add({ source: 's', reason: 'bad', data: 'x' });
    await dl.close();
    expect(statSync(dl.path).mode & 0o777).toBe(0o600);
  });

  it('redacts a record that parses as JSON as stored events are, and keeps other bytes as they came', async () => {
    const dl = new DeadLetter(tempDir());
    // Malformed (no stage), but its body is a Secret's.
    const secret = {
      kind: 'Event',
      auditID: 'a',
      verb: 'create',
      objectRef: { resource: 'secrets', namespace: 'default', name: 's' },
      requestURI: '/api/v1/namespaces/default/secrets?token=abc123',
      requestObject: { kind: 'Secret', data: { password: 'aHVudGVyMg==' } },
    };
    await dl.add({
      source: 's',
      reason: 'not an audit Event: field stage: missing',
      data: JSON.stringify(secret),
    });
    await dl.add({
      source: 's',
      reason: 'in a list',
      data: JSON.stringify({ kind: 'EventList', items: [secret] }),
    });
    await dl.add({ source: 's', reason: 'not JSON', data: '{"password": oops' });
    await dl.close();
    const text = readFileSync(dl.path, 'utf8');
    expect(text).not.toContain('aHVudGVyMg==');
    expect(text).not.toContain('abc123');
    expect(text.match(/<redacted>/g)).toHaveLength(2);
    expect(text.match(/token=%3Credacted%3E/g)).toHaveLength(2);
    expect(text).toContain('{\\"password\\": oops');
  });
});
