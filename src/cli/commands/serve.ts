import type { Command } from 'commander';
import { parseListen } from '../../collect/config/listen.js';
import { UserError } from '../../model/errors.js';
import { createApp } from '../../server/app.js';
import { TokenAuth } from '../../server/auth.js';
import { listen } from '../../server/listen.js';
import type { Store } from '../../store/contract.js';
import { openReadStore } from '../../store/registry.js';
import { dataOption, resolveDataDir } from '../common.js';

interface ServeFlags {
  data?: string;
  listen: string;
  tokenFile?: string;
  adminTokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  clientCa?: string;
}

export const DEFAULT_SERVE_LISTEN = '127.0.0.1:5600';

/** Prometheus text for a store that no agent writes: its size and time range. */
async function storeMetrics(store: Store): Promise<string> {
  const info = await store.info();
  const lines = [
    '# HELP kaudit_store_rows Events stored.',
    '# TYPE kaudit_store_rows gauge',
    ...info.clusters.map((c) => `kaudit_store_rows{cluster=${JSON.stringify(c.cluster)}} ${c.rows}`),
    '# HELP kaudit_store_bytes Size of the store on disk.',
    '# TYPE kaudit_store_bytes gauge',
    `kaudit_store_bytes ${info.bytes ?? 0}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve the dashboard and the HTTP API over a store (filled by kaudit ingest, or held by the agent)',
    )
    .addOption(dataOption())
    .option(
      '--listen <host:port>',
      'address to listen on; anything but loopback needs tokens or client certificates',
      DEFAULT_SERVE_LISTEN,
    )
    .option('--token-file <file>', 'bearer tokens (one a line) that may read')
    .option('--admin-token-file <file>', 'bearer tokens that may also change state')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate...')
    .option('--tls-key <file>', '...and key')
    .option('--client-ca <file>', 'require client certificates signed by this CA')
    .addHelpText(
      'after',
      `
Examples:
  kaudit ingest audit.log && kaudit serve          # then open http://127.0.0.1:5600/
  kaudit serve --listen 0.0.0.0:8443 --tls-cert tls.crt --tls-key tls.key --token-file tokens.txt

The API is described in docs/api.md.`,
    )
    .action(async (flags: ServeFlags) => {
      const address = parseListen(flags.listen);
      if (address === undefined)
        throw new UserError(
          'KAUDIT_FLAG_INVALID',
          `--listen ${JSON.stringify(flags.listen)}: expected host:port`,
        );
      if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined))
        throw new UserError('KAUDIT_FLAG_INVALID', '--tls-cert and --tls-key go together');
      if (flags.clientCa !== undefined && flags.tlsCert === undefined)
        throw new UserError('KAUDIT_FLAG_INVALID', '--client-ca needs --tls-cert and --tls-key');
      const auth = new TokenAuth();
      if (flags.tokenFile !== undefined) auth.addFile(flags.tokenFile, 'read');
      if (flags.adminTokenFile !== undefined) auth.addFile(flags.adminTokenFile, 'admin');
      const store = await openReadStore(resolveDataDir(flags.data));
      try {
        const app = createApp({
          store,
          dataDir: resolveDataDir(flags.data),
          auth,
          status: async () => ({ store: await store.info() }),
          health: async () => {
            try {
              await store.info();
              return null;
            } catch (err) {
              return [err instanceof Error ? err.message : String(err)];
            }
          },
          metrics: () => storeMetrics(store),
        });
        const server = await listen(app, {
          host: address.host,
          port: address.port,
          tokens: auth.configured,
          ...(flags.tlsCert !== undefined && flags.tlsKey !== undefined
            ? {
                tls: {
                  cert: flags.tlsCert,
                  key: flags.tlsKey,
                  ...(flags.clientCa === undefined ? {} : { clientCa: flags.clientCa }),
                },
              }
            : {}),
        });
        process.stderr.write(
          `kaudit: serving ${store.location}\nkaudit: dashboard and API at ${server.url}/\n`,
        );
        const { details } = await store.info();
        // A read-only open shows an older file through a view that derives what the current layout
        // stores: right, but reports read slower.
        if (typeof details.fileLayout === 'number')
          process.stderr.write(
            `kaudit: the store file has an older layout (${details.fileLayout}); reports read faster after \`kaudit store init --data ${resolveDataDir(flags.data)}\` brings it up to date\n`,
          );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await server.close();
      } finally {
        await store.close();
      }
    });
}
