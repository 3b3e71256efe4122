/**
 * The command table: one row per TPM command, from Part 3's command and response tables. The
 * engine dispatches on it and the client marshals with it, so both sides share one definition.
 * A later command family is one more row here (and a handler in the engine).
 */
import { type Codec, dependent, type StructOf, struct, u8, u16, u32 } from './codec.ts';
import { TPM_ALG, TPM_CC } from './constants.ts';
import { TPM_RC } from './rc.ts';
import {
  algHash,
  algHashOrNull,
  algPublic,
  i32,
  TPM2B_ATTEST,
  TPM2B_AUTH,
  TPM2B_CREATION_DATA,
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPM2B_ENCRYPTED_SECRET,
  TPM2B_MAX_BUFFER,
  TPM2B_MAX_NV_BUFFER,
  TPM2B_NAME,
  TPM2B_NONCE,
  TPM2B_NV_PUBLIC,
  TPM2B_PRIVATE,
  TPM2B_PUBLIC,
  TPM2B_PUBLIC_KEY_RSA,
  TPM2B_SENSITIVE,
  TPM2B_SENSITIVE_CREATE,
  TPM2B_SENSITIVE_DATA,
  TPM2B_TEMPLATE,
  TPM2B_TIMEOUT,
  TPML_DIGEST,
  TPML_DIGEST_VALUES,
  TPML_PCR_SELECTION,
  TPMS_CAPABILITY_DATA,
  TPMS_CONTEXT,
  TPMS_ECC_PARMS,
  TPMS_KEYEDHASH_PARMS,
  TPMS_RSA_PARMS,
  TPMS_SYMCIPHER_PARMS,
  TPMS_TIME_INFO,
  TPMT_RSA_DECRYPT,
  TPMT_SIG_SCHEME,
  TPMT_SIGNATURE,
  TPMT_SYM_DEF,
  TPMT_SYM_DEF_OBJECT,
  TPMT_TK,
} from './structures.ts';

/** The authorization role a handle needs (Part 3 §4.6 "Auth Role"); undefined: none. */
export type AuthRole = 'USER' | 'ADMIN' | 'DUP';

/**
 * Which handles an interface type admits (Part 2 §9): a handle outside the set is TPM_RC_VALUE
 * for that handle. OBJECT is TPMI_DH_OBJECT (transient or persistent); HIERARCHY is
 * TPMI_RH_HIERARCHY (+NULL where the command allows it); PROVISION is TPMI_RH_PROVISION;
 * CONTEXT is TPMI_DH_CONTEXT (objects and sessions); ENTITY is TPMI_DH_ENTITY (objects,
 * permanent handles, NV indexes, PCRs); PARENT is TPMI_DH_PARENT (objects and hierarchies); PCR
 * is TPMI_DH_PCR; NV_INDEX is TPMI_RH_NV_INDEX; NV_AUTH is TPMI_RH_NV_AUTH (owner, platform or
 * an NV index); POLICY_SESSION is TPMI_SH_POLICY.
 */
export type HandleKind =
  | 'OBJECT'
  | 'HIERARCHY'
  | 'HIERARCHY_AUTH'
  | 'PROVISION'
  | 'CONTEXT'
  | 'ENTITY'
  | 'PARENT'
  | 'PCR'
  | 'NV_INDEX'
  | 'NV_AUTH'
  | 'POLICY_SESSION';

export interface HandleSpec {
  readonly name: string;
  readonly kind: HandleKind;
  /** TPM_RH_NULL is allowed ("+" in Part 3's tables). */
  readonly nullable?: boolean;
  readonly auth?: AuthRole;
}

type Fields = Record<string, Codec<unknown>>;

export interface CommandSpec<P = unknown, R = unknown> {
  readonly name: string;
  readonly cc: number;
  readonly handles: readonly HandleSpec[];
  /** Parameter codecs in wire order; their position + 1 is the parameter number in TPM_RC. */
  readonly paramFields: readonly (readonly [string, Codec<unknown>])[];
  readonly params: Codec<P>;
  readonly responseHandles: readonly string[];
  readonly response: Codec<R>;
  /** Whether the first command / response parameter is a TPM2B (Part 1 §21.1: only then can a session encrypt it). */
  readonly firstParamSized: boolean;
  readonly firstResponseSized: boolean;
  /**
   * How the command uses an NV index it is authorized for (Part 1 §19.7 and the TPMA_NV
   * AUTHREAD/AUTHWRITE, POLICYREAD/POLICYWRITE bits, Part 2 §13.4): the bits an index needs so
   * that its own authValue or policy can authorize the command.
   */
  readonly nvAccess?: 'READ' | 'WRITE';
}

function command<PF extends Fields, RF extends Fields>(spec: {
  name: string;
  cc: number;
  handles?: readonly HandleSpec[];
  params?: PF;
  responseHandles?: readonly string[];
  response?: RF;
  nvAccess?: 'READ' | 'WRITE';
}): CommandSpec<StructOf<PF>, StructOf<RF>> {
  const params = (spec.params ?? {}) as PF;
  const response = (spec.response ?? {}) as RF;
  const firstParam = Object.values(params)[0];
  const firstResponse = Object.values(response)[0];
  return {
    name: spec.name,
    cc: spec.cc,
    handles: spec.handles ?? [],
    paramFields: Object.entries(params),
    params: struct(`${spec.name}_In`, params),
    responseHandles: spec.responseHandles ?? [],
    response: struct(`${spec.name}_Out`, response),
    firstParamSized: firstParam?.sized === true,
    firstResponseSized: firstResponse?.sized === true,
    ...(spec.nvAccess ? { nvAccess: spec.nvAccess } : {}),
  };
}

const CC = TPM_CC;
const yesNo = u8;

/** TPMT_PUBLIC_PARMS (Part 2 §12.2.3.8), for TestParms. */
const TPMT_PUBLIC_PARMS = struct('TPMT_PUBLIC_PARMS', {
  type: algPublic,
  parameters: dependent(
    'TPMU_PUBLIC_PARMS',
    'type',
    {
      [TPM_ALG.RSA]: TPMS_RSA_PARMS as Codec<unknown>,
      [TPM_ALG.ECC]: TPMS_ECC_PARMS as Codec<unknown>,
      [TPM_ALG.KEYEDHASH]: TPMS_KEYEDHASH_PARMS as Codec<unknown>,
      [TPM_ALG.SYMCIPHER]: TPMS_SYMCIPHER_PARMS as Codec<unknown>,
    },
    TPM_RC.TYPE,
  ),
});

const creationOut = {
  outPublic: TPM2B_PUBLIC,
  creationData: TPM2B_CREATION_DATA,
  creationHash: TPM2B_DIGEST,
  creationTicket: TPMT_TK,
};

/** Part 3, by section. */
export const COMMANDS = {
  // §9.3
  Startup: command({ name: 'Startup', cc: CC.Startup, params: { startupType: u16 } }),
  // §9.4
  Shutdown: command({ name: 'Shutdown', cc: CC.Shutdown, params: { shutdownType: u16 } }),
  // §11.1
  StartAuthSession: command({
    name: 'StartAuthSession',
    cc: CC.StartAuthSession,
    handles: [
      { name: 'tpmKey', kind: 'OBJECT', nullable: true },
      { name: 'bind', kind: 'ENTITY', nullable: true },
    ],
    params: {
      nonceCaller: TPM2B_NONCE,
      encryptedSalt: TPM2B_ENCRYPTED_SECRET,
      sessionType: u8,
      symmetric: TPMT_SYM_DEF,
      authHash: algHash,
    },
    responseHandles: ['sessionHandle'],
    response: { nonceTPM: TPM2B_NONCE },
  }),
  // §12.1
  Create: command({
    name: 'Create',
    cc: CC.Create,
    handles: [{ name: 'parentHandle', kind: 'OBJECT', auth: 'USER' }],
    params: {
      inSensitive: TPM2B_SENSITIVE_CREATE,
      inPublic: TPM2B_PUBLIC,
      outsideInfo: TPM2B_DATA,
      creationPCR: TPML_PCR_SELECTION,
    },
    response: { outPrivate: TPM2B_PRIVATE, ...creationOut },
  }),
  // §12.2
  Load: command({
    name: 'Load',
    cc: CC.Load,
    handles: [{ name: 'parentHandle', kind: 'OBJECT', auth: 'USER' }],
    params: { inPrivate: TPM2B_PRIVATE, inPublic: TPM2B_PUBLIC },
    responseHandles: ['objectHandle'],
    response: { name: TPM2B_NAME },
  }),
  // §12.3
  LoadExternal: command({
    name: 'LoadExternal',
    cc: CC.LoadExternal,
    params: { inPrivate: TPM2B_SENSITIVE, inPublic: TPM2B_PUBLIC, hierarchy: u32 },
    responseHandles: ['objectHandle'],
    response: { name: TPM2B_NAME },
  }),
  // §12.4
  ReadPublic: command({
    name: 'ReadPublic',
    cc: CC.ReadPublic,
    handles: [{ name: 'objectHandle', kind: 'OBJECT' }],
    response: { outPublic: TPM2B_PUBLIC, name: TPM2B_NAME, qualifiedName: TPM2B_NAME },
  }),
  // §12.7
  Unseal: command({
    name: 'Unseal',
    cc: CC.Unseal,
    handles: [{ name: 'itemHandle', kind: 'OBJECT', auth: 'USER' }],
    response: { outData: TPM2B_SENSITIVE_DATA },
  }),
  // §12.9
  CreateLoaded: command({
    name: 'CreateLoaded',
    cc: CC.CreateLoaded,
    handles: [{ name: 'parentHandle', kind: 'PARENT', nullable: true, auth: 'USER' }],
    params: { inSensitive: TPM2B_SENSITIVE_CREATE, inPublic: TPM2B_TEMPLATE },
    responseHandles: ['objectHandle'],
    response: { outPrivate: TPM2B_PRIVATE, outPublic: TPM2B_PUBLIC, name: TPM2B_NAME },
  }),
  // §13.3
  Import: command({
    name: 'Import',
    cc: CC.Import,
    handles: [{ name: 'parentHandle', kind: 'OBJECT', auth: 'USER' }],
    params: {
      encryptionKey: TPM2B_DATA,
      objectPublic: TPM2B_PUBLIC,
      duplicate: TPM2B_PRIVATE,
      inSymSeed: TPM2B_ENCRYPTED_SECRET,
      symmetricAlg: TPMT_SYM_DEF_OBJECT,
    },
    response: { outPrivate: TPM2B_PRIVATE },
  }),
  // §14.2
  RSA_Encrypt: command({
    name: 'RSA_Encrypt',
    cc: CC.RSA_Encrypt,
    handles: [{ name: 'keyHandle', kind: 'OBJECT' }],
    params: { message: TPM2B_PUBLIC_KEY_RSA, inScheme: TPMT_RSA_DECRYPT, label: TPM2B_DATA },
    response: { outData: TPM2B_PUBLIC_KEY_RSA },
  }),
  // §14.3
  RSA_Decrypt: command({
    name: 'RSA_Decrypt',
    cc: CC.RSA_Decrypt,
    handles: [{ name: 'keyHandle', kind: 'OBJECT', auth: 'USER' }],
    params: { cipherText: TPM2B_PUBLIC_KEY_RSA, inScheme: TPMT_RSA_DECRYPT, label: TPM2B_DATA },
    response: { message: TPM2B_PUBLIC_KEY_RSA },
  }),
  // §15.4
  HMAC: command({
    name: 'HMAC',
    cc: CC.HMAC,
    handles: [{ name: 'handle', kind: 'OBJECT', auth: 'USER' }],
    params: { buffer: TPM2B_MAX_BUFFER, hashAlg: algHashOrNull },
    response: { outHMAC: TPM2B_DIGEST },
  }),
  // §16.1
  GetRandom: command({
    name: 'GetRandom',
    cc: CC.GetRandom,
    params: { bytesRequested: u16 },
    response: { randomBytes: TPM2B_DIGEST },
  }),
  // §17.4 (TPM2_Hash; the hierarchy says who may use the ticket)
  Hash: command({
    name: 'Hash',
    cc: CC.Hash,
    params: { data: TPM2B_MAX_BUFFER, hashAlg: algHash, hierarchy: u32 },
    response: { outHash: TPM2B_DIGEST, validation: TPMT_TK },
  }),
  // §18.2
  Certify: command({
    name: 'Certify',
    cc: CC.Certify,
    handles: [
      { name: 'objectHandle', kind: 'OBJECT', auth: 'ADMIN' },
      { name: 'signHandle', kind: 'OBJECT', nullable: true, auth: 'USER' },
    ],
    params: { qualifyingData: TPM2B_DATA, inScheme: TPMT_SIG_SCHEME },
    response: { certifyInfo: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
  }),
  // §18.4
  Quote: command({
    name: 'Quote',
    cc: CC.Quote,
    handles: [{ name: 'signHandle', kind: 'OBJECT', nullable: true, auth: 'USER' }],
    params: {
      qualifyingData: TPM2B_DATA,
      inScheme: TPMT_SIG_SCHEME,
      PCRselect: TPML_PCR_SELECTION,
    },
    response: { quoted: TPM2B_ATTEST, signature: TPMT_SIGNATURE },
  }),
  // §20.1
  VerifySignature: command({
    name: 'VerifySignature',
    cc: CC.VerifySignature,
    handles: [{ name: 'keyHandle', kind: 'OBJECT' }],
    params: { digest: TPM2B_DIGEST, signature: TPMT_SIGNATURE },
    response: { validation: TPMT_TK },
  }),
  // §20.2
  Sign: command({
    name: 'Sign',
    cc: CC.Sign,
    handles: [{ name: 'keyHandle', kind: 'OBJECT', auth: 'USER' }],
    params: { digest: TPM2B_DIGEST, inScheme: TPMT_SIG_SCHEME, validation: TPMT_TK },
    response: { signature: TPMT_SIGNATURE },
  }),
  // §22.2
  PCR_Extend: command({
    name: 'PCR_Extend',
    cc: CC.PCR_Extend,
    handles: [{ name: 'pcrHandle', kind: 'PCR', nullable: true, auth: 'USER' }],
    params: { digests: TPML_DIGEST_VALUES },
  }),
  // §22.4
  PCR_Read: command({
    name: 'PCR_Read',
    cc: CC.PCR_Read,
    params: { pcrSelectionIn: TPML_PCR_SELECTION },
    response: {
      pcrUpdateCounter: u32,
      pcrSelectionOut: TPML_PCR_SELECTION,
      pcrValues: TPML_DIGEST,
    },
  }),
  // §23.4
  PolicySecret: command({
    name: 'PolicySecret',
    cc: CC.PolicySecret,
    handles: [
      { name: 'authHandle', kind: 'ENTITY', auth: 'USER' },
      { name: 'policySession', kind: 'POLICY_SESSION' },
    ],
    params: {
      nonceTPM: TPM2B_NONCE,
      cpHashA: TPM2B_DIGEST,
      policyRef: TPM2B_NONCE,
      expiration: i32,
    },
    response: { timeout: TPM2B_TIMEOUT, policyTicket: TPMT_TK },
  }),
  // §23.19
  PolicyGetDigest: command({
    name: 'PolicyGetDigest',
    cc: CC.PolicyGetDigest,
    handles: [{ name: 'policySession', kind: 'POLICY_SESSION' }],
    response: { policyDigest: TPM2B_DIGEST },
  }),
  // §24.1
  CreatePrimary: command({
    name: 'CreatePrimary',
    cc: CC.CreatePrimary,
    handles: [{ name: 'primaryHandle', kind: 'HIERARCHY', nullable: true, auth: 'USER' }],
    params: {
      inSensitive: TPM2B_SENSITIVE_CREATE,
      inPublic: TPM2B_PUBLIC,
      outsideInfo: TPM2B_DATA,
      creationPCR: TPML_PCR_SELECTION,
    },
    responseHandles: ['objectHandle'],
    response: { ...creationOut, name: TPM2B_NAME },
  }),
  // §24.8
  HierarchyChangeAuth: command({
    name: 'HierarchyChangeAuth',
    cc: CC.HierarchyChangeAuth,
    handles: [{ name: 'authHandle', kind: 'HIERARCHY_AUTH', auth: 'USER' }],
    params: { newAuth: TPM2B_AUTH },
  }),
  // §28.2
  ContextSave: command({
    name: 'ContextSave',
    cc: CC.ContextSave,
    handles: [{ name: 'saveHandle', kind: 'CONTEXT' }],
    response: { context: TPMS_CONTEXT },
  }),
  // §28.3
  ContextLoad: command({
    name: 'ContextLoad',
    cc: CC.ContextLoad,
    params: { context: TPMS_CONTEXT },
    responseHandles: ['loadedHandle'],
  }),
  // §28.4
  FlushContext: command({
    name: 'FlushContext',
    cc: CC.FlushContext,
    params: { flushHandle: u32 },
  }),
  // §28.5
  EvictControl: command({
    name: 'EvictControl',
    cc: CC.EvictControl,
    handles: [
      { name: 'auth', kind: 'PROVISION', auth: 'USER' },
      { name: 'objectHandle', kind: 'OBJECT' },
    ],
    params: { persistentHandle: u32 },
  }),
  // §31.3
  NV_DefineSpace: command({
    name: 'NV_DefineSpace',
    cc: CC.NV_DefineSpace,
    handles: [{ name: 'authHandle', kind: 'PROVISION', auth: 'USER' }],
    params: { auth: TPM2B_AUTH, publicInfo: TPM2B_NV_PUBLIC },
  }),
  // §31.4
  NV_UndefineSpace: command({
    name: 'NV_UndefineSpace',
    cc: CC.NV_UndefineSpace,
    handles: [
      { name: 'authHandle', kind: 'PROVISION', auth: 'USER' },
      { name: 'nvIndex', kind: 'NV_INDEX' },
    ],
  }),
  // §31.6
  NV_ReadPublic: command({
    name: 'NV_ReadPublic',
    cc: CC.NV_ReadPublic,
    handles: [{ name: 'nvIndex', kind: 'NV_INDEX' }],
    response: { nvPublic: TPM2B_NV_PUBLIC, nvName: TPM2B_NAME },
  }),
  // §31.7
  NV_Write: command({
    name: 'NV_Write',
    cc: CC.NV_Write,
    handles: [
      { name: 'authHandle', kind: 'NV_AUTH', auth: 'USER' },
      { name: 'nvIndex', kind: 'NV_INDEX' },
    ],
    params: { data: TPM2B_MAX_NV_BUFFER, offset: u16 },
    nvAccess: 'WRITE',
  }),
  // §31.13
  NV_Read: command({
    name: 'NV_Read',
    cc: CC.NV_Read,
    handles: [
      { name: 'authHandle', kind: 'NV_AUTH', auth: 'USER' },
      { name: 'nvIndex', kind: 'NV_INDEX' },
    ],
    params: { size: u16, offset: u16 },
    response: { data: TPM2B_MAX_NV_BUFFER },
    nvAccess: 'READ',
  }),
  // §29.1
  ReadClock: command({
    name: 'ReadClock',
    cc: CC.ReadClock,
    response: { currentTime: TPMS_TIME_INFO },
  }),
  // §30.2
  GetCapability: command({
    name: 'GetCapability',
    cc: CC.GetCapability,
    params: { capability: u32, property: u32, propertyCount: u32 },
    response: { moreData: yesNo, capabilityData: TPMS_CAPABILITY_DATA },
  }),
  // §30.3
  TestParms: command({
    name: 'TestParms',
    cc: CC.TestParms,
    params: { parameters: TPMT_PUBLIC_PARMS },
  }),
} as const;

export type CommandName = keyof typeof COMMANDS;
export type ParamsOf<N extends CommandName> =
  (typeof COMMANDS)[N] extends CommandSpec<infer P, infer _R> ? P : never;
export type ResponseOf<N extends CommandName> =
  (typeof COMMANDS)[N] extends CommandSpec<infer _P, infer R> ? R : never;

/** Lookup by command code. */
export const COMMAND_BY_CC: ReadonlyMap<number, CommandSpec> = new Map(
  Object.values(COMMANDS).map((c) => [c.cc, c as CommandSpec]),
);
