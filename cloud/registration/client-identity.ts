/**
 * Hybrid join proof (docs/prt-protocol.md §1.5, §2 "Hybrid join"): `ServerAdJoinData.ClientIdentity`
 * = { Type: "sha256signed", Sid: "<computer objectSid>.<UTC yyyy-MM-dd HH:mm:ss>Z", SignedBlob:
 * b64(RSASSA-PKCS1-v1_5 SHA-256 over the UTF-8 Sid string) } made with the key of the on-premises
 * computer certificate [RT-dev][AADI-PRTU]. The cloud checks it against the certificate stored by
 * `prtlab cloud device precreate` (the sync of that certificate to Entra).
 *
 * The signed text is only a SID and a time, with no server nonce, so the lab bounds its reuse:
 * - freshness: the timestamp may be at most CLIENT_IDENTITY_MAX_AGE_MS old (10 minutes, the
 *   window AD FS gives its nonces [OAPXBC §6 note 5]; Entra's own window is not public) and at
 *   most CLIENT_IDENTITY_MAX_FUTURE_MS ahead (the device certificates' back-dating);
 * - replay: one (device, Sid string) pair is accepted once while it is fresh. Signatures are
 *   deterministic (PKCS#1 v1.5), so the signed text is the key, not the blob bytes.
 * The replay cache lives in the cloud process, like the token service's.
 */
import { constants, type KeyObject, randomBytes, verify } from 'node:crypto';
import { CloudRequestError } from '../errors.ts';
import { ReplayCache } from '../tokens/replay-cache.ts';
import { badField } from './fields.ts';
import type { ClientIdentityField } from './request.ts';

export const CLIENT_IDENTITY_MAX_AGE_MS = 10 * 60_000;
export const CLIENT_IDENTITY_MAX_FUTURE_MS = 5 * 60_000;

// A SID (S-1-<authority>-<sub-authorities...>, at most 15 of them) then '.', the UTC time and 'Z'.
const SID_RE =
  /^(S-1-\d{1,13}(?:-\d{1,10}){1,15})\.(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})Z$/;

/** The parts of a ClientIdentity Sid string. */
export interface ParsedClientSid {
  readonly sid: string;
  /** Milliseconds since the epoch. */
  readonly signedAt: number;
}

/** Parses `<sid>.<yyyy-MM-dd HH:mm:ss>Z`; a malformed string or an impossible date is AADSTS9990205. */
export function parseClientSid(text: string): ParsedClientSid {
  const m = SID_RE.exec(text);
  if (!m) {
    throw badField(
      "'ServerAdJoinData.ClientIdentity.Sid' must be '<SID>.<yyyy-MM-dd HH:mm:ss>Z' (UTC).",
    );
  }
  const [y, mo, d, h, mi, s] = m.slice(2).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const signedAt = Date.UTC(y, mo - 1, d, h, mi, s);
  // Date.UTC rolls 2024-02-30 over to March; a real timestamp reads back the same.
  const back = new Date(signedAt);
  if (
    back.getUTCFullYear() !== y ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d ||
    back.getUTCHours() !== h ||
    back.getUTCMinutes() !== mi ||
    back.getUTCSeconds() !== s
  ) {
    throw badField("'ServerAdJoinData.ClientIdentity.Sid' has an impossible date or time.");
  }
  return { sid: m[1]!, signedAt };
}

/** Checks ClientIdentity proofs for hybrid joins; one instance per cloud process. */
export class ClientIdentityVerifier {
  // A proof can pass for at most MAX_AGE + MAX_FUTURE; the cache remembers it at least that long.
  readonly #replay = new ReplayCache(
    randomBytes(32),
    CLIENT_IDENTITY_MAX_AGE_MS + CLIENT_IDENTITY_MAX_FUTURE_MS,
    50_000,
  );

  /**
   * Verifies `identity` for device `deviceId` with the on-premises certificate's public key, at
   * time `now` (ms). Order: format, signature (AADSTS9990208), freshness (AADSTS9990209), replay
   * (AADSTS9990210); the proof is only recorded once everything else passed.
   */
  verify(identity: ClientIdentityField, deviceId: string, onPremKey: KeyObject, now: number): void {
    const parsed = parseClientSid(identity.sid);
    let ok = false;
    try {
      ok = verify(
        'sha256',
        Buffer.from(identity.sid, 'utf8'),
        { key: onPremKey, padding: constants.RSA_PKCS1_PADDING },
        identity.signedBlob,
      );
    } catch {
      ok = false;
    }
    if (!ok) throw new CloudRequestError(9990208);
    const age = now - parsed.signedAt;
    if (age > CLIENT_IDENTITY_MAX_AGE_MS || -age > CLIENT_IDENTITY_MAX_FUTURE_MS) {
      throw new CloudRequestError(9990209, {
        description:
          'The hybrid join ClientIdentity timestamp is outside the accepted window ' +
          `(at most ${CLIENT_IDENTITY_MAX_AGE_MS / 60_000} minutes old, ` +
          `${CLIENT_IDENTITY_MAX_FUTURE_MS / 60_000} minutes ahead).`,
      });
    }
    if (!this.#replay.firstUse(`${deviceId}\n${identity.sid}`, now)) {
      throw new CloudRequestError(9990210);
    }
  }
}
