// Checks the crypto primitives against values recorded from a real swtpm 0.7.1 / libtpms 0.9.2
// (test/vectors/swtpm-transcript.json; tpm-formulas.md §3-§5 describe each formula).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cfbDecrypt } from '../../tpm-sim/crypto/cfb.ts';
import { digest, hmac, TPM_ALG_SHA256 } from '../../tpm-sim/crypto/hash.ts';
import { kdfa } from '../../tpm-sim/crypto/kdf.ts';
import { u32 } from '../shared/formulas.ts';

type Section = Record<string, string | number>;
const transcript = JSON.parse(
  readFileSync(new URL('../vectors/swtpm-transcript.json', import.meta.url), 'utf8'),
) as Record<string, Section>;

function hexField(section: string, field: string): Buffer {
  const value = transcript[section]?.[field];
  if (typeof value !== 'string') throw new Error(`transcript has no ${section}.${field}`);
  return Buffer.from(value, 'hex');
}

const EMPTY = Buffer.alloc(0);
const ZERO_IV = Buffer.alloc(16);

/** The command's parameter area: after header, handles and the authorization area. */
function commandParams(cmd: Buffer, handles: number): Buffer {
  const authStart = 10 + 4 * handles;
  return cmd.subarray(authStart + 4 + cmd.readUInt32BE(authStart));
}

describe('swtpm transcript: session keys (KDFa "ATH")', () => {
  it('bound session: sessionKey = KDFa(bindAuth, "ATH", nonceTPM, nonceCaller)', () => {
    const s = '3_bound_session';
    const key = kdfa(
      TPM_ALG_SHA256,
      hexField(s, 'bindAuth'),
      'ATH',
      hexField(s, 'nonceTPM'),
      hexField(s, 'nonceCaller'),
      256,
    );
    expect(key.toString('hex')).toBe(hexField(s, 'sessionKey_KDFa_ATH').toString('hex'));
  });

  it('RSA-salted session: sessionKey = KDFa(salt, "ATH", nonceTPM, nonceCaller)', () => {
    const s = '4a_rsa_salted';
    const key = kdfa(
      TPM_ALG_SHA256,
      hexField(s, 'salt'),
      'ATH',
      hexField(s, 'nonceTPM'),
      hexField(s, 'nonceCaller'),
      256,
    );
    expect(key.toString('hex')).toBe(hexField(s, 'sessionKey').toString('hex'));
  });
});

describe('swtpm transcript: parameter encryption (KDFa "CFB" + AES-128-CFB)', () => {
  const s = '4a_rsa_salted';
  const sessionKey = hexField(s, 'sessionKey');
  const kiv = kdfa(
    TPM_ALG_SHA256,
    Buffer.concat([sessionKey, hexField(s, 'parentAuth')]),
    'CFB',
    hexField(s, 'cmd_nonceCaller'),
    hexField(s, 'cmd_nonceTPM'),
    128 + 128,
  );

  it('derives the recorded key || iv', () => {
    expect(kiv.toString('hex')).toBe(hexField(s, 'cfb_key_iv').toString('hex'));
  });

  it('decrypts the first Create parameter to the recorded plaintext', () => {
    const sent = commandParams(hexField(s, 'create_cmd'), 1);
    const plain = hexField(s, 'create_plain_params');
    const size = sent.readUInt16BE(0);
    expect(size).toBe(plain.readUInt16BE(0));
    const decrypted = cfbDecrypt(
      kiv.subarray(0, 16),
      kiv.subarray(16, 32),
      sent.subarray(2, 2 + size),
    );
    expect(
      Buffer.concat([sent.subarray(0, 2), decrypted, sent.subarray(2 + size)]).toString('hex'),
    ).toBe(plain.toString('hex'));
  });

  it('reproduces the command HMAC (key = sessionKey || authValue)', () => {
    const cmd = hexField(s, 'create_cmd');
    const attrs = cmd[10 + 4 + 4 + 4 + 2 + 32]!; // handle, authSize, session handle, TPM2B nonce
    const mac = hmac(
      TPM_ALG_SHA256,
      Buffer.concat([sessionKey, hexField(s, 'parentAuth')]),
      hexField(s, 'cpHash'),
      hexField(s, 'cmd_nonceCaller'),
      hexField(s, 'cmd_nonceTPM'),
      Buffer.of(attrs),
    );
    expect(mac.toString('hex')).toBe(hexField(s, 'cmd_hmac').toString('hex'));
  });
});

describe('swtpm transcript: unbound session HMACs', () => {
  const s = '2_unbound_session';
  const key = hexField(s, 'hmacKey');

  it('cpHash and the command HMAC', () => {
    const cmd = hexField(s, 'createprimary_cmd');
    const cp = digest(
      TPM_ALG_SHA256,
      u32(cmd.readUInt32BE(6)),
      u32(cmd.readUInt32BE(10)),
      commandParams(cmd, 1),
    );
    expect(cp.toString('hex')).toBe(hexField(s, 'cpHash').toString('hex'));
    const mac = hmac(
      TPM_ALG_SHA256,
      key,
      cp,
      hexField(s, 'cmd_nonceCaller'),
      hexField(s, 'cmd_nonceTPM'),
      Buffer.of(1),
    );
    expect(mac.toString('hex')).toBe(hexField(s, 'cmd_hmac').toString('hex'));
  });

  it('rpHash and the response HMAC', () => {
    const rsp = hexField(s, 'createprimary_rsp');
    const cc = hexField(s, 'createprimary_cmd').readUInt32BE(6);
    const paramSize = rsp.readUInt32BE(14); // after the header and the one response handle
    const rp = digest(
      TPM_ALG_SHA256,
      u32(rsp.readUInt32BE(6)),
      u32(cc),
      rsp.subarray(18, 18 + paramSize),
    );
    expect(rp.toString('hex')).toBe(hexField(s, 'rpHash').toString('hex'));
    const mac = hmac(
      TPM_ALG_SHA256,
      key,
      rp,
      hexField(s, 'rsp_nonceTPM'),
      hexField(s, 'cmd_nonceCaller'),
      Buffer.of(1),
    );
    expect(mac.toString('hex')).toBe(hexField(s, 'rsp_hmac').toString('hex'));
  });
});

/** KDFa(seed, "STORAGE", name) and KDFa(seed, "INTEGRITY") equal the keys section `s` recorded. */
function expectRecordedProtectionKeys(s: string, seed: Buffer, name: Buffer): void {
  expect(kdfa(TPM_ALG_SHA256, seed, 'STORAGE', name, EMPTY, 128).toString('hex')).toBe(
    hexField(s, 'symKey_STORAGE').toString('hex'),
  );
  expect(kdfa(TPM_ALG_SHA256, seed, 'INTEGRITY', EMPTY, EMPTY, 256).toString('hex')).toBe(
    hexField(s, 'hmacKey_INTEGRITY').toString('hex'),
  );
}

describe('swtpm transcript: import blob (outer and inner wrapper)', () => {
  const s = '5a_import';
  const seed = hexField(s, 'seed');
  const name = hexField(s, 'name');

  it('derives the recorded STORAGE and INTEGRITY keys', () => {
    expectRecordedProtectionKeys(s, seed, name);
  });

  it('unwraps the duplicate to the recorded sensitive area', () => {
    const dup = hexField(s, 'duplicate');
    const outerHmac = dup.subarray(2, 2 + dup.readUInt16BE(0));
    const dupSensitive = dup.subarray(2 + outerHmac.length);
    const hmacKey = hexField(s, 'hmacKey_INTEGRITY');
    expect(hmac(TPM_ALG_SHA256, hmacKey, dupSensitive, name).equals(outerHmac)).toBe(true);

    const encSensitive = cfbDecrypt(hexField(s, 'symKey_STORAGE'), ZERO_IV, dupSensitive);
    const inner = cfbDecrypt(hexField(s, 'encryptionKey'), ZERO_IV, encSensitive);
    const sens2B = hexField(s, 'sensitive2B');
    const innerIntegrity = digest(TPM_ALG_SHA256, sens2B, name);
    expect(innerIntegrity.toString('hex')).toBe(hexField(s, 'innerIntegrity').toString('hex'));
    expect(inner.toString('hex')).toBe(
      Buffer.concat([Buffer.of(0, 32), innerIntegrity, sens2B]).toString('hex'),
    );
  });
});

describe('swtpm transcript: protected storage blob made by the TPM', () => {
  const s = '5b_protected_storage';
  const seed = hexField(s, 'parentSeedValue');
  const name = hexField(s, 'child_name');

  it('derives the recorded STORAGE and INTEGRITY keys', () => {
    expectRecordedProtectionKeys(s, seed, name);
  });

  it('checks the outer HMAC and decrypts TPM2B_SENSITIVE', () => {
    const priv = hexField(s, 'tpm_outPrivate');
    const outerHmac = priv.subarray(2, 2 + priv.readUInt16BE(0));
    const rest = priv.subarray(2 + outerHmac.length);
    const ivLen = rest.readUInt16BE(0);
    const iv2B = rest.subarray(0, 2 + ivLen);
    const encSensitive = rest.subarray(2 + ivLen);
    const mac = hmac(TPM_ALG_SHA256, hexField(s, 'hmacKey_INTEGRITY'), iv2B, encSensitive, name);
    expect(mac.equals(outerHmac)).toBe(true);

    const sens = cfbDecrypt(hexField(s, 'symKey_STORAGE'), iv2B.subarray(2), encSensitive);
    expect(sens.readUInt16BE(0)).toBe(sens.length - 2);
    // TPMT_SENSITIVE.sensitiveType equals the child's TPMT_PUBLIC.type.
    expect(sens.readUInt16BE(2)).toBe(hexField(s, 'child_outPublic').readUInt16BE(0));
  });
});
