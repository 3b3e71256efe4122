/**
 * The token-signing key: RSA-2048, RS256, kept as PKCS#8 PEM in `<cloud>/keys/token-signing.pem`
 * (0600) and created once. The JWKS publishes its public half with `kid` = the RFC 7638 JWK
 * thumbprint, plus `x5t`/`x5c` from a certificate the lab CA issues for it, because Entra's keys
 * carry a certificate and some clients read `x5c`. The certificate is reissued whenever it no
 * longer matches the key or the current lab CA; the key itself never changes unless deleted.
 */
import { createHash, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import type { CloudPaths } from '../data-dir.ts';
import { CloudStateError } from '../errors.ts';
import { createFileOnce, readCheckedFile, replaceFile } from '../files.ts';
import {
  type Authority,
  BACKDATE_MS,
  generatePrivateKey,
  parseCertificateFile,
  parsePrivateKeyPem,
  privateKeyPem,
  signCertificate,
} from './authority.ts';
import { x509 } from './x509.ts';

const DAY_MS = 86_400_000;
const CERT_VALIDITY_DAYS = 5 * 365;
const RENEW_BEFORE_DAYS = 30;

/** A public JWK as the JWKS publishes it. */
export interface PublicJwk {
  readonly kty: 'RSA';
  readonly use: 'sig';
  readonly kid: string;
  readonly x5t: string;
  readonly n: string;
  readonly e: string;
  readonly x5c: readonly string[];
}

/** What the token service signs with. The private key never leaves this object's holder. */
export interface SigningKey {
  readonly alg: 'RS256';
  /** RFC 7638 thumbprint of the public JWK (base64url SHA-256). */
  readonly kid: string;
  /** base64url SHA-1 of the certificate's DER (the JWS `x5t` header Entra sends). */
  readonly x5t: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificate: X509Certificate;
  /** The public JWK, as listed in the JWKS. */
  readonly jwk: PublicJwk;
}

/** RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace. */
export function rsaJwkThumbprint(n: string, e: string): string {
  const canonical = `{"e":"${e}","kty":"RSA","n":"${n}"}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** Loads the signing key (creating it on first use) and a certificate for it from `labCa`. */
export async function loadOrCreateSigningKey(
  paths: CloudPaths,
  labCa: Authority,
  now: Date = new Date(),
): Promise<SigningKey> {
  const privateKey = await loadOrCreateKey(paths.tokenSigningKey);
  if (
    privateKey.asymmetricKeyType !== 'rsa' ||
    privateKey.asymmetricKeyDetails?.modulusLength !== 2048
  ) {
    throw new CloudStateError(`${paths.tokenSigningKey} must hold an RSA-2048 key`);
  }
  const publicKey = createPublicKey(privateKey);
  const certificate = await loadOrIssueCertificate(paths, labCa, privateKey, publicKey, now);
  const jwk = publicKey.export({ format: 'jwk' });
  const n = String(jwk.n);
  const e = String(jwk.e);
  const kid = rsaJwkThumbprint(n, e);
  const x5t = createHash('sha1').update(certificate.raw).digest('base64url');
  return Object.freeze({
    alg: 'RS256' as const,
    kid,
    x5t,
    privateKey,
    publicKey,
    certificate,
    jwk: Object.freeze({
      kty: 'RSA' as const,
      use: 'sig' as const,
      kid,
      x5t,
      n,
      e,
      x5c: Object.freeze([certificate.raw.toString('base64')]),
    }),
  });
}

async function loadOrCreateKey(path: string): Promise<KeyObject> {
  const existing = await readCheckedFile(path, { private: true });
  if (existing !== undefined) return parsePrivateKeyPem(existing, path);
  const key = await generatePrivateKey('rsa-2048');
  if (await createFileOnce(path, Buffer.from(privateKeyPem(key)), 0o600)) return key;
  // Another process created it first; tokens it signs must verify against the published key.
  const raced = await readCheckedFile(path, { private: true });
  if (raced === undefined) throw new CloudStateError(`${path} vanished while being created`);
  return parsePrivateKeyPem(raced, path);
}

async function loadOrIssueCertificate(
  paths: CloudPaths,
  labCa: Authority,
  privateKey: KeyObject,
  publicKey: KeyObject,
  now: Date,
): Promise<X509Certificate> {
  const data = await readCheckedFile(paths.tokenSigningCert, { private: false });
  if (data !== undefined) {
    let cert: X509Certificate | undefined;
    try {
      cert = parseCertificateFile(data, paths.tokenSigningCert);
    } catch {
      cert = undefined; // reissued below: a certificate can always be made again
    }
    if (
      cert?.checkPrivateKey(privateKey) &&
      cert.checkIssued(labCa.cert) &&
      cert.verify(labCa.cert.publicKey) &&
      new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_DAYS * DAY_MS
    ) {
      return cert;
    }
  }
  const cert = await signCertificate(labCa, {
    subject: 'CN=prtlab token signing, O=prtlab',
    publicKey,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CERT_VALIDITY_DAYS * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    ],
  });
  await replaceFile(paths.tokenSigningCert, Buffer.from(cert.toString()), 0o644);
  return cert;
}
