import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, parseIntFlag, resolveDataDir } from '../common.js';
import { formatTable, writeNdjson } from '../output.js';

export function registerQuery(program: Command): void {
  program
    .command('query')
    .description('Run read-only SQL over the `events` view')
    .argument('<sql>', 'one SELECT statement')
    .addOption(dataOption())
    .option('--json', 'one JSON object per row (NDJSON)')
    .option('--max-rows <n>', 'at most this many rows', '10000')
    .option('--timeout <seconds>', 'stop the query after this long', '60')
    .addHelpText(
      'after',
      `
The events view has one row per (auditID, stage); see the README for its columns.

Examples:
  kaudit query "SELECT subject, count(*) AS n FROM events WHERE code = 403 GROUP BY 1 ORDER BY n DESC"
  kaudit query --json "SELECT audit_id, latency_ms FROM events WHERE latency_ms > 1000"`,
    )
    .action(
      async (sql: string, flags: { data?: string; json?: boolean; maxRows: string; timeout: string }) => {
        const maxRows = parseIntFlag('--max-rows', flags.maxRows, 1);
        const timeoutMs = parseIntFlag('--timeout', flags.timeout, 1) * 1000;
        const store = await openReadStore(resolveDataDir(flags.data));
        try {
          if (store.sql === undefined)
            throw new UserError('KAUDIT_QUERY_UNSUPPORTED', `the ${store.backend} store takes no SQL`, {
              hint: 'use kaudit search or the reports',
            });
          const result = await store.sql(sql, { maxRows, timeoutMs });
          if (flags.json) writeNdjson(result.rows);
          else process.stdout.write(formatTable(result.columns, result.rows, 80));
          if (result.truncated)
            process.stderr.write(
              `kaudit: more than ${maxRows} rows matched; showing the first ${maxRows} (--max-rows)\n`,
            );
        } finally {
          await store.close();
        }
      },
    );
}
