import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findConfigFile } from './agent.js';

const dir = mkdtempSync(join(tmpdir(), 'kaudit-find-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('findConfigFile', () => {
  it('falls back to the platform config when there is no flag, no KAUDIT_CONFIG and no ./kaudit.yaml', () => {
    const platform = join(dir, 'kaudit.yaml');
    const saved = process.env.KAUDIT_CONFIG;
    delete process.env.KAUDIT_CONFIG;
    try {
      expect(findConfigFile(undefined, platform)).toBeUndefined();
      writeFileSync(platform, 'cluster: x\n');
      expect(findConfigFile(undefined, platform)).toBe(platform);
      expect(findConfigFile('other.yaml', platform)).toMatch(/other\.yaml$/);
    } finally {
      if (saved !== undefined) process.env.KAUDIT_CONFIG = saved;
    }
  });
});
