import { isIP } from 'node:net';
import { UserError } from '../model/errors.js';
import { type Issued, type Issuer, issueCertificate, issuerOf } from './x509.js';

/** The receiver's default names: its Service in the deploy/kubernetes manifests, and loopback. */
export const DEFAULT_SERVER_NAMES = [
  'kaudit-webhook',
  'kaudit-webhook.kaudit',
  'kaudit-webhook.kaudit.svc',
  'kaudit-webhook.kaudit.svc.cluster.local',
  'localhost',
  '127.0.0.1',
];
/** The client certificate's CN; the webhook source's `allowed_names` names it. */
export const DEFAULT_CLIENT_NAME = 'kube-apiserver';

export interface WebhookCertsOptions {
  serverNames: string[];
  clientName: string;
  validityDays: number;
  caValidityDays: number;
  /** An existing CA (PEM contents) to sign with instead of making one. */
  ca?: { certPem: string; keyPem: string };
  now?: Date;
}

export interface WebhookCerts {
  /** The CA: the kubeconfig's certificate-authority and the receiver's client_ca. */
  ca: { certPem: string; keyPem?: string };
  server: Issued;
  client: Issued;
}

/** Validity in days must fit X.509's time fields and be positive. */
function checkDays(flag: string, days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new UserError('KAUDIT_FLAG_INVALID', `${flag} ${days}: expected whole days from 1 to 36500`);
  }
}

/** A DNS name as RFC 1123 allows in a certificate (a leading "*." wildcard too), or an IP address. */
export function checkServerName(name: string): void {
  if (isIP(name)) return;
  const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;
  const parts = name.replace(/^\*\./, '').split('.');
  if (name.length > 253 || !parts.every((p) => label.test(p))) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `--server-name ${JSON.stringify(name)}: not a DNS name or IP address`,
    );
  }
}

/** A CA (or the given one), the receiver's server certificate and kube-apiserver's client certificate. */
export function makeWebhookCerts(opts: WebhookCertsOptions): WebhookCerts {
  checkDays('--days', opts.validityDays);
  checkDays('--ca-days', opts.caValidityDays);
  if (opts.serverNames.length === 0)
    throw new UserError('KAUDIT_FLAG_INVALID', 'at least one --server-name is needed');
  for (const n of opts.serverNames) checkServerName(n);
  if (opts.ca === undefined && opts.validityDays > opts.caValidityDays) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `--days ${opts.validityDays} is longer than --ca-days ${opts.caValidityDays}: the certificates would outlive their CA`,
    );
  }
  const now = opts.now ?? new Date();
  let issuer: Issuer;
  let ca: WebhookCerts['ca'];
  if (opts.ca !== undefined) {
    issuer = issuerOf(opts.ca.certPem, opts.ca.keyPem);
    ca = { certPem: opts.ca.certPem };
  } else {
    const made = issueCertificate({
      subject: { commonName: 'kaudit-webhook-ca', organization: 'kaudit' },
      isCa: true,
      validityDays: opts.caValidityDays,
      now,
    });
    issuer = issuerOf(made.certPem, made.keyPem);
    ca = { certPem: made.certPem, keyPem: made.keyPem };
  }
  const server = issueCertificate(
    {
      subject: { commonName: opts.serverNames[0] ?? 'kaudit-webhook' },
      names: opts.serverNames,
      usages: ['serverAuth'],
      validityDays: opts.validityDays,
      now,
    },
    issuer,
  );
  const client = issueCertificate(
    {
      subject: { commonName: opts.clientName },
      usages: ['clientAuth'],
      validityDays: opts.validityDays,
      now,
    },
    issuer,
  );
  return { ca, server, client };
}
