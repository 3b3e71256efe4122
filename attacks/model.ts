/**
 * What a scenario file may say, as data: the policy states, the outcomes, where on the victim's
 * device an artifact is stolen from (SOURCES) and what the attacker does with it (ACTIONS). The
 * validator (scenario.ts) checks files against these tables; the runner (runner.ts, victim.ts)
 * and the attacker program (attacker/) implement exactly the rows listed here.
 */
import { DEVICE_KINDS, type DeviceKind } from '../agent/store.ts';
import {
  PROFILE_NAMES,
  type ProfileName,
  RESOURCE_NAMES,
  type ResourceName,
} from '../clients/profiles.ts';

/** The seed token-protection policy's state under test (off = the policy is disabled). */
export const POLICY_STATES = ['off', 'reportOnly', 'on'] as const;
export type PolicyStateName = (typeof POLICY_STATES)[number];

/**
 * What the attacker got:
 * - allowed: the cloud issued a token, or the resource answered;
 * - blocked: Conditional Access refused it (AADSTS53003 or 530084);
 * - refused: the cloud refused it for another reason (a bad proof, a replay, an expired nonce, a
 *   bound token used as a bearer token, an access token past its lifetime, a PRT cookie ignored
 *   at /authorize: `interaction_required` instead of a code);
 * - unusable: the artifact did not even work on the attacker's host (nothing reached the cloud).
 */
export const OUTCOMES = ['allowed', 'blocked', 'refused', 'unusable'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * The token-protection policy's result in the sign-in log entry (Graph appliedConditionalAccess
 * Policy.result), or: `notEvaluated` when the entry lists no policy (the request failed before
 * Conditional Access ran), `noSignIn` when the request leaves no sign-in entry (a resource call,
 * an /authorize answer).
 */
export const SIGN_IN_RESULTS = [
  'success',
  'failure',
  'notApplied',
  'notEnabled',
  'reportOnlySuccess',
  'reportOnlyFailure',
  'reportOnlyNotApplied',
  'notEvaluated',
  'noSignIn',
] as const;
export type SignInResult = (typeof SIGN_IN_RESULTS)[number];

/**
 * `tokenProtectionStatusDetails` as one string: `bound`, `unbound <signInSessionStatusCode>`
 * (docs/token-protection.md §3.3), or `none` (not evaluated).
 */
export const TOKEN_PROTECTION_RE = /^(bound|none|unbound (100[2-8]))$/;

/** User-Agent headers the attacker can send (what the cloud reads the platform and app type from). */
export const USER_AGENTS = {
  /** A Windows desktop client (Outlook's), as roadtx and AADInternals let an attacker claim. */
  'windows-desktop': 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)',
  /** No User-Agent at all: the cloud cannot tell the platform. */
  none: '',
  /** Edge on Windows: what a browser replaying a PRT cookie sends. */
  browser:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87',
} as const;
export type UserAgentName = keyof typeof USER_AGENTS;

/** The kinds of stolen artifact, each a file (or a directory) the attacker is given. */
export const ARTIFACT_KINDS = [
  'token-cache-file',
  'credentials',
  'broker-cache-entry',
  'captured-request',
  'prt',
  'access-token',
  'broker-file',
  'device-copy',
  'prt-cookie',
] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

type ParamType = 'profile' | 'resource' | 'version' | 'userAgent' | readonly string[];

interface ParamSpec {
  readonly type: ParamType;
  readonly required?: boolean;
}

export interface SourceSpec {
  /** What is taken, and how the lab makes the victim produce it. */
  readonly description: string;
  readonly params: Readonly<Record<string, ParamSpec>>;
  /** The artifact kind it yields; `keep` picks between two for agent-traffic. */
  readonly yields: readonly ArtifactKind[];
}

/** Where on the victim's device an artifact comes from (victim.ts implements each). */
export const SOURCES = {
  'client-token-cache': {
    description:
      "a non-broker client's own token cache file (<device>/clients/<profile>-token-cache.json, plain JSON), written when the victim signs in with it",
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource' },
    },
    yields: ['token-cache-file'],
  },
  phishing: {
    description: "the victim's user name and password, phished",
    params: {},
    yields: ['credentials'],
  },
  'broker-cache': {
    description:
      "an entry of the broker's token cache (<device>/broker-cache/), unsealed by code running as the victim on the device, as malware decrypts WAM's DPAPI-protected cache",
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource' },
    },
    yields: ['broker-cache-entry'],
  },
  'agent-traffic': {
    description:
      "the agent's HTTPS traffic to the cloud as a TLS-intercepting capture on the victim's machine sees it (agent/capture.ts), while an app gets a token through the broker",
    params: {
      keep: { type: ['signed-request', 'prt'], required: true },
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource' },
    },
    yields: ['captured-request', 'prt'],
  },
  'client-memory': {
    description: 'the access token an app got from the broker, read from the app by malware',
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource' },
    },
    yields: ['access-token'],
  },
  'broker-file': {
    description:
      "the broker's port and caller secret (<device>/broker.json, 0600), readable by any code running as the victim",
    params: {},
    yields: ['broker-file'],
  },
  'device-directory': {
    description:
      "a copy of the device's directory: device.json with the TPM-wrapped key blobs, accounts.json with the sealed PRT and session key blob, the built-in TPM's sealed state, and the key that seals it when that key is a file",
    params: { keystore: { type: ['key-file', 'secret-service'], required: true } },
    yields: ['device-copy'],
  },
  'cookie-api': {
    description:
      "an x-ms-RefreshTokenCredential cookie minted by the broker (getCookieInfoForUri, BrowserCore's role) for code running as the victim",
    params: {},
    yields: ['prt-cookie'],
  },
} as const satisfies Record<string, SourceSpec>;
export type SourceName = keyof typeof SOURCES;

export interface ActionSpec {
  readonly description: string;
  readonly accepts: readonly ArtifactKind[];
  readonly params: Readonly<Record<string, ParamSpec>>;
}

/** What the attacker does with an artifact (attacker/actions.ts implements each). */
export const ACTIONS = {
  'redeem-refresh-token': {
    description:
      'a bearer refresh_token grant at the token endpoint, for a resource, from the attacker host (no device)',
    accepts: ['token-cache-file', 'broker-cache-entry', 'prt'],
    params: {
      resource: { type: 'resource', required: true },
      userAgent: { type: 'userAgent' },
      client: { type: 'profile' },
    },
  },
  'password-sign-in': {
    description: "the password grant (ROPC) as a client, from the attacker's unregistered machine",
    params: {
      client: { type: 'profile', required: true },
      resource: { type: 'resource', required: true },
      userAgent: { type: 'userAgent' },
    },
    accepts: ['credentials'],
  },
  'register-device': {
    description:
      "registers a device of the attacker's own with software keys (a DRS token by password, a join, a PRT request signed by its own device key), then asks for an app token through that PRT, as roadtx device/prt/prtauth do",
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource', required: true },
    },
    accepts: ['credentials'],
  },
  'sign-with-own-key': {
    description:
      "puts the stolen token in a session-key-signed request (prt-protocol §6.1), signed with a session key of the attacker's own since the real one never left the TPM",
    params: {
      client: { type: 'profile', required: true },
      resource: { type: 'resource', required: true },
    },
    accepts: ['prt', 'broker-cache-entry'],
  },
  'replay-request': {
    description:
      'posts a captured PRT-signed request to the token endpoint again: as captured, or with its payload edited',
    params: { edit: { type: ['none', 'resource'] } },
    accepts: ['captured-request'],
  },
  'call-resource': {
    description: 'calls the resource with the stolen access token as a bearer token',
    params: { resource: { type: 'resource', required: true } },
    accepts: ['access-token'],
  },
  'ask-broker': {
    description:
      "connects to the device's broker on 127.0.0.1 with the stolen caller secret and asks for a token for any app id it likes (code running on the victim's device)",
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource', required: true },
    },
    accepts: ['broker-file'],
  },
  'open-copied-device': {
    description:
      "opens the copied device directory with the device agent on the attacker's host (the copied built-in TPM state, the attacker's own OS keystore) and asks for an app token through the copied PRT",
    params: {
      client: { type: 'profile', required: true },
      version: { type: 'version' },
      resource: { type: 'resource', required: true },
    },
    accepts: ['device-copy'],
  },
  'replay-cookie': {
    description:
      'presents the x-ms-RefreshTokenCredential cookie (or header) at /authorize from the attacker host, as a browser would, with prompt=none, then redeems the authorization code at the token endpoint (prt-protocol §6.3, §8 "Cookie-only")',
    params: {
      client: { type: 'profile', required: true },
      resource: { type: 'resource', required: true },
      userAgent: { type: 'userAgent' },
      transport: { type: ['cookie', 'header'] },
    },
    accepts: ['prt-cookie'],
  },
} as const satisfies Record<string, ActionSpec>;
export type ActionName = keyof typeof ACTIONS;

/**
 * Tenant settings a replay may set for its own run (the runner applies them before the replay and
 * puts the lab's defaults back after it, so other replays are unaffected). Each is a boolean.
 */
export const TENANT_SETTINGS = {
  requireAttestation: {
    description:
      'device registration must be hardware-backed (TPM-attested): `prtlab cloud setting require-attestation on`; an unattested join is refused with AADSTS9990220',
    default: false,
  },
} as const satisfies Record<string, { readonly description: string; readonly default: boolean }>;
export type TenantSettingName = keyof typeof TENANT_SETTINGS;
export type TenantSettings = Readonly<Partial<Record<TenantSettingName, boolean>>>;

/** The users of the lab tenant a rollout case signs in as. */
export const USER_KINDS = ['pilot', 'guest', 'break-glass'] as const;
export type UserKind = (typeof USER_KINDS)[number];

export type ParamValue = string;
export type Params = Readonly<Record<string, ParamValue>>;

export interface Expectation {
  readonly outcome: Outcome;
  readonly aadsts?: number;
  readonly signInResult?: SignInResult;
  readonly tokenProtection?: string;
  /** Why this is the expected outcome (shown in the reports). */
  readonly why: string;
}

export type Expectations = Readonly<Record<PolicyStateName, Expectation>>;

/** One stolen artifact: what it is, where it comes from. */
export interface StolenArtifact {
  /** The name replays use to refer to it. */
  readonly name: string;
  readonly kind: ArtifactKind;
  readonly from: SourceName;
  readonly with: Params;
  /** Where exactly, in words (shown in the reports). */
  readonly where: string;
}

export interface Replay {
  readonly id: string;
  readonly title: string;
  readonly artifact: string;
  readonly action: ActionName;
  readonly with: Params;
  /**
   * `attacker-host` (default): a separate host with its own data directory and only the artifact;
   * `victim-device`: code running as the victim on the device itself (malware).
   */
  readonly runsOn: 'attacker-host' | 'victim-device';
  /** The attacker host has a Secret Service (OS keystore) of its own. */
  readonly attackerKeystore: boolean;
  /** Lab time moves forward by this many minutes before the replay (0: not at all). */
  readonly advanceMinutes: number;
  /** Tenant settings for this replay only (empty: the lab's defaults). */
  readonly tenant: TenantSettings;
  readonly expect: Expectations;
}

export interface AttackScenario {
  readonly kind: 'attack';
  readonly id: string;
  readonly number: number;
  readonly title: string;
  readonly summary: string;
  readonly stolen: readonly StolenArtifact[];
  readonly replays: readonly Replay[];
  /** The file it was read from (base name). */
  readonly file: string;
}

export interface RolloutCase {
  readonly id: string;
  readonly title: string;
  readonly client: ProfileName;
  readonly version: string | undefined;
  readonly resource: ResourceName | undefined;
  readonly device: DeviceKind;
  readonly user: UserKind;
  readonly expect: Expectations;
}

export interface RolloutScenario {
  readonly kind: 'rollout';
  readonly id: string;
  readonly number: number;
  readonly title: string;
  readonly summary: string;
  readonly cases: readonly RolloutCase[];
  readonly file: string;
}

export type Scenario = AttackScenario | RolloutScenario;

export type { DeviceKind, ProfileName, ResourceName };
export { DEVICE_KINDS, PROFILE_NAMES, RESOURCE_NAMES };
