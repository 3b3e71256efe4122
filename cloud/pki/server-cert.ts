/**
 * The HTTPS server's certificate, issued by the lab CA for 127.0.0.1, ::1 and localhost (plus the
 * listen address, if another was allowed). Key and certificate live together in one 0600 PEM file
 * so that a replacement swaps both at once. The file is reused while it still fits: signed by the
 * current lab CA, matching its key, naming every host, and valid for at least RENEW_BEFORE_DAYS.
 */
import { createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { CloudPaths } from '../data-dir.ts';
import { CloudStateError } from '../errors.ts';
import { readCheckedFile, replaceFile } from '../files.ts';
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

/** Names every server certificate carries. */
export const SERVER_CERT_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost'];

const DAY_MS = 86_400_000;
/** Within the 398-day limit browsers and Apple platforms enforce for server certificates. */
const SERVER_VALIDITY_DAYS = 397;
const RENEW_BEFORE_DAYS = 30;

export interface ServerCredentials {
  /** PEM private key. */
  readonly key: string;
  /** PEM certificate (leaf only; clients hold the lab CA). */
  readonly cert: string;
  readonly certificate: X509Certificate;
  /** True if this call issued a new certificate. */
  readonly issued: boolean;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * Loads the server key and certificate, issuing new ones from `labCa` if the file is missing or
 * no longer fits `hosts` (SERVER_CERT_HOSTS are always included).
 */
export async function ensureServerCertificate(
  paths: CloudPaths,
  labCa: Authority,
  hosts: readonly string[] = [],
  now: Date = new Date(),
): Promise<ServerCredentials> {
  const names = [...new Set([...SERVER_CERT_HOSTS, ...hosts.filter(isNamedHost)])];
  const current = await loadServerPem(paths.serverPem);
  if (current && fits(current.certificate, current.privateKey, labCa, names, now)) {
    return {
      key: current.keyPem,
      cert: current.certPem,
      certificate: current.certificate,
      issued: false,
    };
  }
  const privateKey = await generatePrivateKey('ec-p256');
  const certificate = await signCertificate(labCa, {
    subject: 'CN=prtlab cloud, O=prtlab',
    publicKey: createPublicKey(privateKey),
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + SERVER_VALIDITY_DAYS * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((name) => ({ type: isIP(name) ? 'ip' : 'dns', value: name })),
      ),
    ],
  });
  const keyPem = privateKeyPem(privateKey);
  const certPem = certificate.toString();
  await replaceFile(paths.serverPem, Buffer.from(`${keyPem}${certPem}`), 0o600);
  return { key: keyPem, cert: certPem, certificate, issued: true };
}

/** Wildcard listen addresses name no host a client would connect to. */
function isNamedHost(host: string): boolean {
  return host !== '' && host !== '0.0.0.0' && host !== '::';
}

function fits(
  cert: X509Certificate,
  key: KeyObject,
  labCa: Authority,
  names: readonly string[],
  now: Date,
): boolean {
  if (!cert.checkPrivateKey(key)) return false;
  if (!cert.checkIssued(labCa.cert) || !cert.verify(labCa.cert.publicKey)) return false;
  if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return false;
  if (new Date(cert.validFrom).getTime() > now.getTime()) return false;
  return names.every((n) =>
    isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n, { wildcards: false }) !== undefined,
  );
}

async function loadServerPem(
  path: string,
): Promise<
  | { keyPem: string; certPem: string; privateKey: KeyObject; certificate: X509Certificate }
  | undefined
> {
  const data = await readCheckedFile(path, { private: true });
  if (data === undefined) return undefined;
  const text = data.toString('utf8');
  const blocks = [...text.matchAll(PEM_BLOCK)];
  const keyBlock = blocks.find((b) => b[1] === 'PRIVATE KEY')?.[0];
  const certBlock = blocks.find((b) => b[1] === 'CERTIFICATE')?.[0];
  // A server certificate can always be issued again, so a malformed file is replaced rather
  // than refused (an unsafe mode or owner was already refused by readCheckedFile).
  if (keyBlock === undefined || certBlock === undefined) return undefined;
  try {
    return {
      keyPem: `${keyBlock}\n`,
      certPem: `${certBlock}\n`,
      privateKey: parsePrivateKeyPem(keyBlock, path),
      certificate: parseCertificateFile(Buffer.from(certBlock), path),
    };
  } catch (err) {
    if (err instanceof CloudStateError) return undefined;
    throw err;
  }
}
