import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The ClickHouse servers the store tests share (test/clickhouse/global-setup.ts).
    globalSetup: ['test/clickhouse/global-setup.ts'],
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-results.json' }]],
  },
});
