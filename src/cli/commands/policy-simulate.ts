import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import type { ReadEvent } from '../../model/read-events.js';
import { simulatePolicy } from '../../policy/simulate.js';
import { openReadStore } from '../../store/registry.js';
import { storedEvents } from '../../store/stored-events.js';
import { dataOption, parseIntFlag, resolveDataDir } from '../common.js';
import { formatTable, toJson } from '../output.js';
import {
  entryOption,
  formatBytes,
  fragmentOption,
  kubernetesVersionOption,
  type PolicySourceFlags,
  readLogs,
  readPolicy,
} from './policy-files.js';

interface SimulateFlags extends PolicySourceFlags {
  json?: boolean;
  top: string;
  data?: string;
}

const _STORE_PAGE_ROWS = 5000;

/** Every event held in the store (redacted, as ingest stored it), with its stored size. */
async function* storeEvents(dataDir: string): AsyncGenerator<ReadEvent> {
  const store = await openReadStore(dataDir);
  try {
    for await (const { event, bytes } of storedEvents(store)) yield { event, bytes };
  } finally {
    await store.close();
  }
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '-');

export function registerPolicySimulate(policy: Command): void {
  policy
    .command('simulate')
    .description(
      'Apply a policy to captured audit events: what each rule keeps, the new volume, what is lost',
    )
    .argument('<policy>', 'policy file')
    .argument('[log...]', 'captured audit logs (JSON lines, EventList, gzip, ...)')
    .addOption(
      dataOption()
        .default(undefined)
        .argParser((v: string) => v),
    )
    .addOption(kubernetesVersionOption())
    .addOption(fragmentOption())
    .addOption(entryOption())
    .option('--top <n>', 'list this many of the dropped request kinds', '10')
    .option('--json', 'the whole report as one JSON object')
    .addHelpText(
      'after',
      `
Sizes are estimates: an event keeps its captured size minus the bodies its new level does not log. Events the
capture does not hold (a stage or body the old policy left out) cannot be added.

Examples:
  kaudit policy simulate new-policy.yaml /var/log/kubernetes/audit/audit.log
  kaudit policy simulate new-policy.yaml audit-*.log.gz --json
  kaudit policy simulate new-policy.yaml --data ./kaudit-data     # everything ingested so far`,
    )
    .action(async (file: string, logs: string[], flags: SimulateFlags) => {
      const { policy: p, features } = readPolicy(file, flags);
      const topDropped = parseIntFlag('--top', flags.top, 0);
      // With no logs named, the store: --data, else KAUDIT_DATA.
      const fromEnv = process.env.KAUDIT_DATA ?? '';
      if (logs.length === 0 && flags.data === undefined && fromEnv !== '') flags.data = fromEnv;
      if ((logs.length === 0) === (flags.data === undefined)) {
        throw new UserError(
          'KAUDIT_SIMULATE_NO_INPUT',
          'give either audit log files or --data DIR (the store), not both or neither',
          {
            hint: 'kaudit policy simulate policy.yaml audit.log, or kaudit policy simulate policy.yaml --data ./kaudit-data',
          },
        );
      }
      const events = flags.data === undefined ? readLogs(logs) : storeEvents(resolveDataDir(flags.data));
      const r = await simulatePolicy(p, events, { features, topDropped });
      if (flags.json) {
        process.stdout.write(`${toJson(r)}\n`);
        return;
      }
      const out = process.stdout;
      out.write(
        formatTable(
          ['log', 'events', 'requests', 'bytes', 'per_day'],
          [
            {
              log: 'captured',
              events: r.input.events,
              requests: r.input.requests,
              bytes: formatBytes(r.input.bytes),
              per_day: formatBytes(r.input.bytesPerDay),
            },
            {
              log: 'with policy',
              events: r.output.events,
              requests: r.output.requests,
              bytes: formatBytes(r.output.bytes),
              per_day: formatBytes(r.output.bytesPerDay),
            },
          ],
        ),
      );
      out.write(
        `\nThe policy keeps ${pct(r.output.bytes, r.input.bytes)} of the captured bytes (${r.input.from ?? '?'} to ${r.input.to ?? '?'}).\n\n`,
      );
      out.write(
        formatTable(
          ['rule', 'level', 'matched', 'kept_events', 'bytes', 'share'],
          [
            ...r.rules.map((x) => ({
              rule: `rules[${x.index}]`,
              level: x.level,
              matched: x.matched,
              kept_events: x.events,
              bytes: formatBytes(x.bytes),
              share: pct(x.bytes, r.output.bytes),
            })),
            {
              rule: 'no rule',
              level: 'None',
              matched: r.unmatched.events,
              kept_events: 0,
              bytes: formatBytes(0),
              share: '-',
            },
          ],
        ),
      );
      const sensitive = Object.entries(r.sensitiveBodies.byResource)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      out.write(
        `\nEvents with bodies of secret-like resources: ${r.sensitiveBodies.events}${sensitive ? ` (${sensitive})` : ''}\n`,
      );
      if (r.bodiesNotCaptured > 0) {
        out.write(
          `Events logged at a higher level than captured (their bodies are missing from the estimate): ${r.bodiesNotCaptured}\n`,
        );
      }
      out.write(
        `Requests dropped entirely: ${r.dropped.requests} of ${r.input.requests} (${r.dropped.events} events)\n`,
      );
      if (r.dropped.top.length > 0) {
        out.write(
          `\n${formatTable(
            ['requests', 'user', 'verb', 'resource'],
            r.dropped.top.map((g) => ({ ...g })),
            70,
          )}`,
        );
      }
    });
}
