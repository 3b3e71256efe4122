/**
 * The cloud's PKI in one call: the lab root CA and device CA (created once), the HTTPS server
 * certificate (reissued when it no longer fits) and the token-signing key.
 */
import type { CloudPaths } from '../data-dir.ts';
import { type Authority, loadOrCreateAuthorities } from './authority.ts';
import { ensureServerCertificate, type ServerCredentials } from './server-cert.ts';
import { loadOrCreateSigningKey, type SigningKey } from './signing-key.ts';

export {
  type Authorities,
  type Authority,
  certificateThumbprint,
  DEVICE_CA_SUBJECT,
  loadOrCreateAuthorities,
} from './authority.ts';
export {
  type DeviceCertificateParams,
  type IssuedDeviceCertificate,
  issueDeviceCertificate,
  JOIN_TYPES,
  type JoinType,
  type OnPremDeviceCertificate,
  type ParsedCsr,
  parseCsr,
  parseOnPremDeviceCertificate,
} from './device-cert.ts';
export { SERVER_CERT_HOSTS, type ServerCredentials } from './server-cert.ts';
export { type PublicJwk, rsaJwkThumbprint, type SigningKey } from './signing-key.ts';

export interface LabPki {
  readonly labCa: Authority;
  readonly deviceCa: Authority;
  readonly server: ServerCredentials;
  readonly signingKey: SigningKey;
  /** True if this call created the CAs (first start). */
  readonly caCreated: boolean;
}

/** Loads or creates everything the HTTPS server needs; `hosts` are extra server-certificate names. */
export async function openLabPki(
  paths: CloudPaths,
  hosts: readonly string[] = [],
  now: Date = new Date(),
): Promise<LabPki> {
  const { labCa, deviceCa, created } = await loadOrCreateAuthorities(paths, now);
  const server = await ensureServerCertificate(paths, labCa, hosts, now);
  const signingKey = await loadOrCreateSigningKey(paths, labCa, now);
  return Object.freeze({ labCa, deviceCa, server, signingKey, caCreated: created });
}
