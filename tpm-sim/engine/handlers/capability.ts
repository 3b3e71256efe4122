/** GetCapability (Part 3 §30.2) and TestParms (§30.3): what this TPM says about itself. */
import { COMMANDS } from '../../wire/commands.ts';
import {
  TPMA_ALGORITHM as AA,
  HANDLE_RANGE,
  MAX_COMMAND_SIZE,
  MAX_RESPONSE_SIZE,
  NV_BUFFER_MAX,
  NV_INDEX_MAX,
  TPM_ALG,
  TPM_CAP,
  TPM_CC,
  TPM_ECC_CURVE,
  TPM_HT,
  TPM_PT,
  TPM_RH,
} from '../../wire/constants.ts';
import { rcParam, TPM_RC } from '../../wire/rc.ts';
import type { CapabilityList } from '../../wire/structures.ts';
import type { Handler } from '../handler.ts';
import {
  chars4,
  FIRMWARE_VERSION_1,
  FIRMWARE_VERSION_2,
  TPM_MANUFACTURER,
  TPM_VENDOR_STRINGS,
} from '../identity.ts';
import { PCR_BANKS, PCR_COUNT, PCR_SELECT_BYTES } from '../pcr.ts';
import { RcError } from '../rc-error.ts';
import type { Tpm } from '../tpm.ts';

/** Part 2 §10.5 TPMA_ALGORITHM for each algorithm this TPM implements, in algorithm-id order. */
const ALGORITHMS: readonly [number, number][] = [
  [TPM_ALG.RSA, AA.asymmetric | AA.object],
  [TPM_ALG.SHA1, AA.hash],
  [TPM_ALG.HMAC, AA.hash | AA.signing],
  [TPM_ALG.AES, AA.symmetric],
  [TPM_ALG.KEYEDHASH, AA.hash | AA.object | AA.signing | AA.encrypting],
  [TPM_ALG.SHA256, AA.hash],
  [TPM_ALG.SHA384, AA.hash],
  [TPM_ALG.SHA512, AA.hash],
  [TPM_ALG.NULL, 0],
  [TPM_ALG.RSASSA, AA.asymmetric | AA.signing],
  [TPM_ALG.RSAES, AA.asymmetric | AA.encrypting],
  [TPM_ALG.RSAPSS, AA.asymmetric | AA.signing],
  [TPM_ALG.OAEP, AA.asymmetric | AA.encrypting],
  [TPM_ALG.ECDSA, AA.asymmetric | AA.signing],
  [TPM_ALG.ECDH, AA.asymmetric | AA.method],
  [TPM_ALG.KDF1_SP800_56A, AA.hash | AA.method],
  [TPM_ALG.KDF1_SP800_108, AA.hash | AA.method],
  [TPM_ALG.ECC, AA.asymmetric | AA.object],
  [TPM_ALG.SYMCIPHER, AA.object],
  [TPM_ALG.CFB, AA.symmetric | AA.encrypting],
];

const CURVES = [TPM_ECC_CURVE.NIST_P256, TPM_ECC_CURVE.NIST_P384];

/** Commands that write NV (TPMA_CC.nv, Part 2 §8.9): they persist state before they answer. */
const NV_COMMANDS = new Set<number>([
  TPM_CC.EvictControl,
  TPM_CC.HierarchyChangeAuth,
  TPM_CC.Shutdown,
  TPM_CC.NV_DefineSpace,
  TPM_CC.NV_UndefineSpace,
  TPM_CC.NV_Write,
]);

/** TPMA_CC for each implemented command (Part 2 §8.9): index, nv, flushed, cHandles, rHandle. */
function commandAttributes(implemented: ReadonlySet<string>): number[] {
  return Object.values(COMMANDS)
    .filter((c) => implemented.has(c.name))
    .map(
      (c) =>
        ((c.cc & 0xffff) |
          (NV_COMMANDS.has(c.cc) ? 1 << 22 : 0) |
          (c.cc === TPM_CC.FlushContext ? 1 << 24 : 0) |
          (c.handles.length << 25) |
          (c.responseHandles.length > 0 ? 1 << 28 : 0)) >>>
        0,
    )
    .sort((a, b) => (a & 0xffff) - (b & 0xffff));
}

/** Values match the release date of this TPM's spec level: revision 1.59 (Part 2 §6.13). */
function fixedProperties(tpm: Tpm, commandCount: number): [number, number][] {
  const P = TPM_PT;
  return [
    [P.FAMILY_INDICATOR, chars4('2.0')],
    [P.LEVEL, 0],
    [P.REVISION, 159],
    [P.DAY_OF_YEAR, 1],
    [P.YEAR, 2026],
    [P.MANUFACTURER, chars4(TPM_MANUFACTURER)],
    [P.VENDOR_STRING_1, chars4(TPM_VENDOR_STRINGS[0])],
    [P.VENDOR_STRING_2, chars4(TPM_VENDOR_STRINGS[1])],
    [P.VENDOR_STRING_3, chars4(TPM_VENDOR_STRINGS[2])],
    [P.VENDOR_STRING_4, chars4(TPM_VENDOR_STRINGS[3])],
    [P.VENDOR_TPM_TYPE, 1],
    [P.FIRMWARE_VERSION_1, FIRMWARE_VERSION_1],
    [P.FIRMWARE_VERSION_2, FIRMWARE_VERSION_2],
    [P.INPUT_BUFFER, 1024],
    [P.HR_TRANSIENT_MIN, tpm.limits.maxTransientObjects],
    [P.HR_PERSISTENT_MIN, tpm.limits.maxPersistentObjects],
    [P.HR_LOADED_MIN, tpm.limits.maxLoadedSessions],
    [P.ACTIVE_SESSIONS_MAX, tpm.limits.maxActiveSessions],
    [P.PCR_COUNT, PCR_COUNT],
    [P.PCR_SELECT_MIN, PCR_SELECT_BYTES],
    [P.CONTEXT_GAP_MAX, 0xffff],
    [P.NV_COUNTERS_MAX, 0],
    [P.NV_INDEX_MAX, NV_INDEX_MAX],
    [P.MEMORY, 0],
    [P.CLOCK_UPDATE, 0x1000],
    [P.CONTEXT_HASH, TPM_ALG.SHA256],
    [P.CONTEXT_SYM, TPM_ALG.AES],
    [P.CONTEXT_SYM_SIZE, 256],
    [P.ORDERLY_COUNT, 0xff],
    [P.MAX_COMMAND_SIZE, MAX_COMMAND_SIZE],
    [P.MAX_RESPONSE_SIZE, MAX_RESPONSE_SIZE],
    [P.MAX_DIGEST, 64],
    [P.MAX_OBJECT_CONTEXT, 4096],
    [P.MAX_SESSION_CONTEXT, 1024],
    [P.PS_FAMILY_INDICATOR, 1],
    [P.PS_LEVEL, 0],
    [P.PS_REVISION, 0x100],
    [P.PS_DAY_OF_YEAR, 0],
    [P.PS_YEAR, 0],
    [P.SPLIT_MAX, 128],
    [P.TOTAL_COMMANDS, commandCount],
    [P.LIBRARY_COMMANDS, commandCount],
    [P.VENDOR_COMMANDS, 0],
    [P.NV_BUFFER_MAX, NV_BUFFER_MAX],
    [P.MODES, 0],
    [P.MAX_CAP_BUFFER, 1024],
  ];
}

function variableProperties(tpm: Tpm): [number, number][] {
  const P = TPM_PT;
  const loaded = tpm.transient.filter((o) => o !== undefined).length;
  const free = tpm.limits.maxTransientObjects - loaded;
  const persistent = tpm.persistentObjects.size;
  // TPMA_PERMANENT (Part 2 §8.6): ownerAuthSet, endorsementAuthSet, lockoutAuthSet.
  const permanent =
    (tpm.state.owner.authValue.length ? 1 : 0) |
    (tpm.state.endorsement.authValue.length ? 2 : 0) |
    (tpm.state.lockoutAuth.length ? 4 : 0);
  return [
    [P.PERMANENT, permanent],
    // TPMA_STARTUP_CLEAR (Part 2 §8.7): phEnable, shEnable, ehEnable, phEnableNV all set.
    [P.STARTUP_CLEAR, 0x0000000f],
    [P.HR_NV_INDEX, tpm.state.nv.size],
    [P.HR_LOADED, loaded],
    [P.HR_LOADED_AVAIL, free],
    [P.HR_ACTIVE, tpm.sessions.size],
    [P.HR_ACTIVE_AVAIL, tpm.limits.maxActiveSessions - tpm.sessions.size],
    [P.HR_TRANSIENT_AVAIL, free],
    [P.HR_PERSISTENT, persistent],
    [P.HR_PERSISTENT_AVAIL, tpm.limits.maxPersistentObjects - persistent],
    [P.NV_COUNTERS, 0],
    [P.NV_COUNTERS_AVAIL, 0],
    [P.ALGORITHM_SET, 0],
    [P.LOADED_CURVES, CURVES.length],
    [P.LOCKOUT_COUNTER, 0],
    [P.MAX_AUTH_FAIL, 3],
    [P.LOCKOUT_INTERVAL, 1000],
    [P.LOCKOUT_RECOVERY, 1000],
    [P.NV_WRITE_RECOVERY, 0],
    [P.AUDIT_COUNTER_0, 0],
    [P.AUDIT_COUNTER_1, 0],
  ];
}

/** The handles of the sessions that are loaded (or, with `loaded` false, saved), ascending. */
function sessionHandles(tpm: Tpm, loaded: boolean): number[] {
  return [...tpm.sessions.values()]
    .filter((s) => s.loaded === loaded)
    .map((s) => s.handle)
    .sort((a, b) => a - b);
}

function handlesOfType(tpm: Tpm, type: number): number[] {
  switch (type) {
    case TPM_HT.TRANSIENT:
      return tpm.transient.flatMap((o, i) => (o ? [HANDLE_RANGE.TRANSIENT_FIRST + i] : []));
    case TPM_HT.PERSISTENT:
      return [...tpm.persistentObjects.keys()].sort((a, b) => a - b);
    // TPM_HT_LOADED_SESSION and TPM_HT_SAVED_SESSION (Part 2 §7.2).
    case TPM_HT.HMAC_SESSION:
      return sessionHandles(tpm, true);
    case TPM_HT.POLICY_SESSION:
      return sessionHandles(tpm, false);
    case TPM_HT.PERMANENT:
      return [
        TPM_RH.OWNER,
        TPM_RH.NULL,
        TPM_RH.PW,
        TPM_RH.LOCKOUT,
        TPM_RH.ENDORSEMENT,
        TPM_RH.PLATFORM,
      ];
    case TPM_HT.PCR:
      return Array.from({ length: PCR_COUNT }, (_, i) => i);
    case TPM_HT.NV_INDEX:
      return [...tpm.state.nv.keys()].sort((a, b) => a - b);
    default:
      throw new RcError(rcParam(TPM_RC.VALUE, 2));
  }
}

/** Part 3 §30.2: up to `count` items at or after `property`, and whether more remain. */
function page<T>(items: readonly T[], from: (x: T) => number, property: number, count: number) {
  const start = items.filter((x) => from(x) >= property);
  return { list: start.slice(0, count), more: start.length > count };
}

let implementedNames: ReadonlySet<string> | undefined;
/** Set by handlers/index.ts: the commands that have a handler. */
export function setImplemented(names: Iterable<string>): void {
  implementedNames = new Set(names);
}

export const GetCapability: Handler<'GetCapability'> = (ctx, p) => {
  const { tpm } = ctx;
  const count = Math.min(p.propertyCount, 254);
  let list: CapabilityList;
  let more: boolean;
  switch (p.capability) {
    case TPM_CAP.ALGS: {
      const r = page(ALGORITHMS, (a) => a[0], p.property, count);
      list = r.list.map(([alg, algProperties]) => ({ alg, algProperties }));
      more = r.more;
      break;
    }
    case TPM_CAP.HANDLES: {
      const r = page(handlesOfType(tpm, p.property >>> 24), (h) => h, p.property, count);
      list = r.list;
      more = r.more;
      break;
    }
    case TPM_CAP.COMMANDS: {
      const r = page(
        commandAttributes(implementedNames ?? new Set()),
        (a) => a & 0xffff,
        p.property & 0xffff,
        count,
      );
      list = r.list;
      more = r.more;
      break;
    }
    case TPM_CAP.PP_COMMANDS:
    case TPM_CAP.AUDIT_COMMANDS:
      list = [];
      more = false;
      break;
    case TPM_CAP.PCRS:
      // TPML_PCR_SELECTION of the allocated banks, all 24 PCRs in each (as swtpm answers).
      list = PCR_BANKS.map((hash) => ({
        hash,
        pcrSelect: Buffer.alloc(PCR_SELECT_BYTES, 0xff),
      }));
      more = false;
      break;
    case TPM_CAP.TPM_PROPERTIES: {
      const all = [
        ...fixedProperties(tpm, implementedNames?.size ?? 0),
        ...variableProperties(tpm),
      ];
      const r = page(all, (x) => x[0], p.property, Math.min(count, 127));
      list = r.list.map(([property, value]) => ({ property, value: value >>> 0 }));
      more = r.more;
      break;
    }
    case TPM_CAP.ECC_CURVES: {
      const r = page(CURVES, (c) => c, p.property, count);
      list = r.list;
      more = r.more;
      break;
    }
    default:
      throw new RcError(rcParam(TPM_RC.VALUE, 1));
  }
  return {
    response: { moreData: more ? 1 : 0, capabilityData: { capability: p.capability, data: list } },
  };
};

/** The parameters already passed unmarshalling, which checks every algorithm and size this TPM supports. */
export const TestParms: Handler<'TestParms'> = () => ({ response: {} });
