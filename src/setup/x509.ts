import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { isIP } from 'node:net';
import { UserError } from '../model/errors.js';

// DER (ITU-T X.690) for the few ASN.1 types an X.509 v3 certificate (RFC 5280) needs. node:crypto
// signs and parses certificates but cannot build one, so the TBSCertificate is encoded here.

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octetString = (b: Buffer) => tlv(0x04, b);
const boolean = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, inner: Buffer) => tlv(0xa0 + n, inner);

/** A non-negative INTEGER from big-endian bytes: no redundant leading zeros, a zero added before a high bit. */
function unsignedInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  const trimmed = bytes.subarray(i);
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

const smallInteger = (n: number) => unsignedInteger(Buffer.from([n]));

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [a * 40 + b];
  for (const v of rest) {
    const chunk: number[] = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) chunk.unshift((x & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING of a named-bit list (DER drops trailing zero bits, X.690 11.2.2). */
function namedBits(bits: number[]): Buffer {
  const last = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(last / 8) + 1);
  for (const bit of bits)
    bytes[Math.floor(bit / 8)] = (bytes[Math.floor(bit / 8)] ?? 0) | (0x80 >> (bit % 8));
  return tlv(0x03, Buffer.from([7 - (last % 8)]), bytes);
}

const bitString = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Buffer {
  const iso = d.toISOString();
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '');
  return d.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'))
    : tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export interface Subject {
  commonName: string;
  organization?: string;
}

function name(s: Subject): Buffer {
  const rdns = [];
  if (s.organization !== undefined) rdns.push(set(sequence(oid(OID.organization), utf8(s.organization))));
  rdns.push(set(sequence(oid(OID.commonName), utf8(s.commonName))));
  return sequence(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" and write the eight groups.
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

export type Usage = 'serverAuth' | 'clientAuth';

export interface CertificateRequest {
  subject: Subject;
  /** DNS names and IP addresses for the subjectAltName; each is told apart by node:net isIP. */
  names?: string[];
  isCa?: boolean;
  usages?: Usage[];
  validityDays: number;
  now?: Date;
}

export interface Issued {
  certPem: string;
  keyPem: string;
  key: KeyObject;
  cert: X509Certificate;
}

export interface Issuer {
  cert: X509Certificate;
  key: KeyObject;
  /** Its subjectKeyIdentifier: a verifier such as OpenSSL finds the issuer by it. */
  keyId: Buffer;
  /** The issuer's subject exactly as encoded in its certificate: verifiers compare these bytes. */
  nameDer: Buffer;
}

/** One DER element at `offset`: its tag, and where its content starts and ends. */
function element(der: Buffer, offset: number): { tag: number; start: number; end: number } {
  const tag = der[offset] ?? 0;
  let len = der[offset + 1] ?? 0;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] ?? 0);
    start += n;
  }
  return { tag, start, end: start + len };
}

/** The elements of a constructed DER element's content. */
function children(
  der: Buffer,
  parent: { start: number; end: number },
): { tag: number; start: number; end: number; at: number }[] {
  const out = [];
  for (let at = parent.start; at < parent.end; ) {
    const e = element(der, at);
    out.push({ ...e, at });
    at = e.end;
  }
  return out;
}

/** The TBSCertificate's fields, with version [0] dropped so the indexes are RFC 5280's from serialNumber. */
function tbsFields(der: Buffer) {
  const tbs = element(der, element(der, 0).start);
  const fields = children(der, tbs);
  return fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
}

/** The subject Name of a certificate, as its bytes (the fifth field after the version). */
function subjectDer(cert: X509Certificate): Buffer {
  const subject = tbsFields(cert.raw)[4];
  if (subject === undefined) throw new Error('certificate without a subject');
  return cert.raw.subarray(subject.at, subject.end);
}

/** The subjectKeyIdentifier of a certificate, when it has one. */
function subjectKeyIdOf(cert: X509Certificate): Buffer | undefined {
  const der = cert.raw;
  const wanted = oid(OID.subjectKeyIdentifier);
  const extensions = tbsFields(der).find((f) => f.tag === 0xa3);
  if (extensions === undefined) return undefined;
  for (const ext of children(der, element(der, extensions.start))) {
    const parts = children(der, ext);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (id === undefined || value === undefined || !der.subarray(id.at, id.end).equals(wanted)) continue;
    const inner = element(der, value.start);
    return der.subarray(inner.start, inner.end);
  }
  return undefined;
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits, as Go and OpenSSL make it. */
function keyId(spki: Buffer): Buffer {
  const key = children(spki, element(spki, 0))[1];
  if (key === undefined) throw new Error('SubjectPublicKeyInfo without a key');
  return createHash('sha1')
    .update(spki.subarray(key.start + 1, key.end))
    .digest();
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * An ECDSA P-256 key and an X.509 v3 certificate for it, signed by `issuer` (self-signed without one).
 * P-256 with SHA-256 is what kubeadm's own certificates and Go's TLS stack handle everywhere.
 */
export function issueCertificate(req: CertificateRequest, issuer?: Issuer): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const now = req.now ?? new Date();
  // Five minutes back, so a peer whose clock is a little behind does not see a future certificate.
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const notAfter = new Date(now.getTime() + req.validityDays * 86_400_000);
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;

  const signerKey = issuer?.key ?? privateKey;
  // kubeadm's CA key is RSA; a CA made here is ECDSA.
  const algorithm =
    signerKey.asymmetricKeyType === 'rsa'
      ? sequence(oid(OID.sha256WithRsa), tlv(0x05))
      : sequence(oid(OID.ecdsaWithSha256));
  const extensions: Buffer[] = [
    extension(OID.basicConstraints, true, req.isCa ? sequence(boolean(true), smallInteger(0)) : sequence()),
    // digitalSignature (0) for ECDSA TLS; keyCertSign (5) and cRLSign (6) for a CA.
    extension(OID.keyUsage, true, namedBits(req.isCa ? [0, 5, 6] : [0])),
    extension(OID.subjectKeyIdentifier, false, octetString(keyId(spki))),
  ];
  if (issuer !== undefined) {
    extensions.push(extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, issuer.keyId))));
  }
  if (req.usages && req.usages.length > 0) {
    extensions.push(extension(OID.extKeyUsage, false, sequence(...req.usages.map((u) => oid(OID[u])))));
  }
  if (req.names && req.names.length > 0) {
    const general = req.names.map((n) =>
      isIP(n) ? tlv(0x87, ipBytes(n)) : tlv(0x82, Buffer.from(n, 'ascii')),
    );
    extensions.push(extension(OID.subjectAltName, false, sequence(...general)));
  }
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(serial),
    algorithm,
    issuer?.nameDer ?? name(req.subject),
    sequence(time(notBefore), time(notAfter)),
    name(req.subject),
    spki,
    explicit(3, sequence(...extensions)),
  );
  const signature =
    signerKey.asymmetricKeyType === 'rsa'
      ? sign('sha256', tbs, signerKey)
      : sign('sha256', tbs, { key: signerKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(signature));
  const certPem = pem('CERTIFICATE', der);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, key: privateKey, cert: new X509Certificate(der) };
}

/** The issuer of further certificates: a CA made here, or an existing one from its PEM files. */
export function issuerOf(certPem: string, keyPem: string): Issuer {
  const cert = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  if (!cert.checkPrivateKey(key))
    throw new UserError('KAUDIT_SETUP_CA_INVALID', 'the CA key does not belong to the CA certificate');
  if (!cert.ca) {
    throw new UserError(
      'KAUDIT_SETUP_CA_INVALID',
      `${cert.subject.replace(/\n/g, ', ')} is not a CA certificate (basicConstraints cA is false)`,
    );
  }
  const keyIdentifier = subjectKeyIdOf(cert) ?? keyId(cert.publicKey.export({ type: 'spki', format: 'der' }));
  return { cert, key, nameDer: subjectDer(cert), keyId: keyIdentifier };
}
