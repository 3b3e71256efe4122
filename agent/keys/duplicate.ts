/**
 * The duplication blob that brings the PRT session key into the TPM as an HMAC key
 * (prt-protocol §1.2, §5.6: the session key is imported under a TPM key right after the transport
 * key decrypts it). TPM 2.0 Part 1 §23.3.2.3 (outer wrapper) and Part 3 §13.3 (TPM2_Import),
 * written out in /work/shared docs/tpm-formulas.md §5, for an ECC storage parent:
 *
 *   Z            = ECDH(ephemeral private, parent public point).x
 *   seed         = KDFe(SHA-256, Z, "DUPLICATE", ephemeral.x, parent.x, 256)      (Part 1 §11.4.10.3)
 *   symKey       = KDFa(SHA-256, seed, "STORAGE", Name, {}, parent sym key bits)  (Part 1 §11.4.10.2)
 *   hmacKey      = KDFa(SHA-256, seed, "INTEGRITY", {}, {}, 256)
 *   dupSensitive = AES-CFB(symKey, IV 0, TPM2B_SENSITIVE)
 *   duplicate    = TPM2B(HMAC-SHA256(hmacKey, dupSensitive || Name)) || dupSensitive
 *   inSymSeed    = TPMS_ECC_POINT(ephemeral public point)
 *
 * No inner wrapper: the blob goes straight from this process to the TPM and the outer wrapper
 * already encrypts and authenticates it under the parent. The object is a keyedHash HMAC key whose
 * authPolicy is empty, so no policy session can ever authorize TPM2_Duplicate on it (Part 3
 * §13.1: Duplicate needs the ADMIN role, which is only reachable by policy): once imported, the
 * session key never leaves this TPM, even though an imported object cannot carry fixedTPM
 * (Part 1 §23.3.1: Import refuses fixedTPM and fixedParent).
 */
import { createCipheriv, createECDH, createHash, createHmac, randomBytes } from 'node:crypto';
import { TPM_ALG, TPMA_OBJECT } from '../../tpm-sim/client/index.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import {
  type EccParms,
  type EccPoint,
  type Public,
  TPM2B_SENSITIVE,
  TPMS_ECC_POINT,
  TPMT_PUBLIC,
} from '../../tpm-sim/wire/structures.ts';

const EMPTY = Buffer.alloc(0);

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** A KDF label with its terminating zero octet (Part 1 §11.4.10.1). */
function label(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'latin1');
}

/** KDFa with HMAC-SHA-256 (Part 1 §11.4.10.2): counter, label, contextU, contextV, bits. */
export function kdfa(key: Buffer, use: string, u: Buffer, v: Buffer, bits: number): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 1; blocks.length * 256 < bits; i++) {
    blocks.push(
      createHmac('sha256', key)
        .update(u32(i))
        .update(label(use))
        .update(u)
        .update(v)
        .update(u32(bits))
        .digest(),
    );
  }
  return Buffer.concat(blocks).subarray(0, bits / 8);
}

/** KDFe with SHA-256 for one block of 256 bits (Part 1 §11.4.10.3). */
export function kdfe(z: Buffer, use: string, partyU: Buffer, partyV: Buffer): Buffer {
  return createHash('sha256')
    .update(u32(1))
    .update(z)
    .update(label(use))
    .update(partyU)
    .update(partyV)
    .digest();
}

/** Name = nameAlg || SHA-256(TPMT_PUBLIC) (Part 1 §16). */
export function objectName(pub: Public): Buffer {
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(TPM_ALG.SHA256);
  return Buffer.concat([alg, createHash('sha256').update(marshal(TPMT_PUBLIC, pub)).digest()]);
}

/** The public area of an imported HMAC-SHA256 key: unique = SHA-256(seedValue || key) (Part 1 §27.2.3). */
export function hmacKeyPublic(seedValue: Buffer, key: Buffer): Public {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    // sign: an HMAC key; userWithAuth with an empty authValue; noDA: a wrong (empty) auth never
    // counts against the dictionary-attack lockout. No fixedTPM/fixedParent (refused by Import).
    objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA | TPMA_OBJECT.sign,
    authPolicy: EMPTY,
    parameters: { scheme: { scheme: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256 } },
    unique: createHash('sha256').update(seedValue).update(key).digest(),
  };
}

/** TPM2_Import's parameters for an HMAC key under an ECC storage parent. */
export interface HmacImport {
  readonly objectPublic: Public;
  readonly duplicate: Buffer;
  readonly inSymSeed: Buffer;
}

/**
 * Wraps `key` (the plain session key) for TPM2_Import under `parent`, an ECC P-256 storage key
 * with a SHA-256 nameAlg and an AES-CFB symmetric definition. Every intermediate secret is zeroed
 * before returning; the caller zeroes `key`.
 */
export function wrapHmacKeyForImport(parent: Public, key: Buffer): HmacImport {
  const parms = parent.parameters as EccParms;
  const point = parent.unique as EccPoint;
  if (parent.type !== TPM_ALG.ECC || parent.nameAlg !== TPM_ALG.SHA256) {
    throw new TypeError('the import parent must be an ECC storage key with a SHA-256 nameAlg');
  }
  if (parms.symmetric.algorithm !== TPM_ALG.AES || parms.symmetric.mode !== TPM_ALG.CFB) {
    throw new TypeError('the import parent must use AES-CFB');
  }
  const keyBits = parms.symmetric.keyBits as number;
  const seedValue = randomBytes(32);
  const objectPublic = hmacKeyPublic(seedValue, key);
  const name = objectName(objectPublic);
  const sensitive = marshal(TPM2B_SENSITIVE, {
    sensitiveType: TPM_ALG.KEYEDHASH,
    authValue: EMPTY,
    seedValue,
    sensitive: key,
  });

  const ephemeral = createECDH('prime256v1');
  const q = ephemeral.generateKeys();
  const qx = q.subarray(1, 33);
  const qy = q.subarray(33, 65);
  const z = ephemeral.computeSecret(Buffer.concat([Buffer.of(4), pad32(point.x), pad32(point.y)]));
  const seed = kdfe(z, 'DUPLICATE', qx, point.x);
  const symKey = kdfa(seed, 'STORAGE', name, EMPTY, keyBits);
  const hmacKey = kdfa(seed, 'INTEGRITY', EMPTY, EMPTY, 256);
  const cipher = createCipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const dupSensitive = Buffer.concat([cipher.update(sensitive), cipher.final()]);
  const outerHmac = createHmac('sha256', hmacKey).update(dupSensitive).update(name).digest();
  const size = Buffer.alloc(2);
  size.writeUInt16BE(outerHmac.length);
  const duplicate = Buffer.concat([size, outerHmac, dupSensitive]);
  for (const secret of [sensitive, z, seed, symKey, hmacKey, seedValue]) secret.fill(0);
  return { objectPublic, duplicate, inSymSeed: marshal(TPMS_ECC_POINT, { x: qx, y: qy }) };
}

function pad32(b: Buffer): Buffer {
  return b.length >= 32 ? b : Buffer.concat([Buffer.alloc(32 - b.length), b]);
}
