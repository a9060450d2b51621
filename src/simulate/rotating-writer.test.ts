import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Simulation } from './generator.js';
import { backupName, RotatingWriter, simulateToFile } from './rotating-writer.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kaudit-rotate-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const BACKUP = /^audit-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.log(\.gz)?$/;

function readAll(files: string[]): string[] {
  return files.flatMap((f) => {
    const raw = readFileSync(f);
    const text = (f.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    return text.split('\n').filter((l) => l !== '');
  });
}

describe('backupName', () => {
  it('inserts the UTC rotation time between name and extension, as lumberjack does', () => {
    expect(backupName(join('var', 'audit.log'), Date.UTC(2006, 0, 2, 15, 4, 5, 7))).toBe(
      join('var', 'audit-2006-01-02T15-04-05.007.log'),
    );
    expect(backupName('audit', 0)).toBe('audit-1970-01-01T00-00-00.000');
  });
});

describe('RotatingWriter', () => {
  it('rotates into kube-apiserver file names and loses no event across files', () => {
    const path = join(dir, 'audit.log');
    const sim = new Simulation({ seed: 11, count: 6000 });
    const expected = new Set<string>();
    const writer = new RotatingWriter({ path, maxBytes: 256 * 1024, bufferBytes: 100_000 });
    for (const e of sim) {
      expected.add(`${e.auditID}/${e.stage}`);
      writer.write(e.line, e.t);
    }
    const summary = writer.close();
    expect(summary.rotations).toBeGreaterThan(20);
    expect(summary.files.at(-1)).toBe(path);
    const names = readdirSync(dir).filter((n) => n !== 'audit.log');
    expect(names.length).toBe(summary.rotations);
    for (const n of names) expect(n).toMatch(BACKUP);
    for (const f of summary.files) expect(readFileSync(f).length).toBeLessThanOrEqual(256 * 1024);
    const lines = readAll(summary.files);
    expect(lines).toHaveLength(6000);
    const got = new Set(
      lines.map((l) => {
        const e = JSON.parse(l) as { auditID: string; stage: string };
        return `${e.auditID}/${e.stage}`;
      }),
    );
    expect(got).toEqual(expected);
    // Oldest first: concatenating the files in order gives the stream in order.
    const stamps = lines.map((l) => (JSON.parse(l) as { stageTimestamp: string }).stageTimestamp);
    expect(stamps).toEqual([...stamps].sort());
  });

  it('names each backup after the simulated time of the event that did not fit', () => {
    const path = join(dir, 'audit.log');
    const writer = new RotatingWriter({ path, maxBytes: 100 });
    const t = Date.UTC(2026, 0, 15, 9, 30, 0, 250) * 1000;
    writer.write(`${'a'.repeat(59)}\n`, t);
    writer.write(`${'b'.repeat(59)}\n`, t + 1500);
    writer.write(`${'c'.repeat(59)}\n`, t + 1700);
    const { files } = writer.close();
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual([
      'audit-2026-01-15T09-30-00.251.log',
      // Same millisecond again: moved on by one instead of overwriting the first backup.
      'audit-2026-01-15T09-30-00.252.log',
      'audit.log',
    ]);
    expect(readAll(files).map((l) => l[0])).toEqual(['a', 'b', 'c']);
  });

  it('keeps only the newest --max-backups files and gzips them with --compress', () => {
    const path = join(dir, 'audit.log');
    const sim = new Simulation({ seed: 12, count: 3000 });
    const writer = new RotatingWriter({ path, maxBytes: 128 * 1024, maxBackups: 2, compress: true });
    const all: string[] = [];
    for (const e of sim) {
      all.push(e.line.trimEnd());
      writer.write(e.line, e.t);
    }
    const { files, rotations } = writer.close();
    expect(rotations).toBeGreaterThan(5);
    expect(files).toHaveLength(3);
    expect(files.slice(0, 2).every((f) => f.endsWith('.log.gz'))).toBe(true);
    for (const f of files.slice(0, 2)) expect(f.slice(dir.length + 1)).toMatch(BACKUP);
    // What is kept is the tail of the stream, contiguous and complete.
    const kept = readAll(files);
    expect(kept).toEqual(all.slice(all.length - kept.length));
  });

  it('refuses an event larger than the whole file size, like lumberjack', () => {
    const writer = new RotatingWriter({ path: join(dir, 'audit.log'), maxBytes: 10 });
    expect(() => writer.write(`${'x'.repeat(20)}\n`, 0)).toThrow(/does not fit/);
    writer.close();
  });

  it('replaces an existing file instead of appending to an earlier run', () => {
    const path = join(dir, 'audit.log');
    writeFileSync(path, 'old\n');
    const writer = new RotatingWriter({ path });
    writer.write('new\n', 0);
    writer.close();
    expect(readFileSync(path, 'utf8')).toBe('new\n');
  });
});

describe('simulateToFile', () => {
  it('writes the log and its truth beside it, in the background, in order', async () => {
    const path = join(dir, 'audit.log');
    const result = await simulateToFile(new Simulation({ seed: 1, count: 2000 }), {
      path,
      bufferBytes: 64 * 1024,
      maxBytes: 512 * 1024,
    });
    expect(result.rotations).toBeGreaterThan(2);
    const lines = readAll(result.files);
    expect(lines).toEqual([...new Simulation({ seed: 1, count: 2000 })].map((e) => e.line.trimEnd()));
    expect(result.lines).toBe(2000);
    expect(existsSync(`${path}.truth.json`)).toBe(true);
    const truth = JSON.parse(readFileSync(`${path}.truth.json`, 'utf8')) as { events: number };
    expect(truth.events).toBe(2000);
  });
});
