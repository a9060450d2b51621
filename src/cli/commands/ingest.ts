import { type Command, Option } from 'commander';
import { DeadLetter } from '../../collect/dead-letter.js';
import { ingest } from '../../collect/ingest.js';
import { createLogger } from '../../collect/logger.js';
import { UserError } from '../../model/errors.js';
import { DEFAULT_MAX_EVENT_BYTES } from '../../model/prepare.js';
import { openStoreOrAgent } from '../../store/registry.js';
import { dataOption, parseIntFlag, parsePositiveNumberFlag, resolveDataDir } from '../common.js';
import { EXIT_FINDINGS, setExitCode } from '../main.js';
import { toJson } from '../output.js';
import { ProgressBar } from '../progress.js';

interface IngestFlags {
  data?: string;
  cluster: string;
  json?: boolean;
  redact: boolean;
  maxEventBytes?: string;
  retentionDays?: string;
  progress: boolean;
}

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description(
      'Load audit logs (JSON lines, EventList, JSON arrays, .gz; v1, v1beta1, GKE and AKS exports) into the store',
    )
    .argument('<path...>', 'files or directories to read; - for standard input')
    .addOption(dataOption())
    .option('--cluster <name>', 'cluster name stored with each event', 'default')
    .option('--json', 'print the summary as one JSON object')
    .option('--no-redact', 'store Secret values and tokens as they are (redaction is on by default)')
    .option(
      '--max-event-bytes <n>',
      `events larger than this are stored without bodies (default ${DEFAULT_MAX_EVENT_BYTES})`,
    )
    .option('--retention-days <n>', 'delete events older than this many days')
    .addOption(new Option('--no-progress', 'no progress bar even on a terminal'))
    .addHelpText(
      'after',
      `
Malformed records are counted and written, with their source and byte offset, to
DATA/dead-letter.ndjson; the run goes on. Ingesting the same events twice stores them once.

Examples:
  kaudit ingest /var/log/kubernetes/audit/
  zcat audit-*.log.gz | kaudit ingest --cluster prod -
  kaudit ingest --json audit.log | jq .stored`,
    )
    .action(async (paths: string[], flags: IngestFlags) => {
      const dataDir = resolveDataDir(flags.data);
      const maxEventBytes =
        flags.maxEventBytes === undefined
          ? DEFAULT_MAX_EVENT_BYTES
          : parseIntFlag('--max-event-bytes', flags.maxEventBytes, 1024);
      const retentionDays =
        flags.retentionDays === undefined
          ? undefined
          : parsePositiveNumberFlag('--retention-days', flags.retentionDays);
      // One thread per import: two writers then keep both cores busy, each filling whole row groups.
      // Chosen when row groups were 122,880 rows (384MB was ~10% slower, 512MB peaked near 1.5 GB);
      // with 16,384-row groups an import needs far less and peak RSS is ~0.6 GB (bench:ingest).
      // While the agent holds the store, the events go through it (same de-duplication, same store).
      const store = await openStoreOrAgent(dataDir, {
        threads: 1,
        memoryLimit: '448MB',
        ...(retentionDays === undefined ? {} : { retentionDays }),
      });
      const deadLetter = new DeadLetter(dataDir);
      const bar = new ProgressBar();
      try {
        const summary = await ingest(
          paths.map((p) => (p === '-' ? { path: p, stream: process.stdin } : { path: p })),
          {
            store,
            cluster: flags.cluster,
            deadLetter,
            log: createLogger({ level: 'warn' }),
            prepare: { maxEventBytes, redact: flags.redact },
            ...(flags.progress ? { onProgress: (p) => bar.update(p) } : {}),
          },
        );
        bar.done();
        if (summary.files === 0 && summary.skipped.length > 0)
          throw new UserError(
            'KAUDIT_INPUT_NOT_FOUND',
            `nothing to read: ${summary.skipped.map((x) => `${x.path}: ${x.reason}`).join('; ')}`,
          );
        if (summary.events === 0 && summary.malformed > 0)
          throw new UserError(
            'KAUDIT_INPUT_NOT_AUDIT',
            `no audit events in the input: ${summary.skipped.map((x) => `${x.path}: ${x.reason}`).join('; ')}`,
            {
              hint: 'kaudit reads kube-apiserver audit logs: JSON lines, EventList, arrays, v1beta1, GKE and AKS exports',
            },
          );
        // An empty file is most often a log just rotated: said, not an error (see docs/errors.md).
        if (summary.events === 0 && summary.malformed === 0 && summary.skipped.length === 0)
          process.stderr.write(
            summary.files === 0
              ? `kaudit: warning: no files to read in ${paths.join(', ')}; nothing stored\n`
              : `kaudit: warning: every input is empty (${summary.empty.join(', ')}); nothing stored\n`,
          );
        if (flags.json) {
          process.stdout.write(`${toJson(summary)}\n`);
        } else {
          process.stdout.write(
            `stored ${summary.stored} events from ${summary.files} file(s), ${(summary.bytes / 1048576).toFixed(1)} MB in ${summary.seconds}s (${summary.eventsPerSecond} events/s)\n` +
              `  duplicates ${summary.duplicates}  truncated ${summary.truncated}  malformed ${summary.malformed}\n` +
              (summary.malformed > 0 ? `  malformed records kept in ${summary.deadLetter}\n` : '') +
              summary.skipped.map((x) => `  skipped ${x.path}: ${x.reason}\n`).join('') +
              `  store ${store.location}\n`,
          );
        }
        // Some input was not read whole: the good events are stored, the run says so in its exit status.
        if (summary.skipped.length > 0) setExitCode(EXIT_FINDINGS);
      } finally {
        bar.done();
        await deadLetter.close();
        await store.close();
      }
    });
}
