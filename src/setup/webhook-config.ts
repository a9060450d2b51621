import { Document } from 'yaml';
import { UserError } from '../model/errors.js';

export interface WebhookKubeconfigOptions {
  /** The receiver's URL as kube-apiserver reaches it, e.g. https://kaudit-webhook.kaudit.svc:8443/audit. */
  url: string;
  /** Either paths as kube-apiserver sees them, or the PEM contents to embed. */
  ca: { file: string } | { pem: string };
  clientCert?: { file: string; keyFile: string } | { pem: string; keyPem: string };
  /** A file holding the bearer token (kubeconfig `tokenFile`). */
  tokenFile?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

export function parseWebhookUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError('KAUDIT_FLAG_INVALID', `--url ${JSON.stringify(url)}: not a URL`, {
      hint: 'e.g. --url https://kaudit-webhook.kaudit.svc:8443/audit',
    });
  }
  if (u.protocol !== 'https:') {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `--url ${url}: must be https; audit events carry request bodies and user names`,
    );
  }
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      `--url ${url}: no credentials, query or fragment; use --client-cert or --token-file`,
    );
  }
  return u;
}

/**
 * The kubeconfig kube-apiserver reads with --audit-webhook-config-file: one cluster (the receiver),
 * one user (kube-apiserver's credentials), one context. k8s.io/apiserver plugin/pkg/audit/webhook
 * loads it with client-go, so `tokenFile` and the `-data` fields work as in any kubeconfig.
 */
export function webhookKubeconfig(opts: WebhookKubeconfigOptions): string {
  parseWebhookUrl(opts.url);
  if (opts.clientCert === undefined && opts.tokenFile === undefined) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      'kube-apiserver needs credentials for the receiver: give --client-cert and --client-key, or --token-file',
    );
  }
  const cluster: Record<string, string> = { server: opts.url };
  if ('file' in opts.ca) cluster['certificate-authority'] = opts.ca.file;
  else cluster['certificate-authority-data'] = b64(opts.ca.pem);
  const user: Record<string, string> = {};
  if (opts.clientCert !== undefined) {
    if ('file' in opts.clientCert) {
      user['client-certificate'] = opts.clientCert.file;
      user['client-key'] = opts.clientCert.keyFile;
    } else {
      user['client-certificate-data'] = b64(opts.clientCert.pem);
      user['client-key-data'] = b64(opts.clientCert.keyPem);
    }
  }
  if (opts.tokenFile !== undefined) user.tokenFile = opts.tokenFile;
  const doc = new Document({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kaudit', cluster }],
    users: [{ name: 'kube-apiserver', user }],
    contexts: [{ name: 'kaudit', context: { cluster: 'kaudit', user: 'kube-apiserver' } }],
    'current-context': 'kaudit',
  });
  doc.commentBefore = ` kube-apiserver --audit-webhook-config-file: where to send audit events (kaudit setup webhook).`;
  return doc.toString({ lineWidth: 0 });
}

export interface WebhookSourceOptions {
  url: string;
  /** host:port the receiver listens on; default 0.0.0.0 and the URL's port. */
  listen?: string;
  /** Paths as the agent sees them. */
  tls: { cert: string; key: string; clientCa?: string };
  allowedNames?: string[];
  tokenFile?: string;
  name?: string;
}

/** The agent's `logs:` entry (docs/agent.md) that receives what the kubeconfig above sends. */
export function webhookSourceYaml(opts: WebhookSourceOptions): string {
  const u = parseWebhookUrl(opts.url);
  const port = u.port === '' ? '443' : u.port;
  if (opts.tls.clientCa === undefined && opts.tokenFile === undefined) {
    throw new UserError(
      'KAUDIT_FLAG_INVALID',
      'the receiver must check who sends: give --receiver-client-ca (mTLS) or --receiver-token-file',
    );
  }
  const tls: Record<string, unknown> = { cert: opts.tls.cert, key: opts.tls.key };
  if (opts.tls.clientCa !== undefined) {
    tls.client_ca = opts.tls.clientCa;
    if (opts.allowedNames && opts.allowedNames.length > 0) tls.allowed_names = opts.allowedNames;
  }
  const source: Record<string, unknown> = {
    type: 'webhook',
    name: opts.name ?? 'kube-apiserver-webhook',
    listen: opts.listen ?? `0.0.0.0:${port}`,
    path: u.pathname === '' ? '/' : u.pathname,
    tls,
  };
  if (opts.tokenFile !== undefined) source.token_file = opts.tokenFile;
  const doc = new Document({ logs: [source] });
  doc.commentBefore =
    ' The kaudit agent source for the kubeconfig above; merge it into the logs: of kaudit.yaml.';
  return doc.toString({ lineWidth: 0 });
}
