import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { DEAD_LETTER_FILE } from '../../collect/dead-letter.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, resolveDataDir } from '../common.js';
import { formatTable, toJson } from '../output.js';

async function countLines(path: string): Promise<number> {
  if (!existsSync(path)) return 0;
  let n = 0;
  for await (const line of createInterface({
    input: createReadStream(path),
    crlfDelay: Number.POSITIVE_INFINITY,
  }))
    if (line.trim() !== '') n++;
  return n;
}

const mib = (b: number | null) => (b === null ? 'unknown' : `${(b / 1048576).toFixed(1)} MiB`);

export function registerStoreInfo(program: Command): void {
  const store =
    program.commands.find((c) => c.name() === 'store') ?? program.command('store').description('The store');
  store
    .command('info')
    .description(
      'What the store holds: backend, location, size, events, time range, rows per cluster, dead letters',
    )
    .addOption(dataOption())
    .option('--json', 'one JSON object')
    .addHelpText(
      'after',
      `
Works on a stopped store and while the agent holds it (through the agent's API).

Examples:
  kaudit store info
  kaudit store info --json | jq '.clusters[] | {cluster, rows}'`,
    )
    .action(async (flags: { data?: string; json?: boolean }) => {
      const dataDir = resolveDataDir(flags.data);
      const s = await openReadStore(dataDir);
      try {
        const info = await s.info();
        const deadLetterPath = join(dataDir, DEAD_LETTER_FILE);
        const out = { ...info, deadLetters: await countLines(deadLetterPath), deadLetterPath };
        if (flags.json) {
          process.stdout.write(`${toJson(out)}\n`);
          return;
        }
        process.stdout.write(
          `${info.backend} store at ${info.location} (layout ${info.schemaVersion})\n` +
            `  size ${mib(info.bytes)}, ${info.rows} events, ${info.oldest ?? '-'} to ${info.newest ?? '-'}\n` +
            `  dead letters: ${out.deadLetters}${out.deadLetters > 0 ? ` in ${deadLetterPath}` : ''}\n\n`,
        );
        if (info.clusters.length > 0)
          process.stdout.write(
            formatTable(
              ['cluster', 'rows', 'oldest', 'newest'],
              info.clusters.map((c) => ({ ...c })),
            ),
          );
      } finally {
        await s.close();
      }
    });
}
