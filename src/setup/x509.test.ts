import { execFileSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeWebhookCerts } from './certs.js';
import { issueCertificate, issuerOf } from './x509.js';

const dir = mkdtempSync(join(tmpdir(), 'kaudit-x509-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('issueCertificate', () => {
  const now = new Date('2026-03-01T12:00:00Z');
  const ca = issueCertificate({
    subject: { commonName: 'test-ca', organization: 'kaudit' },
    isCa: true,
    validityDays: 10,
    now,
  });
  const issuer = issuerOf(ca.certPem, ca.keyPem);
  const leaf = issueCertificate(
    {
      subject: { commonName: 'svc' },
      names: ['svc.ns.svc', '10.96.0.50', '::1', 'fd00::a:1'],
      usages: ['serverAuth'],
      validityDays: 2,
      now,
    },
    issuer,
  );

  it('makes a self-signed CA node:crypto and OpenSSL accept as a CA', () => {
    expect(ca.cert.ca).toBe(true);
    expect(ca.cert.verify(ca.cert.publicKey)).toBe(true);
    expect(ca.cert.subject).toBe('O=kaudit\nCN=test-ca');
    expect(new Date(ca.cert.validFrom).getTime()).toBe(now.getTime() - 5 * 60_000);
    expect(new Date(ca.cert.validTo).getTime()).toBe(now.getTime() + 10 * 86_400_000);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    const text = openssl('x509', '-in', 'ca.pem', '-noout', '-text');
    expect(text).toContain('CA:TRUE, pathlen:0');
    expect(text).toMatch(/Digital Signature, Certificate Sign, CRL Sign/);
  });

  it('signs a leaf whose names, usages and issuer verify', () => {
    expect(leaf.cert.verify(ca.cert.publicKey)).toBe(true);
    expect(leaf.cert.checkIssued(ca.cert)).toBe(true);
    expect(leaf.cert.ca).toBe(false);
    expect(leaf.cert.subjectAltName).toBe(
      'DNS:svc.ns.svc, IP Address:10.96.0.50, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:0:0:0:0:0:A:1',
    );
    expect(leaf.cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(leaf.cert.checkHost('svc.ns.svc')).toBe('svc.ns.svc');
    expect(leaf.cert.checkIP('10.96.0.50')).toBe('10.96.0.50');
    writeFileSync(join(dir, 'leaf.pem'), leaf.certPem);
    // OpenSSL's chain check at the certificate's own time (its verifier is strict about the DER).
    const at = String(Math.floor(now.getTime() / 1000));
    expect(openssl('verify', '-attime', at, '-CAfile', 'ca.pem', 'leaf.pem')).toContain('leaf.pem: OK');
  });

  it('writes the key as PKCS#8 PEM that matches the certificate', () => {
    expect(leaf.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(leaf.cert.checkPrivateKey(leaf.key)).toBe(true);
  });

  it('signs with an existing RSA CA, as kubeadm makes them', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(dir, 'rsa-ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    openssl(
      'req',
      '-x509',
      '-key',
      'rsa-ca.key',
      '-out',
      'rsa-ca.crt',
      '-subj',
      '/CN=kubernetes',
      '-days',
      '2',
    );
    const rsaCa = new X509Certificate(execFileSync('cat', [join(dir, 'rsa-ca.crt')]));
    const rsaIssuer = issuerOf(
      rsaCa.toString(),
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    );
    const c = issueCertificate(
      { subject: { commonName: 'kube-apiserver' }, usages: ['clientAuth'], validityDays: 1 },
      rsaIssuer,
    );
    expect(c.cert.verify(createPublicKey(rsaCa.publicKey.export({ type: 'spki', format: 'pem' })))).toBe(
      true,
    );
    expect(c.cert.issuer).toBe('CN=kubernetes');
    writeFileSync(join(dir, 'rsa-leaf.pem'), c.certPem);
    expect(openssl('verify', '-CAfile', 'rsa-ca.crt', 'rsa-leaf.pem')).toContain('OK');
  });

  it('uses GeneralizedTime from 2050 on (RFC 5280 4.1.2.5)', () => {
    const far = issueCertificate({ subject: { commonName: 'far' }, validityDays: 36_500, now });
    expect(new Date(far.cert.validTo).getUTCFullYear()).toBe(2126);
  });

  it("refuses a CA key that is not the certificate's, and a leaf as CA", () => {
    const other = issueCertificate({ subject: { commonName: 'x' }, isCa: true, validityDays: 1 });
    expect(() => issuerOf(ca.certPem, other.keyPem)).toThrow(/does not belong/);
    expect(() => issuerOf(leaf.certPem, leaf.keyPem)).toThrow(/not a CA certificate/);
  });
});

describe('makeWebhookCerts', () => {
  it('gives a server certificate for every name and a client certificate with the CN, all from one CA', () => {
    const certs = makeWebhookCerts({
      serverNames: ['kaudit.example', '127.0.0.1'],
      clientName: 'kube-apiserver',
      validityDays: 30,
      caValidityDays: 365,
    });
    const ca = new X509Certificate(certs.ca.certPem);
    expect(certs.server.cert.checkIssued(ca) && certs.server.cert.verify(ca.publicKey)).toBe(true);
    expect(certs.client.cert.checkIssued(ca) && certs.client.cert.verify(ca.publicKey)).toBe(true);
    expect(certs.server.cert.subjectAltName).toBe('DNS:kaudit.example, IP Address:127.0.0.1');
    expect(certs.client.cert.subject).toBe('CN=kube-apiserver');
    expect(certs.client.cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  });

  it('refuses bad names and validity, saying which', () => {
    const base = { clientName: 'k', validityDays: 1, caValidityDays: 2 };
    expect(() => makeWebhookCerts({ ...base, serverNames: ['bad name'] })).toThrow(
      /--server-name "bad name"/,
    );
    expect(() => makeWebhookCerts({ ...base, serverNames: ['a'], validityDays: 0 })).toThrow(/--days 0/);
    expect(() => makeWebhookCerts({ ...base, serverNames: ['a'], validityDays: 3 })).toThrow(
      /outlive their CA/,
    );
  });
});
