import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { DEFAULT_CLIENT_NAME, DEFAULT_SERVER_NAMES, makeWebhookCerts } from '../../setup/certs.js';
import { readFileOrThrow } from '../../setup/files.js';
import { parseIntFlag } from '../common.js';
import { toJson } from '../output.js';

interface CertsFlags {
  outDir: string;
  serverName?: string[];
  clientName: string;
  days: string;
  caDays: string;
  caCert?: string;
  caKey?: string;
  force?: boolean;
  json?: boolean;
}

export function registerSetupCerts(setup: Command): void {
  setup
    .command('certs')
    .description(
      "Make a CA, the webhook receiver's server certificate and kube-apiserver's client certificate",
    )
    .option('--out-dir <dir>', 'where to write ca.crt, server.crt/.key, client.crt/.key', 'kaudit-certs')
    .option(
      '--server-name <name...>',
      `DNS names and IP addresses kube-apiserver reaches the receiver by (default ${DEFAULT_SERVER_NAMES.join(' ')})`,
    )
    .option(
      '--client-name <cn>',
      "the client certificate's CN (the receiver's allowed_names)",
      DEFAULT_CLIENT_NAME,
    )
    .option('--days <n>', 'validity of the server and client certificates', '365')
    .option('--ca-days <n>', 'validity of a new CA', '3650')
    .option('--ca-cert <file>', 'sign with this existing CA instead of making one...')
    .option('--ca-key <file>', '...and its key')
    .option('--force', 'overwrite files that exist')
    .option('--json', 'print the files written, names and expiry as JSON')
    .addHelpText(
      'after',
      `
Keys are ECDSA P-256, written with mode 0600. Both certificates are signed by the same CA: it is the
kubeconfig's certificate-authority (kube-apiserver checks the receiver) and the receiver's client_ca
(the receiver checks kube-apiserver).

Examples:
  kaudit setup certs --out-dir /etc/kubernetes/kaudit --server-name kaudit-webhook.kaudit.svc --server-name 10.96.0.50
  kaudit setup certs --days 90 --ca-cert /etc/kubernetes/pki/ca.crt --ca-key /etc/kubernetes/pki/ca.key`,
    )
    .action((flags: CertsFlags) => {
      if ((flags.caCert === undefined) !== (flags.caKey === undefined))
        throw new UserError('KAUDIT_FLAG_INVALID', '--ca-cert and --ca-key go together');
      const outDir = resolve(flags.outDir);
      const certs = makeWebhookCerts({
        serverNames: flags.serverName ?? DEFAULT_SERVER_NAMES,
        clientName: flags.clientName,
        validityDays: parseIntFlag('--days', flags.days, 1),
        caValidityDays: parseIntFlag('--ca-days', flags.caDays, 1),
        ...(flags.caCert !== undefined && flags.caKey !== undefined
          ? {
              ca: {
                certPem: readFileOrThrow(flags.caCert, 'CA certificate'),
                keyPem: readFileOrThrow(flags.caKey, 'CA key'),
              },
            }
          : {}),
      });
      const files: [string, string, number][] = [
        ['ca.crt', certs.ca.certPem, 0o644],
        ['server.crt', certs.server.certPem, 0o644],
        ['server.key', certs.server.keyPem, 0o600],
        ['client.crt', certs.client.certPem, 0o644],
        ['client.key', certs.client.keyPem, 0o600],
      ];
      if (certs.ca.keyPem !== undefined) files.push(['ca.key', certs.ca.keyPem, 0o600]);
      const existing = files.map(([f]) => join(outDir, f)).filter((p) => existsSync(p));
      if (existing.length > 0 && !flags.force) {
        throw new UserError(
          'KAUDIT_SETUP_EXISTS',
          `${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}`,
          {
            hint: 'use another --out-dir, or --force to replace them (the receiver and kube-apiserver then need the new ones)',
          },
        );
      }
      mkdirSync(outDir, { recursive: true, mode: 0o755 });
      for (const [name, text, mode] of files) {
        const p = join(outDir, name);
        writeFileSync(p, text, { mode });
        // mode applies when the file is created; one replaced with --force keeps its old mode otherwise.
        chmodSync(p, mode);
      }
      const summary = {
        dir: outDir,
        files: files.map(([f]) => join(outDir, f)),
        server: {
          names: flags.serverName ?? DEFAULT_SERVER_NAMES,
          notAfter: new Date(certs.server.cert.validTo).toISOString(),
        },
        client: { commonName: flags.clientName, notAfter: new Date(certs.client.cert.validTo).toISOString() },
        caMade: certs.ca.keyPem !== undefined,
      };
      if (flags.json) process.stdout.write(`${toJson(summary)}\n`);
      else {
        for (const f of summary.files) process.stdout.write(`${f}\n`);
        process.stderr.write(
          `kaudit: server certificate for ${summary.server.names.join(', ')} and client certificate CN=${flags.clientName}, valid until ${summary.server.notAfter}\n`,
        );
      }
    });
}
