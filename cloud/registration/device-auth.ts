/**
 * How a device proves itself to DRS, for `DELETE /EnrollmentServer/device/{id}`.
 *
 * Entra uses TLS client-certificate authentication with the device certificate there (§1.4 "Other
 * uses", [RT-dev] delete_device). The lab's HTTPS front does not ask for client certificates (its
 * TLS options are fixed in cloud/http/server.ts), so two proofs are accepted, in this order:
 *
 * 1. A TLS client certificate, when the connection carries one (a front that sets
 *    `requestCert: true, rejectUnauthorized: false`). The handshake already proved possession of
 *    the key; this module checks that the certificate was issued by the device CA, is in its
 *    validity period and is the current certificate of an enabled device.
 * 2. Otherwise `Authorization: Bearer <device-signed JWT>`: RS256 with the device key, the device
 *    certificate in `x5c` (string or array, as §4.2 and §10 allow), and the payload
 *    `{ "request_nonce": <from GET /EnrollmentServer/nonce/{tenant}/>, "aud":
 *    "urn:ms-drs:enterpriseregistration.windows.net" }`. The nonce is the DRS nonce service's
 *    (§2 "Discovery"): MAC-protected, 10 minutes, and accepted once; the audience keeps a JWT the
 *    device key signed for another purpose (a PRT request, §4.2) from counting here.
 *
 * Failures: no proof at all is AADSTS9990211 (401); any failed check is AADSTS9990212 (401) with
 * one description per cause that says what failed, never which bytes; a disabled device is
 * AADSTS135011.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { parseCompact, verifyRs256, x5cOf } from '../../protocol/index.ts';
import { DRS_RESOURCE_URI } from '../directory/seed.ts';
import type { Device } from '../directory/types.ts';
import { CloudRequestError } from '../errors.ts';
import type { CloudRequest } from '../http/server.ts';
import { certificateThumbprint } from '../pki/authority.ts';
import type { CloudServices } from '../services.ts';
import { checkNonce, issueNonce } from '../tokens/nonce.ts';
import { ReplayCache } from '../tokens/replay-cache.ts';

/** DRS nonces live 10 minutes, as AD FS nonces do ([OAPXBC §6 note 5]; §3, §10). */
export const DRS_NONCE_LIFETIME_MS = 10 * 60_000;
/** A device credential JWT is a certificate (about 1.2 KiB as base64) plus a short payload. */
const MAX_DEVICE_JWT = 16 * 1024;

const CHALLENGE = 'Bearer realm="", error="invalid_token"';

function authFailed(description: string, detail?: string): CloudRequestError {
  return new CloudRequestError(9990212, {
    description,
    ...(detail ? { detail } : {}),
    headers: { 'www-authenticate': CHALLENGE },
  });
}

/** The DRS nonce service and the record of nonces already spent; one per cloud process. */
export class DrsNonces {
  // The MAC key is per process: a restart invalidates outstanding nonces, which live 10 minutes.
  readonly #key = randomBytes(32);
  readonly #spent = new ReplayCache(randomBytes(32), DRS_NONCE_LIFETIME_MS, 50_000);

  issue(now: number): string {
    return issueNonce(this.#key, now);
  }

  /**
   * Checks a nonce and spends it if it is good. The device proof below and the attestation of a
   * join (attestation.ts) share one record of spent nonces: a nonce serves one purpose once.
   */
  trySpend(nonce: unknown, now: number): 'ok' | 'expired' | 'forged' | 'used' {
    const check = checkNonce(this.#key, nonce, now, DRS_NONCE_LIFETIME_MS);
    if (!check.ok) return check.reason === 'expired' ? 'expired' : 'forged';
    return this.#spent.firstUse(nonce as string, now) ? 'ok' : 'used';
  }

  /** Checks a nonce and spends it; throws AADSTS9990212 if forged, expired or already used. */
  spend(nonce: unknown, now: number): void {
    const result = this.trySpend(nonce, now);
    if (result === 'ok') return;
    throw authFailed(
      result === 'expired'
        ? 'The request_nonce has expired; get a new one from the nonce service.'
        : result === 'used'
          ? 'The request_nonce was already used.'
          : 'The request_nonce was not issued by this service.',
    );
  }
}

/**
 * The device a certificate belongs to, if the device CA issued it, it is valid now, and it is the
 * device's current certificate (a re-joined device's old certificate no longer counts).
 */
async function deviceOfCertificate(
  der: Uint8Array,
  cloud: CloudServices,
  now: Date,
): Promise<Device> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(der));
  } catch {
    throw authFailed('The device certificate does not parse.');
  }
  const ca = cloud.deviceCa.cert;
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    throw authFailed('The device certificate was not issued by this tenant.');
  }
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw authFailed('The device certificate is not within its validity period.');
  }
  const device = await cloud.directory.devices.findByThumbprint(certificateThumbprint(cert));
  if (!device) throw authFailed('The device certificate is not the current one of any device.');
  if (!device.enabled) throw new CloudRequestError(135011);
  return device;
}

/** The certificate of a TLS client, if the connection presented one. */
export function peerCertificate(socket: Pick<TLSSocket, 'getPeerCertificate'>): Buffer | undefined {
  if (typeof socket?.getPeerCertificate !== 'function') return undefined;
  const peer = socket.getPeerCertificate(false) as { raw?: Buffer } | null;
  return peer?.raw && peer.raw.length > 0 ? peer.raw : undefined;
}

function bearer(req: CloudRequest): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer +(\S+)$/i.exec(header.trim());
  return m?.[1];
}

/**
 * Authenticates the device behind `req` (TLS client certificate, else device-signed JWT) and
 * returns its record. Throws AADSTS9990211 when there is no proof at all.
 */
export async function authenticateDevice(
  req: CloudRequest,
  cloud: CloudServices,
  nonces: DrsNonces,
): Promise<Device> {
  const now = cloud.now();
  const tlsCert = peerCertificate(req.socket);
  if (tlsCert) return deviceOfCertificate(tlsCert, cloud, now);

  const token = bearer(req);
  if (token === undefined) {
    throw new CloudRequestError(9990211, { headers: { 'www-authenticate': 'Bearer realm=""' } });
  }
  if (token.length > MAX_DEVICE_JWT) throw authFailed('The device credential is too large.');
  let parsed: ReturnType<typeof parseCompact>;
  let leaf: Buffer;
  try {
    parsed = parseCompact(token, { what: 'device credential', maxLength: MAX_DEVICE_JWT });
    leaf = x5cOf(parsed.header, 'device credential')[0]!;
  } catch (err) {
    throw authFailed(
      'The device credential is not a JWT with the device certificate in x5c.',
      err instanceof Error ? err.message : undefined,
    );
  }
  const device = await deviceOfCertificate(leaf, cloud, now);
  try {
    verifyRs256(new X509Certificate(leaf).publicKey, parsed, 'device credential');
  } catch (err) {
    throw authFailed(
      'The device credential signature is invalid.',
      err instanceof Error ? err.message : undefined,
    );
  }
  if (parsed.payload.aud !== DRS_RESOURCE_URI) {
    throw authFailed(`The device credential must have aud "${DRS_RESOURCE_URI}".`);
  }
  nonces.spend(parsed.payload.request_nonce, now.getTime());
  return device;
}
