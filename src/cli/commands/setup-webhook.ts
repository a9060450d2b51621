import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../../model/errors.js';
import { DEFAULT_CLIENT_NAME } from '../../setup/certs.js';
import { readFileOrThrow, writeFileAtomic } from '../../setup/files.js';
import {
  type WebhookKubeconfigOptions,
  type WebhookSourceOptions,
  webhookKubeconfig,
  webhookSourceYaml,
} from '../../setup/webhook-config.js';

interface WebhookFlags {
  url: string;
  caFile: string;
  clientCert?: string;
  clientKey?: string;
  tokenFile?: string;
  embed?: boolean;
  receiverCert: string;
  receiverKey: string;
  receiverClientCa: string;
  receiverTokenFile: string;
  allowedName?: string[];
  listen?: string;
  kubeconfigOut?: string;
  sourceOut?: string;
}

/** The client certificate's CN, when the file can be read here: what the receiver should allow. */
function commonNameOf(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const cert = new X509Certificate(readFileOrThrow(file, 'client certificate'));
    return /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  } catch {
    return undefined;
  }
}

export function registerSetupWebhook(setup: Command): void {
  setup
    .command('webhook')
    .description(
      "Write kube-apiserver's --audit-webhook-config-file kubeconfig and the matching kaudit webhook source",
    )
    .requiredOption('--url <url>', "the receiver's https URL as kube-apiserver reaches it")
    .requiredOption(
      '--ca-file <file>',
      "the CA of the receiver's server certificate (path as kube-apiserver sees it)",
    )
    .option('--client-cert <file>', "kube-apiserver's client certificate (from kaudit setup certs)...")
    .option('--client-key <file>', '...and its key')
    .option('--token-file <file>', 'or/and a file holding a bearer token kube-apiserver sends')
    .option('--embed', 'put the certificates and key into the kubeconfig instead of naming their files')
    .option(
      '--receiver-cert <path>',
      "the receiver's certificate, as the agent sees it",
      '/etc/kaudit/tls/server.crt',
    )
    .option('--receiver-key <path>', "the receiver's key, as the agent sees it", '/etc/kaudit/tls/server.key')
    .option(
      '--receiver-client-ca <path>',
      'the CA the receiver checks client certificates with, as the agent sees it',
      '/etc/kaudit/tls/ca.crt',
    )
    .option(
      '--receiver-token-file <path>',
      "with --token-file: the receiver's copy of the token",
      '/etc/kaudit/token',
    )
    .option(
      '--allowed-name <cn...>',
      "client certificate names the receiver accepts (default: the --client-cert's CN, else kube-apiserver)",
    )
    .option('--listen <host:port>', "the receiver's listen address (default 0.0.0.0 and the URL's port)")
    .option('--kubeconfig-out <file>', 'write the kubeconfig there (mode 0600) instead of stdout')
    .option('--source-out <file>', 'write the agent source there instead of stdout')
    .addHelpText(
      'after',
      `
The kubeconfig goes to kube-apiserver (kaudit setup apiserver --webhook mounts its directory); the
source goes into the logs: of the agent's kaudit.yaml. Give both the same CA and certificates, made
by kaudit setup certs.

Examples:
  kaudit setup certs --out-dir /etc/kubernetes/kaudit
  kaudit setup webhook --url https://kaudit-webhook.kaudit.svc:8443/audit \\
    --ca-file /etc/kubernetes/kaudit/ca.crt \\
    --client-cert /etc/kubernetes/kaudit/client.crt --client-key /etc/kubernetes/kaudit/client.key \\
    --kubeconfig-out /etc/kubernetes/kaudit/webhook.kubeconfig --source-out kaudit-webhook-source.yaml`,
    )
    .action((flags: WebhookFlags) => {
      if ((flags.clientCert === undefined) !== (flags.clientKey === undefined))
        throw new UserError('KAUDIT_FLAG_INVALID', '--client-cert and --client-key go together');
      const kube: WebhookKubeconfigOptions = {
        url: flags.url,
        ca: flags.embed ? { pem: readFileOrThrow(flags.caFile, 'CA certificate') } : { file: flags.caFile },
      };
      if (flags.clientCert !== undefined && flags.clientKey !== undefined) {
        kube.clientCert = flags.embed
          ? {
              pem: readFileOrThrow(flags.clientCert, 'client certificate'),
              keyPem: readFileOrThrow(flags.clientKey, 'client key'),
            }
          : { file: flags.clientCert, keyFile: flags.clientKey };
      }
      if (flags.tokenFile !== undefined) kube.tokenFile = flags.tokenFile;
      const kubeconfig = webhookKubeconfig(kube);

      const source: WebhookSourceOptions = {
        url: flags.url,
        tls: { cert: flags.receiverCert, key: flags.receiverKey },
      };
      if (flags.clientCert !== undefined) {
        source.tls.clientCa = flags.receiverClientCa;
        source.allowedNames = flags.allowedName ?? [commonNameOf(flags.clientCert) ?? DEFAULT_CLIENT_NAME];
      }
      if (flags.tokenFile !== undefined) source.tokenFile = flags.receiverTokenFile;
      if (flags.listen !== undefined) source.listen = flags.listen;
      const sourceYaml = webhookSourceYaml(source);

      const out: string[] = [];
      if (flags.kubeconfigOut !== undefined) {
        // It may hold a private key (--embed) or name one: readable by root only, as kubeadm's kubeconfigs.
        writeFileAtomic(flags.kubeconfigOut, kubeconfig, 0o600);
        process.stderr.write(`kaudit: wrote ${flags.kubeconfigOut}\n`);
      } else out.push(kubeconfig);
      if (flags.sourceOut !== undefined) {
        writeFileAtomic(flags.sourceOut, sourceYaml);
        process.stderr.write(`kaudit: wrote ${flags.sourceOut}\n`);
      } else out.push(sourceYaml);
      process.stdout.write(out.join('---\n'));
    });
}
