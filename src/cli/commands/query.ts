import type { Command } from 'commander';
import { dataOption, resolveDataDir } from '../common.js';
import { formatTable, writeNdjson } from '../output.js';
import { openReadStore } from '../store-access.js';

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('Run read-only SQL over the `events` view')
    .argument('<sql>', 'one SELECT statement')
    .addOption(dataOption())
    .option('--json', 'one JSON object per row (NDJSON)')
    .addHelpText(
      'after',
      `
The events view has one row per (auditID, stage); see the README for its columns.

Examples:
  kaudit query "SELECT subject, count(*) AS n FROM events WHERE code = 403 GROUP BY 1 ORDER BY n DESC"
  kaudit query --json "SELECT audit_id, latency_ms FROM events WHERE latency_ms > 1000"`,
    )
    .action(async (sql: string, flags: { data?: string; json?: boolean }) => {
      const store = await openReadStore({ dataDir: resolveDataDir(flags.data) });
      try {
        const result = await store.query(sql);
        if (flags.json) writeNdjson(result.rows);
        else process.stdout.write(formatTable(result.columns, result.rows, 80));
      } finally {
        await store.close();
      }
    });
}
