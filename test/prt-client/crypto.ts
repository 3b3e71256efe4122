/**
 * The PRT protocol's client-side crypto, written from docs/prt-protocol.md with node:crypto only,
 * independently of prtlab's protocol/ module, so the cloud is checked against a second reading of
 * the same document.
 */
import {
  constants,
  createDecipheriv,
  createHash,
  createHmac,
  type KeyObject,
  privateDecrypt,
  randomBytes,
  sign,
} from 'node:crypto';

const LABEL = Buffer.from('AzureAD-SecureConversation', 'ascii');

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** SP 800-108 counter mode, HMAC-SHA256, one block (prt-protocol §5.1). */
export function kdf(sessionKey: Buffer, context: Buffer): Buffer {
  return createHmac('sha256', sessionKey)
    .update(Buffer.from([0, 0, 0, 1]))
    .update(LABEL)
    .update(Buffer.from([0]))
    .update(context)
    .update(Buffer.from([0, 0, 1, 0]))
    .digest();
}

/** §5.2: context = SHA-256(ctx || the exact payload bytes). */
export function kdfV2(sessionKey: Buffer, ctx: Buffer, payloadBytes: Buffer): Buffer {
  return kdf(sessionKey, createHash('sha256').update(ctx).update(payloadBytes).digest());
}

/** An RS256 JWT signed by the device key, with the device certificate in x5c (§4.2). */
export function deviceSignedJwt(
  key: KeyObject,
  certDer: Buffer,
  payload: object,
  extraHeader: object = {},
): string {
  const header = { alg: 'RS256', typ: 'JWT', x5c: certDer.toString('base64'), ...extraHeader };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

/** An HS256 JWT signed with a key derived from the session key (§6.1), KDFv2 unless told v1. */
export function sessionSignedJwt(
  sessionKey: Buffer,
  payload: object,
  kdfVersion: 1 | 2 = 2,
): { jwt: string; ctx: Buffer } {
  const ctx = randomBytes(24);
  const header =
    kdfVersion === 2
      ? { alg: 'HS256', ctx: ctx.toString('base64'), kdf_ver: 2 }
      : { alg: 'HS256', ctx: ctx.toString('base64') };
  const payloadBytes = Buffer.from(JSON.stringify(payload));
  const key = kdfVersion === 2 ? kdfV2(sessionKey, ctx, payloadBytes) : kdf(sessionKey, ctx);
  const input = `${b64url(JSON.stringify(header))}.${b64url(payloadBytes)}`;
  return { jwt: `${input}.${b64url(createHmac('sha256', key).update(input).digest())}`, ctx };
}

/**
 * The browser SSO cookie x-ms-RefreshTokenCredential (§6.3): an HS256 JWT like §6.1's, over
 * `{refresh_token: <PRT>, is_primary: "true", request_nonce}` plus Windows' optional fields;
 * `request_nonce` is left out when `nonce` is undefined (the older time-based form, `iat` only).
 */
export function prtCookie(
  sessionKey: Buffer,
  prt: string,
  nonce: string | undefined,
  kdfVersion: 1 | 2 = 2,
): string {
  const payload = {
    refresh_token: prt,
    is_primary: 'true',
    ...(nonce !== undefined
      ? { request_nonce: nonce }
      : { iat: String(Math.floor(Date.now() / 1000)) }),
    x_client_platform: 'windows',
    win_ver: '10.0.22631.4460',
    windows_api_version: '2.0.1',
  };
  return sessionSignedJwt(sessionKey, payload, kdfVersion).jwt;
}

/** §4.4: the session key is the RSA-OAEP(SHA-1) encrypted key of the JWE; the payload is ignored. */
export function unwrapSessionKey(jwe: string, transportKey: KeyObject): Buffer {
  const parts = jwe.split('.');
  if (parts.length !== 5) throw new Error('session_key_jwe is not a compact JWE');
  const header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString());
  if (header.alg !== 'RSA-OAEP' || header.enc !== 'A256GCM')
    throw new Error(`unexpected JWE header ${parts[0]}`);
  return privateDecrypt(
    { key: transportKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
    Buffer.from(parts[1]!, 'base64url'),
  );
}

/** §6.2: a dir/A256GCM JWE keyed by KDFv1(session key, header ctx); 12-byte IV = GCM, 16-byte IV = CBC. */
export function decryptResponse(jwe: string, sessionKey: Buffer): Record<string, unknown> {
  const [h, ek, ivB, ctB, tagB] = jwe.split('.');
  if (h === undefined || ek !== '' || ivB === undefined || ctB === undefined || tagB === undefined)
    throw new Error('not a dir JWE');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  if (header.alg !== 'dir' || header.enc !== 'A256GCM') throw new Error(`unexpected header ${h}`);
  const key = kdf(sessionKey, Buffer.from(header.ctx, 'base64'));
  const iv = Buffer.from(ivB, 'base64url');
  const ct = Buffer.from(ctB, 'base64url');
  let plain: Buffer;
  if (iv.length === 12) {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(h, 'ascii'));
    d.setAuthTag(Buffer.from(tagB, 'base64url'));
    plain = Buffer.concat([d.update(ct), d.final()]);
  } else {
    const d = createDecipheriv('aes-256-cbc', key, iv);
    plain = Buffer.concat([d.update(ct), d.final()]);
  }
  return JSON.parse(plain.toString('utf8'));
}

/** BCRYPT_RSAKEY_BLOB "RSA1" of a public key (§1.3). */
export function rsa1Blob(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const e = Buffer.from(jwk.e!, 'base64url');
  const n = Buffer.from(jwk.n!, 'base64url');
  const head = Buffer.alloc(24);
  head.write('RSA1', 0, 'ascii');
  head.writeUInt32LE(n.length * 8, 4);
  head.writeUInt32LE(e.length, 8);
  head.writeUInt32LE(n.length, 12);
  return Buffer.concat([head, e, n]);
}
