/**
 * TPM_RC response codes (Part 2 §6.6, Table 16) and how a format-one code names the handle,
 * session or parameter at fault (Part 2 §6.6.2).
 */

const VER1 = 0x100;
const FMT1 = 0x080;
const WARN = 0x900;

/** Response codes, with their format-one base values (error number + 0x080) unnumbered. */
export const TPM_RC = {
  SUCCESS: 0x000,
  BAD_TAG: 0x01e,
  // Format-zero errors (TPM_RC_VER1 + e).
  INITIALIZE: VER1 + 0x000,
  FAILURE: VER1 + 0x001,
  SEQUENCE: VER1 + 0x003,
  DISABLED: VER1 + 0x020,
  EXCLUSIVE: VER1 + 0x021,
  AUTH_TYPE: VER1 + 0x024,
  AUTH_MISSING: VER1 + 0x025,
  POLICY: VER1 + 0x026,
  PCR: VER1 + 0x027,
  PCR_CHANGED: VER1 + 0x028,
  UPGRADE: VER1 + 0x02d,
  TOO_MANY_CONTEXTS: VER1 + 0x02e,
  AUTH_UNAVAILABLE: VER1 + 0x02f,
  REBOOT: VER1 + 0x030,
  UNBALANCED: VER1 + 0x031,
  COMMAND_SIZE: VER1 + 0x042,
  COMMAND_CODE: VER1 + 0x043,
  AUTHSIZE: VER1 + 0x044,
  AUTH_CONTEXT: VER1 + 0x045,
  NV_RANGE: VER1 + 0x046,
  NV_SIZE: VER1 + 0x047,
  NV_LOCKED: VER1 + 0x048,
  NV_AUTHORIZATION: VER1 + 0x049,
  NV_UNINITIALIZED: VER1 + 0x04a,
  NV_SPACE: VER1 + 0x04b,
  NV_DEFINED: VER1 + 0x04c,
  BAD_CONTEXT: VER1 + 0x050,
  CPHASH: VER1 + 0x051,
  PARENT: VER1 + 0x052,
  NEEDS_TEST: VER1 + 0x053,
  NO_RESULT: VER1 + 0x054,
  SENSITIVE: VER1 + 0x055,
  // Format-one errors (TPM_RC_FMT1 + e); add P/H/S and a number with rcParam/rcHandle/rcSession.
  ASYMMETRIC: FMT1 + 0x001,
  ATTRIBUTES: FMT1 + 0x002,
  HASH: FMT1 + 0x003,
  VALUE: FMT1 + 0x004,
  HIERARCHY: FMT1 + 0x005,
  KEY_SIZE: FMT1 + 0x007,
  MGF: FMT1 + 0x008,
  MODE: FMT1 + 0x009,
  TYPE: FMT1 + 0x00a,
  HANDLE: FMT1 + 0x00b,
  KDF: FMT1 + 0x00c,
  RANGE: FMT1 + 0x00d,
  AUTH_FAIL: FMT1 + 0x00e,
  NONCE: FMT1 + 0x00f,
  PP: FMT1 + 0x010,
  SCHEME: FMT1 + 0x012,
  SIZE: FMT1 + 0x015,
  SYMMETRIC: FMT1 + 0x016,
  TAG: FMT1 + 0x017,
  SELECTOR: FMT1 + 0x018,
  INSUFFICIENT: FMT1 + 0x01a,
  SIGNATURE: FMT1 + 0x01b,
  KEY: FMT1 + 0x01c,
  POLICY_FAIL: FMT1 + 0x01d,
  INTEGRITY: FMT1 + 0x01f,
  TICKET: FMT1 + 0x020,
  RESERVED_BITS: FMT1 + 0x021,
  BAD_AUTH: FMT1 + 0x022,
  EXPIRED: FMT1 + 0x023,
  POLICY_CC: FMT1 + 0x024,
  BINDING: FMT1 + 0x025,
  CURVE: FMT1 + 0x026,
  ECC_POINT: FMT1 + 0x027,
  // Warnings (TPM_RC_WARN + e).
  CONTEXT_GAP: WARN + 0x001,
  OBJECT_MEMORY: WARN + 0x002,
  SESSION_MEMORY: WARN + 0x003,
  MEMORY: WARN + 0x004,
  SESSION_HANDLES: WARN + 0x005,
  OBJECT_HANDLES: WARN + 0x006,
  LOCALITY: WARN + 0x007,
  YIELDED: WARN + 0x008,
  CANCELED: WARN + 0x009,
  TESTING: WARN + 0x00a,
  REFERENCE_H0: WARN + 0x010,
  REFERENCE_S0: WARN + 0x018,
  NV_RATE: WARN + 0x020,
  LOCKOUT: WARN + 0x021,
  RETRY: WARN + 0x022,
  NV_UNAVAILABLE: WARN + 0x023,
} as const;

const RC_P = 0x040;
const RC_S = 0x800;

/** Format-one code naming parameter n (1..15). */
export function rcParam(base: number, n: number): number {
  return base | RC_P | ((n & 0xf) << 8);
}

/** Format-one code naming handle n (1..7). */
export function rcHandle(base: number, n: number): number {
  return base | ((n & 0x7) << 8);
}

/** Format-one code naming session n (1..7). */
export function rcSession(base: number, n: number): number {
  return base | RC_S | ((n & 0x7) << 8);
}

const NAMES = new Map<number, string>(
  Object.entries(TPM_RC).map(([name, value]) => [value, `TPM_RC_${name}`]),
);

/** A readable form of a response code: `TPM_RC_INTEGRITY (parameter 1)`, `TPM_RC_RETRY`, ... */
export function describeRc(rc: number): string {
  if (rc === 0) return 'TPM_RC_SUCCESS';
  if (rc & FMT1) {
    const base = rc & 0xbf;
    const name = NAMES.get(base) ?? `format-one error 0x${base.toString(16)}`;
    if (rc & RC_P) return `${name} (parameter ${(rc >> 8) & 0xf})`;
    const n = (rc >> 8) & 0x7;
    if (rc & RC_S) return `${name} (session ${n})`;
    return n ? `${name} (handle ${n})` : name;
  }
  const name = NAMES.get(rc);
  if (name) return name;
  if (rc >= WARN && rc < WARN + 0x100) {
    if (rc >= TPM_RC.REFERENCE_H0 && rc < TPM_RC.REFERENCE_H0 + 7)
      return `TPM_RC_REFERENCE_H${rc - TPM_RC.REFERENCE_H0}`;
    if (rc >= TPM_RC.REFERENCE_S0 && rc < TPM_RC.REFERENCE_S0 + 7)
      return `TPM_RC_REFERENCE_S${rc - TPM_RC.REFERENCE_S0}`;
  }
  return `TPM response code 0x${rc.toString(16).padStart(3, '0')}`;
}

/** The code without its handle, session or parameter number, for comparisons. */
export function rcBase(rc: number): number {
  return rc & FMT1 ? rc & 0xbf : rc;
}
