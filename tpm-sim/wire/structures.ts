/**
 * TPM 2.0 structures (Part 2) as codecs. Sizes follow swtpm/libtpms' build (MAX_RSA_KEY_BYTES 512,
 * MAX_ECC_KEY_BYTES 48, MAX_DIGEST_BUFFER 1024) so that what tpm2-tools sends fits.
 */
import {
  type Codec,
  type Decoded,
  dependent,
  empty,
  list,
  oneOf,
  type Reader,
  sized,
  struct,
  tpm2b,
  u8,
  u16,
  u32,
  u64,
  WireError,
  type Writer,
} from './codec.ts';
import {
  HANDLE_RANGE,
  NV_BUFFER_MAX,
  TPM_ALG,
  TPM_CAP,
  TPM_ECC_CURVE,
  TPM_ST,
} from './constants.ts';
import { TPM_RC } from './rc.ts';

const A = TPM_ALG;

/** Digest sizes by hash algorithm (Part 2 §11.1.2 TPMU_HA). */
export const DIGEST_SIZE: Readonly<Record<number, number>> = {
  [A.SHA1]: 20,
  [A.SHA256]: 32,
  [A.SHA384]: 48,
  [A.SHA512]: 64,
};
export const HASH_ALGS = [A.SHA1, A.SHA256, A.SHA384, A.SHA512] as const;

// Interface types (Part 2 §9): the value must be in the set, else the named TPM_RC.
/** TPMI_ALG_HASH */
export const algHash = oneOf('TPMI_ALG_HASH', u16, HASH_ALGS, TPM_RC.HASH);
/** TPMI_ALG_HASH+ (TPM_ALG_NULL allowed) */
export const algHashOrNull = oneOf('TPMI_ALG_HASH+', u16, [...HASH_ALGS, A.NULL], TPM_RC.HASH);
/** TPMI_ALG_PUBLIC */
export const algPublic = oneOf(
  'TPMI_ALG_PUBLIC',
  u16,
  [A.RSA, A.KEYEDHASH, A.ECC, A.SYMCIPHER],
  TPM_RC.TYPE,
);
/** TPMI_ECC_CURVE */
export const eccCurve = oneOf(
  'TPMI_ECC_CURVE',
  u16,
  [TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384],
  TPM_RC.CURVE,
);
/** TPMI_SH_AUTH_SESSION etc. are checked by the engine; handles are plain u32 here. */
export const handle = u32;

// Sized buffers (Part 2 §10.4).
export const TPM2B_DIGEST = tpm2b('TPM2B_DIGEST', 64);
export const TPM2B_NONCE = TPM2B_DIGEST;
export const TPM2B_AUTH = TPM2B_DIGEST;
export const TPM2B_DATA = tpm2b('TPM2B_DATA', 64);
export const TPM2B_NAME = tpm2b('TPM2B_NAME', 2 + 64);
export const TPM2B_MAX_BUFFER = tpm2b('TPM2B_MAX_BUFFER', 1024);
export const TPM2B_PUBLIC_KEY_RSA = tpm2b('TPM2B_PUBLIC_KEY_RSA', 512);
export const TPM2B_PRIVATE_KEY_RSA = tpm2b('TPM2B_PRIVATE_KEY_RSA', 256 + 64);
export const TPM2B_ECC_PARAMETER = tpm2b('TPM2B_ECC_PARAMETER', 48);
export const TPM2B_SENSITIVE_DATA = tpm2b('TPM2B_SENSITIVE_DATA', 128);
export const TPM2B_SYM_KEY = tpm2b('TPM2B_SYM_KEY', 32);
export const TPM2B_IV = tpm2b('TPM2B_IV', 16);
export const TPM2B_ENCRYPTED_SECRET = tpm2b('TPM2B_ENCRYPTED_SECRET', 512);
export const TPM2B_PRIVATE = tpm2b('TPM2B_PRIVATE', 1024);
export const TPM2B_CONTEXT_DATA = tpm2b('TPM2B_CONTEXT_DATA', 4096);
export const TPM2B_ATTEST = tpm2b('TPM2B_ATTEST', 1024);
export const TPM2B_MAX_NV_BUFFER = tpm2b('TPM2B_MAX_NV_BUFFER', NV_BUFFER_MAX);
/** TPM2B_TIMEOUT (Part 2 §10.4.10): at most a UINT64. */
export const TPM2B_TIMEOUT = tpm2b('TPM2B_TIMEOUT', 8);

/** INT32 (Part 2 §5.1), e.g. TPM2_PolicySecret's expiration. */
export const i32: Codec<number> = {
  name: 'INT32',
  read: (r) => r.u32() | 0,
  write: (w, v) => void w.u32(v >>> 0),
};

/** A handle interface type that admits one range (TPMI_RH_NV_INDEX, ...): else `rc`. */
function handleInRange(name: string, first: number, last: number, rc: number): Codec<number> {
  return {
    name,
    read(r) {
      const v = r.u32();
      if (v < first || v > last)
        throw new WireError(rc, `${name}: 0x${v.toString(16)} is not allowed`);
      return v;
    },
    write: (w, v) => void w.u32(v),
  };
}
/** TPMI_RH_NV_INDEX (Part 2 §9.24). */
export const nvIndexHandle = handleInRange(
  'TPMI_RH_NV_INDEX',
  HANDLE_RANGE.NV_INDEX_FIRST,
  HANDLE_RANGE.NV_INDEX_LAST,
  TPM_RC.VALUE,
);

/** TPMS_ECC_POINT (Part 2 §11.2.5.2). */
export const TPMS_ECC_POINT = struct('TPMS_ECC_POINT', {
  x: TPM2B_ECC_PARAMETER,
  y: TPM2B_ECC_PARAMETER,
});
export type EccPoint = Decoded<typeof TPMS_ECC_POINT>;
export const TPM2B_ECC_POINT = sized('TPM2B_ECC_POINT', TPMS_ECC_POINT);

/**
 * TPMT_SYM_DEF_OBJECT (Part 2 §11.1.7) and TPMT_SYM_DEF (§11.1.6), flattened: algorithm NULL
 * carries no keyBits or mode (they read as 0); XOR (TPMT_SYM_DEF only) carries a hash in keyBits.
 */
export interface SymDef {
  algorithm: number;
  keyBits: number;
  mode: number;
}
function symDef(name: string, allowXor: boolean): Codec<SymDef> {
  return {
    name,
    read(r) {
      const algorithm = r.u16();
      if (algorithm === A.NULL) return { algorithm, keyBits: 0, mode: 0 };
      if (algorithm === A.AES) {
        const keyBits = r.u16();
        if (keyBits !== 128 && keyBits !== 192 && keyBits !== 256) {
          throw new WireError(TPM_RC.KEY_SIZE, `${name}: AES key size ${keyBits}`);
        }
        const mode = r.u16();
        if (mode !== A.CFB && mode !== A.NULL)
          throw new WireError(TPM_RC.MODE, `${name}: mode 0x${mode.toString(16)}`);
        return { algorithm, keyBits, mode };
      }
      if (allowXor && algorithm === A.XOR) {
        const keyBits = algHash.read(r);
        return { algorithm, keyBits, mode: 0 };
      }
      throw new WireError(TPM_RC.SYMMETRIC, `${name}: algorithm 0x${algorithm.toString(16)}`);
    },
    write(w, v) {
      w.u16(v.algorithm);
      if (v.algorithm === A.NULL) return;
      w.u16(v.keyBits);
      if (v.algorithm !== A.XOR) w.u16(v.mode);
    },
  };
}
export const TPMT_SYM_DEF_OBJECT = symDef('TPMT_SYM_DEF_OBJECT', false);
export const TPMT_SYM_DEF = symDef('TPMT_SYM_DEF', true);
export const SYM_NULL: SymDef = { algorithm: A.NULL, keyBits: 0, mode: 0 };

/**
 * A scheme with an optional hash, flattened: `{ scheme, hashAlg }`, where schemes that take no
 * hash (NULL, RSAES) read hashAlg as TPM_ALG_NULL. XOR (keyedHash) also carries a KDF.
 * Covers TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KEYEDHASH_SCHEME, TPMT_SIG_SCHEME, TPMT_KDF_SCHEME,
 * TPMT_RSA_DECRYPT (Part 2 §11.2).
 */
export interface Scheme {
  scheme: number;
  hashAlg: number;
  kdf?: number;
}
function scheme(
  name: string,
  withHash: readonly number[],
  withoutHash: readonly number[],
  rc: number,
): Codec<Scheme> {
  const hashed = new Set(withHash);
  const bare = new Set([A.NULL, ...withoutHash]);
  return {
    name,
    read(r) {
      const s = r.u16();
      if (bare.has(s)) return { scheme: s, hashAlg: A.NULL };
      if (!hashed.has(s)) throw new WireError(rc, `${name}: scheme 0x${s.toString(16)}`);
      const hashAlg = algHash.read(r);
      if (s === A.XOR) {
        const kdf = r.u16();
        if (kdf !== A.KDF1_SP800_108 && kdf !== A.NULL)
          throw new WireError(TPM_RC.KDF, `${name}: kdf`);
        return { scheme: s, hashAlg, kdf };
      }
      return { scheme: s, hashAlg };
    },
    write(w, v) {
      w.u16(v.scheme);
      if (bare.has(v.scheme)) return;
      w.u16(v.hashAlg);
      if (v.scheme === A.XOR) w.u16(v.kdf ?? A.KDF1_SP800_108);
    },
  };
}
export const TPMT_RSA_SCHEME = scheme(
  'TPMT_RSA_SCHEME',
  [A.RSASSA, A.RSAPSS, A.OAEP],
  [A.RSAES],
  TPM_RC.SCHEME,
);
export const TPMT_RSA_DECRYPT = scheme('TPMT_RSA_DECRYPT', [A.OAEP], [A.RSAES], TPM_RC.SCHEME);
export const TPMT_ECC_SCHEME = scheme('TPMT_ECC_SCHEME', [A.ECDSA, A.ECDH], [], TPM_RC.SCHEME);
export const TPMT_KEYEDHASH_SCHEME = scheme(
  'TPMT_KEYEDHASH_SCHEME',
  [A.HMAC, A.XOR],
  [],
  TPM_RC.SCHEME,
);
export const TPMT_SIG_SCHEME = scheme(
  'TPMT_SIG_SCHEME',
  [A.RSASSA, A.RSAPSS, A.ECDSA, A.HMAC],
  [],
  TPM_RC.SCHEME,
);
export const TPMT_KDF_SCHEME = scheme(
  'TPMT_KDF_SCHEME',
  [A.KDF1_SP800_56A, A.KDF1_SP800_108],
  [],
  TPM_RC.KDF,
);
export const SCHEME_NULL: Scheme = { scheme: A.NULL, hashAlg: A.NULL };

/** TPMS_RSA_PARMS (Part 2 §12.2.3.5). */
export const TPMS_RSA_PARMS = struct('TPMS_RSA_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_RSA_SCHEME,
  keyBits: oneOf('TPMI_RSA_KEY_BITS', u16, [1024, 2048, 3072, 4096], TPM_RC.VALUE),
  exponent: u32,
});
export type RsaParms = Decoded<typeof TPMS_RSA_PARMS>;
/** TPMS_ECC_PARMS (Part 2 §12.2.3.6). */
export const TPMS_ECC_PARMS = struct('TPMS_ECC_PARMS', {
  symmetric: TPMT_SYM_DEF_OBJECT,
  scheme: TPMT_ECC_SCHEME,
  curveID: eccCurve,
  kdf: TPMT_KDF_SCHEME,
});
export type EccParms = Decoded<typeof TPMS_ECC_PARMS>;
/** TPMS_KEYEDHASH_PARMS (Part 2 §12.2.3.3). */
export const TPMS_KEYEDHASH_PARMS = struct('TPMS_KEYEDHASH_PARMS', {
  scheme: TPMT_KEYEDHASH_SCHEME,
});
export type KeyedHashParms = Decoded<typeof TPMS_KEYEDHASH_PARMS>;
/** TPMS_SYMCIPHER_PARMS (Part 2 §12.2.3.2). */
export const TPMS_SYMCIPHER_PARMS = struct('TPMS_SYMCIPHER_PARMS', { sym: TPMT_SYM_DEF_OBJECT });
export type SymCipherParms = Decoded<typeof TPMS_SYMCIPHER_PARMS>;

export type PublicParms = RsaParms | EccParms | KeyedHashParms | SymCipherParms;
export type PublicId = Buffer | EccPoint;

/** TPMU_PUBLIC_PARMS selected by type (Part 2 §12.2.3.7). */
export const PUBLIC_PARMS = dependent<PublicParms>(
  'TPMU_PUBLIC_PARMS',
  'type',
  {
    [A.RSA]: TPMS_RSA_PARMS,
    [A.ECC]: TPMS_ECC_PARMS,
    [A.KEYEDHASH]: TPMS_KEYEDHASH_PARMS,
    [A.SYMCIPHER]: TPMS_SYMCIPHER_PARMS,
  },
  TPM_RC.TYPE,
);
/** TPMU_PUBLIC_ID selected by type (Part 2 §12.2.3.2). */
export const PUBLIC_ID = dependent<PublicId>(
  'TPMU_PUBLIC_ID',
  'type',
  {
    [A.RSA]: TPM2B_PUBLIC_KEY_RSA,
    [A.ECC]: TPMS_ECC_POINT as Codec<PublicId>,
    [A.KEYEDHASH]: TPM2B_DIGEST,
    [A.SYMCIPHER]: TPM2B_DIGEST,
  },
  TPM_RC.TYPE,
);

/** TPMT_PUBLIC (Part 2 §12.2.4, Table 191). */
export interface Public {
  type: number;
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Buffer;
  parameters: PublicParms;
  unique: PublicId;
}
export const TPMT_PUBLIC: Codec<Public> = struct('TPMT_PUBLIC', {
  type: algPublic,
  nameAlg: algHashOrNull,
  objectAttributes: u32,
  authPolicy: TPM2B_DIGEST,
  parameters: PUBLIC_PARMS,
  unique: PUBLIC_ID,
});
export const TPM2B_PUBLIC = sized('TPM2B_PUBLIC', TPMT_PUBLIC);

/** TPMT_SENSITIVE (Part 2 §12.3.2.4, Table 196). */
export interface Sensitive {
  sensitiveType: number;
  authValue: Buffer;
  seedValue: Buffer;
  sensitive: Buffer;
}
export const TPMT_SENSITIVE: Codec<Sensitive> = struct('TPMT_SENSITIVE', {
  sensitiveType: algPublic,
  authValue: TPM2B_AUTH,
  seedValue: TPM2B_DIGEST,
  sensitive: dependent<Buffer>(
    'TPMU_SENSITIVE_COMPOSITE',
    'sensitiveType',
    {
      [A.RSA]: TPM2B_PRIVATE_KEY_RSA,
      [A.ECC]: TPM2B_ECC_PARAMETER,
      [A.KEYEDHASH]: TPM2B_SENSITIVE_DATA,
      [A.SYMCIPHER]: TPM2B_SYM_KEY,
    },
    TPM_RC.TYPE,
  ),
});
export const TPM2B_SENSITIVE = sized('TPM2B_SENSITIVE', TPMT_SENSITIVE, { optional: true });

/** TPMS_SENSITIVE_CREATE (Part 2 §11.1.15). */
export const TPMS_SENSITIVE_CREATE = struct('TPMS_SENSITIVE_CREATE', {
  userAuth: TPM2B_AUTH,
  data: TPM2B_SENSITIVE_DATA,
});
export type SensitiveCreate = Decoded<typeof TPMS_SENSITIVE_CREATE>;
export const TPM2B_SENSITIVE_CREATE = sized('TPM2B_SENSITIVE_CREATE', TPMS_SENSITIVE_CREATE);

/** A u8-sized byte array of min..max bytes (TPMS_PCR_SELECTION.pcrSelect, Part 2 §10.6.2). */
function bytes8(name: string, min: number, max: number): Codec<Buffer> {
  return {
    name,
    read(r: Reader) {
      const n = r.u8();
      if (n < min || n > max)
        throw new WireError(TPM_RC.VALUE, `${name}: ${n} bytes, not ${min}..${max}`);
      return r.bytes(n);
    },
    write(w: Writer, v: Buffer) {
      w.u8(v.length);
      w.bytes(v);
    },
  };
}
/**
 * TPMS_PCR_SELECTION (Part 2 §10.6.2). sizeofSelect must lie between PCR_SELECT_MIN and
 * PCR_SELECT_MAX, both 3 for 24 PCRs (as in libtpms: TPM_RC_VALUE otherwise).
 */
export const TPMS_PCR_SELECTION = struct('TPMS_PCR_SELECTION', {
  hash: algHash,
  pcrSelect: bytes8('pcrSelect', 3, 3),
});
export type PcrSelection = Decoded<typeof TPMS_PCR_SELECTION>;
/** TPML_PCR_SELECTION (Part 2 §10.9.7); HASH_COUNT is 4 here. */
export const TPML_PCR_SELECTION = list('TPML_PCR_SELECTION', TPMS_PCR_SELECTION, 4);

/** TPMT_HA (Part 2 §10.3.2): a hash algorithm and a digest of exactly its size. */
export interface Ha {
  hashAlg: number;
  digest: Buffer;
}
export const TPMT_HA: Codec<Ha> = {
  name: 'TPMT_HA',
  read(r) {
    const hashAlg = algHash.read(r);
    return { hashAlg, digest: r.bytes(DIGEST_SIZE[hashAlg]!) };
  },
  write(w, v) {
    w.u16(v.hashAlg);
    w.bytes(v.digest);
  },
};

/** TPMS_SIGNATURE_RSA and TPMS_SIGNATURE_ECC (Part 2 §11.3.1-2). */
export const TPMS_SIGNATURE_RSA = struct('TPMS_SIGNATURE_RSA', {
  hash: algHash,
  sig: TPM2B_PUBLIC_KEY_RSA,
});
export const TPMS_SIGNATURE_ECC = struct('TPMS_SIGNATURE_ECC', {
  hash: algHash,
  signatureR: TPM2B_ECC_PARAMETER,
  signatureS: TPM2B_ECC_PARAMETER,
});
export type SignatureRsa = Decoded<typeof TPMS_SIGNATURE_RSA>;
export type SignatureEcc = Decoded<typeof TPMS_SIGNATURE_ECC>;
export type SignatureBody = SignatureRsa | SignatureEcc | Ha | Record<string, never>;
/** TPMT_SIGNATURE (Part 2 §11.3.4). */
export const TPMT_SIGNATURE = struct('TPMT_SIGNATURE', {
  sigAlg: u16,
  signature: dependent<SignatureBody>(
    'TPMU_SIGNATURE',
    'sigAlg',
    {
      [A.RSASSA]: TPMS_SIGNATURE_RSA,
      [A.RSAPSS]: TPMS_SIGNATURE_RSA,
      [A.ECDSA]: TPMS_SIGNATURE_ECC,
      [A.HMAC]: TPMT_HA,
      [A.NULL]: empty,
    },
    TPM_RC.SCHEME,
  ),
});
export type Signature = Decoded<typeof TPMT_SIGNATURE>;

/** Tickets (Part 2 §10.7): TPMT_TK_CREATION, _VERIFIED, _HASHCHECK share one shape. */
export const TPMT_TK = struct('TPMT_TK', { tag: u16, hierarchy: u32, digest: TPM2B_DIGEST });
export type Ticket = Decoded<typeof TPMT_TK>;

/** TPMS_CREATION_DATA (Part 2 §15.1). */
export const TPMS_CREATION_DATA = struct('TPMS_CREATION_DATA', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
  locality: u8,
  parentNameAlg: u16,
  parentName: TPM2B_NAME,
  parentQualifiedName: TPM2B_NAME,
  outsideInfo: TPM2B_DATA,
});
export type CreationData = Decoded<typeof TPMS_CREATION_DATA>;
export const TPM2B_CREATION_DATA = sized('TPM2B_CREATION_DATA', TPMS_CREATION_DATA);

/** TPMS_CONTEXT (Part 2 §14.5). */
export const TPMS_CONTEXT = struct('TPMS_CONTEXT', {
  sequence: u64,
  savedHandle: u32,
  hierarchy: u32,
  contextBlob: TPM2B_CONTEXT_DATA,
});
export type Context = Decoded<typeof TPMS_CONTEXT>;

/** Capability data (Part 2 §10.10): one list type per capability. */
export const TPMS_ALG_PROPERTY = struct('TPMS_ALG_PROPERTY', { alg: u16, algProperties: u32 });
export const TPMS_TAGGED_PROPERTY = struct('TPMS_TAGGED_PROPERTY', { property: u32, value: u32 });
export type CapabilityList =
  | Decoded<typeof TPMS_ALG_PROPERTY>[]
  | Decoded<typeof TPMS_TAGGED_PROPERTY>[]
  | PcrSelection[]
  | number[];
export const TPMS_CAPABILITY_DATA = struct('TPMS_CAPABILITY_DATA', {
  capability: u32,
  data: dependent<CapabilityList>(
    'TPMU_CAPABILITIES',
    'capability',
    {
      [TPM_CAP.ALGS]: list('TPML_ALG_PROPERTY', TPMS_ALG_PROPERTY, 169) as Codec<CapabilityList>,
      [TPM_CAP.HANDLES]: list('TPML_HANDLE', u32, 254) as Codec<CapabilityList>,
      [TPM_CAP.COMMANDS]: list('TPML_CCA', u32, 256) as Codec<CapabilityList>,
      [TPM_CAP.PP_COMMANDS]: list('TPML_CC', u32, 256) as Codec<CapabilityList>,
      [TPM_CAP.AUDIT_COMMANDS]: list('TPML_CC', u32, 256) as Codec<CapabilityList>,
      [TPM_CAP.PCRS]: TPML_PCR_SELECTION as Codec<CapabilityList>,
      [TPM_CAP.TPM_PROPERTIES]: list(
        'TPML_TAGGED_TPM_PROPERTY',
        TPMS_TAGGED_PROPERTY,
        127,
      ) as Codec<CapabilityList>,
      [TPM_CAP.ECC_CURVES]: list('TPML_ECC_CURVE', u16, 508) as Codec<CapabilityList>,
    },
    TPM_RC.VALUE,
  ),
});
export type CapabilityData = Decoded<typeof TPMS_CAPABILITY_DATA>;

/** A NULL ticket: what a TPM returns or accepts when no ticket applies (Part 2 §10.7.5). */
export function nullTicket(tag: number = TPM_ST.HASHCHECK): Ticket {
  return { tag, hierarchy: 0x40000007, digest: Buffer.alloc(0) };
}

/** TPML_DIGEST (Part 2 §10.9.3): at most 8. */
export const TPML_DIGEST = list('TPML_DIGEST', TPM2B_DIGEST, 8);

/** TPML_DIGEST_VALUES (Part 2 §10.9.5): one TPMT_HA per bank, at most HASH_COUNT. */
export const TPML_DIGEST_VALUES = list('TPML_DIGEST_VALUES', TPMT_HA, HASH_ALGS.length);

/** TPMS_CLOCK_INFO (Part 2 §10.11.1). */
export const TPMS_CLOCK_INFO = struct('TPMS_CLOCK_INFO', {
  clock: u64,
  resetCount: u32,
  restartCount: u32,
  safe: u8,
});
export type ClockInfo = Decoded<typeof TPMS_CLOCK_INFO>;

/** TPMS_TIME_INFO (Part 2 §10.11.6). */
export const TPMS_TIME_INFO = struct('TPMS_TIME_INFO', { time: u64, clockInfo: TPMS_CLOCK_INFO });

/** TPMS_CERTIFY_INFO (Part 2 §10.12.3). */
export const TPMS_CERTIFY_INFO = struct('TPMS_CERTIFY_INFO', {
  name: TPM2B_NAME,
  qualifiedName: TPM2B_NAME,
});
export type CertifyInfo = Decoded<typeof TPMS_CERTIFY_INFO>;

/** TPMS_QUOTE_INFO (Part 2 §10.12.4). */
export const TPMS_QUOTE_INFO = struct('TPMS_QUOTE_INFO', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
});
export type QuoteInfo = Decoded<typeof TPMS_QUOTE_INFO>;

/**
 * TPMS_ATTEST (Part 2 §10.12.12): what TPM2_Certify and TPM2_Quote sign. magic is
 * TPM_GENERATED_VALUE; `attested` is the TPMU_ATTEST arm `type` selects (Part 2 §10.12.11).
 */
export const TPMS_ATTEST = struct('TPMS_ATTEST', {
  magic: u32,
  type: u16,
  qualifiedSigner: TPM2B_NAME,
  extraData: TPM2B_DATA,
  clockInfo: TPMS_CLOCK_INFO,
  firmwareVersion: u64,
  attested: dependent<CertifyInfo | QuoteInfo>(
    'TPMU_ATTEST',
    'type',
    { [TPM_ST.ATTEST_CERTIFY]: TPMS_CERTIFY_INFO, [TPM_ST.ATTEST_QUOTE]: TPMS_QUOTE_INFO },
    TPM_RC.SELECTOR,
  ),
});
export type Attest = Decoded<typeof TPMS_ATTEST>;

/** TPMS_NV_PUBLIC (Part 2 §13.5): an NV index's public area; its Name is over these bytes. */
export const TPMS_NV_PUBLIC = struct('TPMS_NV_PUBLIC', {
  nvIndex: nvIndexHandle,
  nameAlg: algHash,
  attributes: u32,
  authPolicy: TPM2B_DIGEST,
  dataSize: u16,
});
export type NvPublic = Decoded<typeof TPMS_NV_PUBLIC>;
/** TPM2B_NV_PUBLIC (Part 2 §13.6). */
export const TPM2B_NV_PUBLIC = sized('TPM2B_NV_PUBLIC', TPMS_NV_PUBLIC);

/**
 * TPM2B_TEMPLATE (Part 2 §12.2.6): the bytes of a TPMT_PUBLIC (or, under a derivation parent, a
 * TPMT_TEMPLATE). It arrives as bytes: TPM2_CreateLoaded parses it itself, after it has made
 * sure there is room for the object, as libtpms does.
 */
export const TPM2B_TEMPLATE = tpm2b('TPM2B_TEMPLATE', 1024);
