/**
 * TPM 2.0 constants used on the wire. Values and names follow TCG TPM 2.0 Library Part 2
 * ("Structures"); section numbers are from revision 1.59.
 */

/** Part 2 §6.9 TPM_ST: structure tags. */
export const TPM_ST = {
  RSP_COMMAND: 0x00c4,
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_CREATION: 0x801a,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  AUTH_SECRET: 0x8023,
  HASHCHECK: 0x8024,
  AUTH_SIGNED: 0x8025,
} as const;

/** Part 2 §6.5.2 TPM_CC: the command codes this TPM knows. */
export const TPM_CC = {
  EvictControl: 0x0120,
  NV_UndefineSpace: 0x0122,
  HierarchyChangeAuth: 0x0129,
  NV_DefineSpace: 0x012a,
  CreatePrimary: 0x0131,
  NV_Write: 0x0137,
  Startup: 0x0144,
  Shutdown: 0x0145,
  Certify: 0x0148,
  NV_Read: 0x014e,
  PolicySecret: 0x0151,
  Create: 0x0153,
  HMAC: 0x0155,
  Import: 0x0156,
  Load: 0x0157,
  Quote: 0x0158,
  RSA_Decrypt: 0x0159,
  Sign: 0x015d,
  Unseal: 0x015e,
  ContextLoad: 0x0161,
  ContextSave: 0x0162,
  FlushContext: 0x0165,
  LoadExternal: 0x0167,
  NV_ReadPublic: 0x0169,
  ReadPublic: 0x0173,
  RSA_Encrypt: 0x0174,
  StartAuthSession: 0x0176,
  VerifySignature: 0x0177,
  GetCapability: 0x017a,
  GetRandom: 0x017b,
  Hash: 0x017d,
  PCR_Read: 0x017e,
  ReadClock: 0x0181,
  PCR_Extend: 0x0182,
  PolicyGetDigest: 0x0189,
  TestParms: 0x018a,
  CreateLoaded: 0x0191,
} as const;

/** Part 2 §6.3 TPM_ALG_ID. */
export const TPM_ALG = {
  ERROR: 0x0000,
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  KDF1_SP800_56A: 0x0020,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** Part 2 §6.4 TPM_ECC_CURVE. */
export const TPM_ECC_CURVE = {
  NONE: 0x0000,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
} as const;

/** Part 2 §7.2 TPM_HT: the handle type is the top byte of a handle. */
export const TPM_HT = {
  PCR: 0x00,
  NV_INDEX: 0x01,
  HMAC_SESSION: 0x02,
  POLICY_SESSION: 0x03,
  PERMANENT: 0x40,
  TRANSIENT: 0x80,
  PERSISTENT: 0x81,
} as const;

/** Part 2 §7.4 TPM_RH: permanent handles. */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** Part 2 §7.5 handle ranges this TPM hands out. */
export const HANDLE_RANGE = {
  TRANSIENT_FIRST: 0x80000000,
  PERSISTENT_FIRST: 0x81000000,
  PERSISTENT_LAST: 0x81ffffff,
  /** Persistent handles owned by the owner hierarchy (Part 2 §7.5, "Owner" range). */
  PERSISTENT_OWNER_LAST: 0x817fffff,
  /** The platform hierarchy's persistent range. */
  PERSISTENT_PLATFORM_FIRST: 0x81800000,
  /** NV indexes (Part 2 §7.5 TPM_HT_NV_INDEX): 0x01000000-0x01FFFFFF. */
  NV_INDEX_FIRST: 0x01000000,
  NV_INDEX_LAST: 0x01ffffff,
  HMAC_SESSION_FIRST: 0x02000000,
  POLICY_SESSION_FIRST: 0x03000000,
} as const;

/** Part 2 §8.3 TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 0x00000002,
  stClear: 0x00000004,
  fixedParent: 0x00000010,
  sensitiveDataOrigin: 0x00000020,
  userWithAuth: 0x00000040,
  adminWithPolicy: 0x00000080,
  noDA: 0x00000400,
  encryptedDuplication: 0x00000800,
  restricted: 0x00010000,
  decrypt: 0x00020000,
  sign: 0x00040000,
  /** Bits the spec reserves: 0, 3, 8, 9, 12-15, 19-31 must be clear (Part 2 §8.3.2). */
  reserved: 0xfff8f309,
} as const;

/**
 * Part 2 §13.4 TPMA_NV bits. TPM_NT (the index type) is the 4-bit field at bits 4-7; the other
 * bits name who may read and write, locks and state.
 */
export const TPMA_NV = {
  PPWRITE: 0x00000001,
  OWNERWRITE: 0x00000002,
  AUTHWRITE: 0x00000004,
  POLICYWRITE: 0x00000008,
  /** TPM_NT field mask and shift (Part 2 §13.2). */
  TPM_NT_MASK: 0x000000f0,
  TPM_NT_SHIFT: 4,
  POLICY_DELETE: 0x00000400,
  WRITELOCKED: 0x00000800,
  WRITEALL: 0x00001000,
  WRITEDEFINE: 0x00002000,
  WRITE_STCLEAR: 0x00004000,
  GLOBALLOCK: 0x00008000,
  PPREAD: 0x00010000,
  OWNERREAD: 0x00020000,
  AUTHREAD: 0x00040000,
  POLICYREAD: 0x00080000,
  NO_DA: 0x02000000,
  ORDERLY: 0x04000000,
  CLEAR_STCLEAR: 0x08000000,
  READLOCKED: 0x10000000,
  WRITTEN: 0x20000000,
  PLATFORMCREATE: 0x40000000,
  READ_STCLEAR: 0x80000000,
  /** Bits 8-9 and 20-24 are reserved (Part 2 §13.4, Table 233). */
  reserved: 0x01f00300,
} as const;

/** Part 2 §13.2 TPM_NT: the kind of an NV index. */
export const TPM_NT = {
  ORDINARY: 0x0,
  COUNTER: 0x1,
  BITS: 0x2,
  EXTEND: 0x4,
  PIN_FAIL: 0x8,
  PIN_PASS: 0x9,
} as const;

/** Part 2 §8.4 TPMA_SESSION bits. */
export const TPMA_SESSION = {
  continueSession: 0x01,
  auditExclusive: 0x02,
  auditReset: 0x04,
  decrypt: 0x20,
  encrypt: 0x40,
  audit: 0x80,
  reserved: 0x18,
} as const;

/** Part 2 §6.11 TPM_SE: session types. */
export const TPM_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** Part 2 §6.5 TPM_SU: startup and shutdown types. */
export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;

/** Part 2 §6.12 TPM_CAP. */
export const TPM_CAP = {
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  COMMANDS: 0x00000002,
  PP_COMMANDS: 0x00000003,
  AUDIT_COMMANDS: 0x00000004,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
  PCR_PROPERTIES: 0x00000007,
  ECC_CURVES: 0x00000008,
} as const;

/** Part 2 §6.13 TPM_PT: fixed (PT_FIXED = 0x100) and variable (PT_VAR = 0x200) properties. */
export const TPM_PT = {
  FIXED: 0x100,
  FAMILY_INDICATOR: 0x100,
  LEVEL: 0x101,
  REVISION: 0x102,
  DAY_OF_YEAR: 0x103,
  YEAR: 0x104,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  VENDOR_STRING_3: 0x108,
  VENDOR_STRING_4: 0x109,
  VENDOR_TPM_TYPE: 0x10a,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  HR_TRANSIENT_MIN: 0x10e,
  HR_PERSISTENT_MIN: 0x10f,
  HR_LOADED_MIN: 0x110,
  ACTIVE_SESSIONS_MAX: 0x111,
  PCR_COUNT: 0x112,
  PCR_SELECT_MIN: 0x113,
  CONTEXT_GAP_MAX: 0x114,
  NV_COUNTERS_MAX: 0x116,
  NV_INDEX_MAX: 0x117,
  MEMORY: 0x118,
  CLOCK_UPDATE: 0x119,
  CONTEXT_HASH: 0x11a,
  CONTEXT_SYM: 0x11b,
  CONTEXT_SYM_SIZE: 0x11c,
  ORDERLY_COUNT: 0x11d,
  MAX_COMMAND_SIZE: 0x11e,
  MAX_RESPONSE_SIZE: 0x11f,
  MAX_DIGEST: 0x120,
  MAX_OBJECT_CONTEXT: 0x121,
  MAX_SESSION_CONTEXT: 0x122,
  PS_FAMILY_INDICATOR: 0x123,
  PS_LEVEL: 0x124,
  PS_REVISION: 0x125,
  PS_DAY_OF_YEAR: 0x126,
  PS_YEAR: 0x127,
  SPLIT_MAX: 0x128,
  TOTAL_COMMANDS: 0x129,
  LIBRARY_COMMANDS: 0x12a,
  VENDOR_COMMANDS: 0x12b,
  NV_BUFFER_MAX: 0x12c,
  MODES: 0x12d,
  MAX_CAP_BUFFER: 0x12e,
  VAR: 0x200,
  PERMANENT: 0x200,
  STARTUP_CLEAR: 0x201,
  HR_NV_INDEX: 0x202,
  HR_LOADED: 0x203,
  HR_LOADED_AVAIL: 0x204,
  HR_ACTIVE: 0x205,
  HR_ACTIVE_AVAIL: 0x206,
  HR_TRANSIENT_AVAIL: 0x207,
  HR_PERSISTENT: 0x208,
  HR_PERSISTENT_AVAIL: 0x209,
  NV_COUNTERS: 0x20a,
  NV_COUNTERS_AVAIL: 0x20b,
  ALGORITHM_SET: 0x20c,
  LOADED_CURVES: 0x20d,
  LOCKOUT_COUNTER: 0x20e,
  MAX_AUTH_FAIL: 0x20f,
  LOCKOUT_INTERVAL: 0x210,
  LOCKOUT_RECOVERY: 0x211,
  NV_WRITE_RECOVERY: 0x212,
  AUDIT_COUNTER_0: 0x213,
  AUDIT_COUNTER_1: 0x214,
} as const;

/** Part 2 §10.5 TPMA_ALGORITHM bits (for GetCapability(ALGS)). */
export const TPMA_ALGORITHM = {
  asymmetric: 0x01,
  symmetric: 0x02,
  hash: 0x04,
  object: 0x08,
  signing: 0x100,
  encrypting: 0x200,
  method: 0x400,
} as const;

/** TPM_GENERATED_VALUE (Part 2 §6.2): the first octets of every structure the TPM signs as its own. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** NV buffer and index sizes (TPM_PT_NV_BUFFER_MAX, TPM_PT_NV_INDEX_MAX), as swtpm reports them. */
export const NV_BUFFER_MAX = 1024;
export const NV_INDEX_MAX = 2048;

/** The largest command or response this TPM takes (like swtpm: TPM_PT_MAX_COMMAND_SIZE). */
export const MAX_COMMAND_SIZE = 4096;
export const MAX_RESPONSE_SIZE = 4096;
