import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseAgentConfig } from '../collect/agent-config.js';
import { webhookKubeconfig, webhookSourceYaml } from './webhook-config.js';

const URL_ = 'https://10.96.0.50:8443/audit';

describe('webhookKubeconfig', () => {
  it('names the files, or embeds them base64-encoded as client-go reads -data fields', () => {
    const files = parse(
      webhookKubeconfig({
        url: URL_,
        ca: { file: '/k/ca.crt' },
        clientCert: { file: '/k/c.crt', keyFile: '/k/c.key' },
      }),
    );
    expect(files).toEqual({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'kaudit', cluster: { server: URL_, 'certificate-authority': '/k/ca.crt' } }],
      users: [
        { name: 'kube-apiserver', user: { 'client-certificate': '/k/c.crt', 'client-key': '/k/c.key' } },
      ],
      contexts: [{ name: 'kaudit', context: { cluster: 'kaudit', user: 'kube-apiserver' } }],
      'current-context': 'kaudit',
    });
    const embedded = parse(
      webhookKubeconfig({ url: URL_, ca: { pem: 'CA' }, clientCert: { pem: 'CERT', keyPem: 'KEY' } }),
    ) as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    expect(embedded.clusters[0]?.cluster['certificate-authority-data']).toBe(
      Buffer.from('CA').toString('base64'),
    );
    expect(embedded.users[0]?.user).toEqual({
      'client-certificate-data': Buffer.from('CERT').toString('base64'),
      'client-key-data': Buffer.from('KEY').toString('base64'),
    });
  });

  it('uses tokenFile for a bearer token, so the token is not copied into the kubeconfig', () => {
    const kc = parse(webhookKubeconfig({ url: URL_, ca: { file: '/k/ca.crt' }, tokenFile: '/k/token' })) as {
      users: { user: Record<string, string> }[];
    };
    expect(kc.users[0]?.user).toEqual({ tokenFile: '/k/token' });
  });

  it('refuses plain http, credentials in the URL and no credentials at all', () => {
    const ca = { file: '/k/ca.crt' };
    expect(() => webhookKubeconfig({ url: 'http://x:8443/audit', ca, tokenFile: '/t' })).toThrow(
      /must be https/,
    );
    expect(() => webhookKubeconfig({ url: 'https://u:p@x/audit', ca, tokenFile: '/t' })).toThrow(
      /no credentials/,
    );
    expect(() => webhookKubeconfig({ url: 'not a url', ca, tokenFile: '/t' })).toThrow(/not a URL/);
    expect(() => webhookKubeconfig({ url: URL_, ca })).toThrow(/needs credentials/);
  });
});

describe('webhookSourceYaml', () => {
  const wrap = (source: string) => `run_path: /r\ndata: /d\n${source}`;

  it("gives a logs: entry the agent's config parser accepts, listening on the URL's port and path", () => {
    const yaml = webhookSourceYaml({
      url: URL_,
      tls: { cert: '/t/tls.crt', key: '/t/tls.key', clientCa: '/t/ca.crt' },
      allowedNames: ['kube-apiserver'],
    });
    const { config, diagnostics } = parseAgentConfig(wrap(yaml));
    expect(diagnostics).toEqual([]);
    expect(config?.logs).toEqual([
      {
        type: 'webhook',
        name: 'kube-apiserver-webhook',
        listen: { host: '0.0.0.0', port: 8443 },
        path: '/audit',
        source: 'kubernetes.audit',
        service: 'audit',
        maxBodyBytes: 12 * 1024 * 1024,
        tls: {
          cert: '/t/tls.crt',
          key: '/t/tls.key',
          clientCa: '/t/ca.crt',
          allowedNames: ['kube-apiserver'],
        },
      },
    ]);
  });

  it('with a token only, sets token_file, and refuses a receiver that checks nobody', () => {
    const yaml = webhookSourceYaml({
      url: 'https://h/in',
      tls: { cert: '/c', key: '/k' },
      tokenFile: '/tok',
    });
    const { config } = parseAgentConfig(wrap(yaml));
    expect(config?.logs[0]).toMatchObject({ listen: { port: 443 }, path: '/in', tokenFile: '/tok' });
    expect(() => webhookSourceYaml({ url: URL_, tls: { cert: '/c', key: '/k' } })).toThrow(
      /must check who sends/,
    );
  });
});
