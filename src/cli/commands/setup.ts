import type { Command } from 'commander';
import { registerSetupApiserver } from './setup-apiserver.js';
import { registerSetupCerts } from './setup-certs.js';
import { registerSetupWebhook } from './setup-webhook.js';

/** `kaudit setup apiserver | certs | webhook`: put kaudit on a cluster (docs/setup.md). */
export function registerSetup(program: Command): void {
  const setup = program
    .command('setup')
    .description('Configure kube-apiserver for auditing, and the certificates and kubeconfig of the webhook');
  registerSetupApiserver(setup);
  registerSetupCerts(setup);
  registerSetupWebhook(setup);
}
