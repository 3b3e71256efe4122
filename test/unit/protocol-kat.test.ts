/**
 * The PRT protocol against real Entra data: kanidm/compact-jwt's test
 * ms_oapxbc_3_2_5_1_3_3_exchange_request_response (prt-protocol.md §9, test/vectors/README.md).
 */
import { createHmac, createPrivateKey, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decryptResponse,
  decryptResponseWith,
  deriveKeyV1,
  deriveKeyV2,
  KDF_LABEL,
  kdfV2Context,
  openSessionKeyJwePayload,
  parseCompact,
  parseJsonObject,
  parseResponseJwe,
  parseSessionKeyJwe,
  SESSION_KEY_JWE_HEADER,
  sp800108,
  unwrapSessionKeyJwe,
  unwrapSessionKeyJweWith,
} from '../../protocol/index.ts';
import { kat } from '../shared/protocol.ts';

const h = (hex: string): Buffer => Buffer.from(hex, 'hex');
const transportKey = createPrivateKey(kat.transport_private_key_pkcs1_pem);
const sessionKey = h(kat.session_key_hex);

describe('[KAT] session_key_jwe (§9 item 1)', () => {
  it('has the Entra header and part sizes', () => {
    const parsed = parseSessionKeyJwe(kat.session_key_jwe);
    expect(parsed.header).toEqual({ enc: 'A256GCM', alg: 'RSA-OAEP' });
    expect(Buffer.from(parsed.headerB64, 'base64url').toString()).toBe(SESSION_KEY_JWE_HEADER);
    expect(parsed.encryptedKey).toHaveLength(256);
    expect(parsed.iv).toHaveLength(12);
    expect(parsed.ciphertext).toHaveLength(1);
    expect(parsed.tag).toHaveLength(16);
  });

  it('unwraps to the session key with RSA-OAEP-SHA1 and a node key', () => {
    expect(unwrapSessionKeyJwe(kat.session_key_jwe, transportKey).toString('hex')).toBe(
      kat.session_key_hex,
    );
  });

  it('unwraps through a caller-supplied (TPM-style) decrypt function', async () => {
    const { privateDecrypt, constants } = await import('node:crypto');
    const seen: Buffer[] = [];
    const key = await unwrapSessionKeyJweWith(
      kat.session_key_jwe,
      async (encryptedKey) => {
        seen.push(encryptedKey);
        return privateDecrypt(
          { key: transportKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
          encryptedKey,
        );
      },
      { verifyPayload: true },
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]).toHaveLength(256);
    expect(key.toString('hex')).toBe(kat.session_key_hex);
  });

  it('has the GCM payload 0x20 under the session key with EMPTY additional data', () => {
    const parsed = parseSessionKeyJwe(kat.session_key_jwe);
    expect(openSessionKeyJwePayload(parsed, sessionKey)).toEqual(Buffer.of(0x20));
    expect(unwrapSessionKeyJwe(parsed, transportKey, { verifyPayload: true })).toEqual(sessionKey);
  });
});

describe('[KAT] encrypted renewal response (§9 item 2)', () => {
  it('has the dir header with a standard-base64 ctx, an empty key part, a 16-byte IV, no tag', () => {
    const parsed = parseResponseJwe(kat.response_jwe);
    expect(parsed.header).toEqual({
      alg: 'dir',
      enc: 'A256GCM',
      ctx: 'UQoqkoRWX5Qh6zSnEvWOZYX2MwuAPxvD',
    });
    expect(parsed.ctx.toString('hex')).toBe(kat.response_ctx_hex);
    expect(kat.response_jwe.split('.')[1]).toBe('');
    expect(parsed.iv).toHaveLength(16);
    expect(parsed.tag).toHaveLength(0);
    expect(parsed.encoding).toBe('cbc');
  });

  it('derives the response key with KDFv1 over the header ctx', () => {
    expect(deriveKeyV1(sessionKey, h(kat.response_ctx_hex)).toString('hex')).toBe(
      kat.response_derived_key_hex,
    );
  });

  it('decrypts (AES-256-CBC, PKCS#7) to the recorded token response', () => {
    const out = decryptResponse(kat.response_jwe, sessionKey);
    expect(out.encoding).toBe('cbc');
    expect(out.plaintext.toString('utf8')).toBe(kat.response_plaintext);
    const body = parseJsonObject(out.plaintext, 'token response');
    expect(body).toMatchObject({
      token_type: 'Bearer',
      expires_in: '1209599',
      ext_expires_in: '0',
      expires_on: '1708017084',
      refresh_token_expires_in: 1209599,
    });
    expect(body.refresh_token).toMatch(/^0\.AbcA/);
    const idToken = parseCompact(body.id_token as string);
    expect(idToken.header).toEqual({ typ: 'JWT', alg: 'none' });
    expect(idToken.payload.aud).toBe('38aa3b87-a06d-4817-b275-7a316988d93b');
    expect(idToken.signature).toHaveLength(0);
  });

  it('decrypts with a derived key supplied for the ctx (sync and async)', async () => {
    const derived = h(kat.response_derived_key_hex);
    const ctxs: string[] = [];
    const sync = decryptResponse(kat.response_jwe, (ctx) => {
      ctxs.push(ctx.toString('hex'));
      return derived;
    });
    const viaDerive = await decryptResponseWith(kat.response_jwe, async (ctx) =>
      deriveKeyV1(sessionKey, ctx),
    );
    expect(ctxs).toEqual([kat.response_ctx_hex]);
    expect(sync.plaintext.toString()).toBe(kat.response_plaintext);
    expect(viaDerive.plaintext.toString()).toBe(kat.response_plaintext);
  });
});

describe('[KAT] synthetic KDF values (§9 item 3)', () => {
  const v1 = kat.kdf_v1_example;
  const v2 = kat.kdf_v2_example;

  it('uses the label AzureAD-SecureConversation', () => {
    expect(KDF_LABEL).toBe(kat.kdf_label);
  });

  it('KDFv1', () => {
    expect(deriveKeyV1(h(v1.session_key_hex), h(v1.ctx_hex)).toString('hex')).toBe(
      v1.derived_key_hex,
    );
  });

  it('KDFv2 over SHA-256(ctx || payload bytes)', () => {
    const payload = Buffer.from(v2.payload_utf8, 'utf8');
    expect(deriveKeyV2(h(v2.session_key_hex), h(v2.ctx_hex), payload).toString('hex')).toBe(
      v2.derived_key_hex,
    );
    expect(
      sp800108(h(v2.session_key_hex), KDF_LABEL, kdfV2Context(h(v2.ctx_hex), payload), 256),
    ).toEqual(h(v2.derived_key_hex));
  });

  it('matches the one-block HMAC formula of §5.1 written out by hand', () => {
    const ctx = h(v1.ctx_hex);
    const manual = createHmac('sha256', h(v1.session_key_hex))
      .update(Buffer.concat([h('00000001'), Buffer.from(KDF_LABEL), h('00'), ctx, h('00000100')]))
      .digest('hex');
    expect(manual).toBe(v1.derived_key_hex);
  });

  it('the transport key in the vector is RSA-2048, matching the 256-byte encrypted key', () => {
    const pub = createPublicKey(transportKey);
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});
