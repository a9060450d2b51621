import { type Command, Option } from 'commander';
import { UserError } from '../../model/errors.js';
import { openStore, selectStore } from '../../store/registry.js';
import { dataOption, resolveDataDir } from '../common.js';
import { toJson } from '../output.js';

const CLICKHOUSE = /^clickhouses?:\/\//;

/** The store a command names with --store, else KAUDIT_STORE (either may be unset). */
function storeSpecOf(flag: string | undefined): string | undefined {
  return flag ?? (process.env.KAUDIT_STORE || undefined);
}

export function registerStoreInit(program: Command): void {
  const store =
    program.commands.find((c) => c.name() === 'store') ?? program.command('store').description('The store');
  store
    .command('init')
    .description('Create the store: the embedded store file in --data, or the ClickHouse tables of --store')
    .addOption(dataOption())
    .option(
      '--shard <url...>',
      'with ?distributed=CLUSTER: the clickhouse:// URL of every shard, each given the local table',
    )
    .option('--json', 'what was created, as one JSON object')
    .addHelpText(
      'after',
      `
Safe to run again; on a store of an older schema it brings the schema up to date. The ClickHouse
password comes from KAUDIT_CLICKHOUSE_PASSWORD or ?password_file=PATH, never the URL.

Examples:
  kaudit store init --data /var/lib/kaudit
  kaudit store init --store clickhouse://kaudit@clickhouse.internal:8123/kaudit
  kaudit store init --store 'clickhouse://default@ch1:8123/kaudit?distributed=audit' \\
    --shard clickhouse://default@ch1:8123/kaudit --shard clickhouse://default@ch2:8123/kaudit`,
    )
    .action(async (flags: { data?: string; store?: string; shard?: string[]; json?: boolean }) => {
      const spec = storeSpecOf(flags.store);
      if (spec === undefined || !CLICKHOUSE.test(spec)) {
        if ((flags.shard ?? []).length > 0)
          throw new UserError('KAUDIT_FLAG_INVALID', '--shard goes with a ClickHouse --store');
        const s = await openStore(spec ?? resolveDataDir(flags.data));
        const info = await s.info();
        await s.close();
        const out = { backend: info.backend, location: info.location, schemaVersion: info.schemaVersion };
        process.stdout.write(
          flags.json ? `${toJson(out)}\n` : `${out.backend} store ready at ${out.location}\n`,
        );
        return;
      }
      const { ClickHouseStore } = await import('../../store/clickhouse/clickhouse-store.js');
      const { clickhouseOptionsFromUrl } = await import('../../store/clickhouse/store-url.js');
      const opts = clickhouseOptionsFromUrl(spec);
      const shards = (flags.shard ?? []).map((u) => clickhouseOptionsFromUrl(u).url);
      if (shards.length > 0 && opts.distributed === undefined)
        throw new UserError(
          'KAUDIT_FLAG_INVALID',
          '--shard needs a Distributed store: add ?distributed=CLUSTER to --store',
          {
            hint: 'CLUSTER is the remote_servers entry of the server --store names',
          },
        );
      const r = await ClickHouseStore.init(opts, shards);
      if (flags.json) process.stdout.write(`${toJson(r)}\n`);
      else
        process.stdout.write(
          `${r.created.map((c) => `created or kept ${c}`).join('\n')}\nschema version ${r.schemaVersion}\n`,
        );
    });
}

/**
 * Commands whose --data is not a store they open through store/registry.ts: the agent takes its
 * store from its config (`store:`), the others read files of the data directory.
 */
const NOT_A_STORE = new Set(['agent', 'status', 'doctor', 'alerts']);

/**
 * Gives every command that opens the store of --data a --store too, read before the command runs:
 * the store it opens (store/registry.ts) is then that one. Called once all commands are registered.
 */
export function addStoreOption(program: Command): void {
  // Every run starts from no selection (main() may run several commands in one process); the
  // root's hook runs before the command's own.
  program.hook('preAction', () => selectStore(undefined));
  const visit = (cmd: Command) => {
    if (cmd.options.some((o) => o.long === '--data') && !NOT_A_STORE.has(cmd.name())) {
      cmd.addOption(
        new Option(
          '--store <url>',
          'a ClickHouse store instead of --data: clickhouse://user@host:8123/db (env KAUDIT_STORE; password from KAUDIT_CLICKHOUSE_PASSWORD)',
        ),
      );
      cmd.hook('preAction', (_self, action) => {
        const spec = storeSpecOf((action.opts() as { store?: string }).store);
        selectStore(spec);
        // A command that reads a store only when --data is given (policy simulate) reads this one.
        if (spec !== undefined && action.getOptionValue('data') === undefined)
          action.setOptionValue('data', resolveDataDir(undefined));
      });
    }
    for (const sub of cmd.commands) visit(sub);
  };
  visit(program);
}
