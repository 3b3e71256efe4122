/**
 * The directory's one storage interface. Everything the cloud keeps about its tenant, users,
 * groups, roles, devices, applications and issued tokens goes through `Directory`; the SQLite
 * implementation (sqlite.ts) is one backend. Methods are asynchronous even though SQLite answers
 * synchronously, so that a networked store (PostgreSQL, DESIGN "Beyond one machine") can replace
 * it without changing any caller.
 *
 * Conventions: GUIDs are lowercase; directory-object times are ISO 8601 strings (Graph's
 * `createdDateTime` style); token-record times are Unix seconds (like JWT `iat`/`exp`).
 * Administrative failures throw DirectoryError (ERR_DIRECTORY); sign-in failures from
 * `users.authenticate` throw CloudRequestError (ERR_CLOUD_REQUEST) with Entra's AADSTS number.
 */
import type { JoinType } from '../pki/device-cert.ts';

export interface Tenant {
  readonly id: string;
  /** The default (and only) verified domain, e.g. "contoso.test". */
  readonly domain: string;
  readonly displayName: string;
  /** Tenant region, as written into device certificates (extension .284.8), e.g. "NA". */
  readonly region: string;
  readonly createdAt: string;
}

export type UserKind = 'member' | 'guest';

export interface User {
  /** Object id. */
  readonly id: string;
  readonly upn: string;
  readonly displayName: string;
  readonly kind: UserKind;
  readonly enabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewUser {
  /** `name@domain`; members must use the tenant's domain, guests another one. */
  upn: string;
  /** 8 to 256 characters (Entra's length rule); stored only as a scrypt hash. */
  password: string;
  displayName?: string;
  kind?: UserKind;
  enabled?: boolean;
  /** Directory role names or template ids (see DIRECTORY_ROLES). */
  roles?: readonly string[];
  /** Names or ids of existing groups. */
  groups?: readonly string[];
}

export interface Group {
  readonly id: string;
  readonly displayName: string;
  readonly description: string;
  readonly createdAt: string;
}

/** A built-in directory role; `id` is its well-known role template id. */
export interface DirectoryRole {
  readonly id: string;
  readonly displayName: string;
}

export interface UserMemberships {
  readonly groups: readonly Group[];
  readonly roles: readonly DirectoryRole[];
}

/** Graph's `trustType`: Entra joined, Entra registered (workplace), hybrid (on-prem AD). */
export type TrustType = 'AzureAd' | 'Workplace' | 'ServerAd';

/**
 * How DRS judged the TPM attestation of a device's registration (cloud/registration/attestation.ts).
 * 'verified': the AK chained to a trusted TPM manufacturer CA and TPM2_Certify proved the device
 * and transport keys fixedTPM; 'absent': none was presented (software keys, `--no-attest`, a hybrid
 * join, or a device registered before attestation was recorded). A presented attestation that fails
 * a check refuses the registration, so there is no stored 'refused' state.
 */
export type AttestationStatus = 'verified' | 'absent';

export interface DeviceAttestation {
  readonly status: AttestationStatus;
  /** Why, in a sentence (shown by `prtlab cloud device list` and /beta/devices). */
  readonly reason: string;
}

/** 'precreated': a hybrid device synced from on-prem, waiting for its join (§1.5). */
export type DeviceState = 'precreated' | 'registered';

export interface Device {
  /** The device id (DeviceId in the certificate, the CN of its subject). */
  readonly id: string;
  /** The directory object id (Graph `id`), distinct from the device id as in Entra. */
  readonly objectId: string;
  readonly displayName: string;
  readonly joinType: JoinType;
  readonly trustType: TrustType;
  readonly state: DeviceState;
  readonly operatingSystem: string;
  readonly operatingSystemVersion: string;
  /** DRS `DeviceType` as registered, e.g. "Windows". */
  readonly deviceType: string;
  /** The transport key as registered (e.g. the BCRYPT_RSAKEY_BLOB bytes), or null. */
  readonly transportKey: Buffer | null;
  /** Uppercase SHA-1 hex of the issued device certificate, or null before registration. */
  readonly certThumbprint: string | null;
  /** A hybrid device's on-premises certificate (DER), set by pre-creation. */
  readonly onPremCertificate: Buffer | null;
  readonly enabled: boolean;
  /** Object id of the user who joined or registered the device (AuthUserObjectId). */
  readonly registeringUserId: string | null;
  /** Graph `systemLabels`, for Conditional Access device filters (e.g. "CloudPC"). */
  readonly systemLabels: readonly string[];
  /** Graph `isCompliant` as device management reported it; null when it never did. */
  readonly isCompliant: boolean | null;
  /** Graph `enrollmentProfileName` (the Autopilot profile), or null. */
  readonly enrollmentProfileName: string | null;
  /** Graph `profileType` (e.g. "RegisteredDevice", "SecureVM", "Printer", "Shared"), or null. */
  readonly profileType: string | null;
  /** The registration's TPM attestation result. */
  readonly attestation: DeviceAttestation;
  /** True when the attestation was verified: the device's keys are provably in a TPM. */
  readonly hardwareBacked: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewDevice {
  id: string;
  displayName: string;
  joinType: JoinType;
  operatingSystem?: string;
  operatingSystemVersion?: string;
  deviceType?: string;
  transportKey?: Uint8Array | null;
  certThumbprint?: string | null;
  registeringUserId?: string | null;
  systemLabels?: readonly string[];
  enabled?: boolean;
  /** Default: absent, "no TPM attestation was presented". */
  attestation?: DeviceAttestation;
}

export interface PrecreatedDevice {
  /** The GUID from the on-premises certificate's subject CN. */
  id: string;
  displayName: string;
  onPremCertificate: Uint8Array;
}

/** Fields a registration (or re-registration) may set on an existing device. */
export interface DevicePatch {
  displayName?: string;
  joinType?: JoinType;
  state?: DeviceState;
  operatingSystem?: string;
  operatingSystemVersion?: string;
  deviceType?: string;
  transportKey?: Uint8Array | null;
  certThumbprint?: string | null;
  registeringUserId?: string | null;
  systemLabels?: readonly string[];
  enabled?: boolean;
  /** Management facts (what Intune or Autopilot would set); null clears. */
  isCompliant?: boolean | null;
  enrollmentProfileName?: string | null;
  profileType?: string | null;
  attestation?: DeviceAttestation;
}

export type ApplicationKind = 'resource' | 'client';

export interface Application {
  readonly appId: string;
  readonly displayName: string;
  readonly kind: ApplicationKind;
  /** Audiences a token for this resource carries; the first is the primary one. */
  readonly identifierUris: readonly string[];
  /** A client that signs in through the Windows broker (WAM), so it can hold bound tokens. */
  readonly brokerCapable: boolean;
  /** A public (native) client: no secret, as every first-party client here. */
  readonly publicClient: boolean;
}

export type TokenKind = 'prt' | 'refresh_token' | 'access_token';

export interface TokenRecord {
  /** The token's id (e.g. its `jti` or sealed-blob id). */
  readonly id: string;
  readonly kind: TokenKind;
  readonly userId: string;
  readonly deviceId: string | null;
  readonly clientId: string;
  /** The token this one was obtained with (a refresh token's PRT); revocation follows it. */
  readonly parentId: string | null;
  /** Unix seconds. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly revokedAt: number | null;
}

export interface NewTokenRecord {
  /** Defaults to a new GUID. */
  id?: string;
  kind: TokenKind;
  userId: string;
  deviceId?: string | null;
  clientId: string;
  parentId?: string | null;
  issuedAt: number;
  expiresAt: number;
}

export interface UserStore {
  /** Creates a user with its groups and roles in one step; ERR_DIRECTORY on a duplicate UPN. */
  create(input: NewUser): Promise<User>;
  get(id: string): Promise<User | undefined>;
  /** Case-insensitive. */
  findByUpn(upn: string): Promise<User | undefined>;
  /** By object id or UPN. */
  find(idOrUpn: string): Promise<User | undefined>;
  list(): Promise<User[]>;
  setEnabled(id: string, enabled: boolean): Promise<User>;
  setPassword(id: string, password: string): Promise<void>;
  /** Timing-safe; false for a wrong password or an unknown user. */
  verifyPassword(id: string, password: string): Promise<boolean>;
  /**
   * Password sign-in as Entra answers it: the user, or CloudRequestError AADSTS50034 (no such
   * user), AADSTS50126 (wrong password), AADSTS50057 (disabled; only said after a right password).
   */
  authenticate(upn: string, password: string): Promise<User>;
  memberOf(id: string): Promise<UserMemberships>;
  assignRole(id: string, role: string): Promise<void>;
}

export interface GroupStore {
  /** ERR_DIRECTORY if a group of that name (case-insensitive) exists. */
  create(displayName: string, description?: string): Promise<Group>;
  get(id: string): Promise<Group | undefined>;
  /** By id or (case-insensitive) name. */
  find(idOrName: string): Promise<Group | undefined>;
  list(): Promise<Group[]>;
  addMember(groupId: string, userId: string): Promise<void>;
  removeMember(groupId: string, userId: string): Promise<boolean>;
  members(groupId: string): Promise<User[]>;
}

export interface RoleStore {
  list(): Promise<readonly DirectoryRole[]>;
  /** By template id or (case-insensitive) display name. */
  find(idOrName: string): Promise<DirectoryRole | undefined>;
}

export interface DeviceStore {
  create(input: NewDevice): Promise<Device>;
  /** A hybrid device known before it joins (joinType 6, state 'precreated', disabled: no). */
  precreate(input: PrecreatedDevice): Promise<Device>;
  get(id: string): Promise<Device | undefined>;
  /** By device id or object id. */
  find(idOrObjectId: string): Promise<Device | undefined>;
  findByThumbprint(thumbprint: string): Promise<Device | undefined>;
  list(): Promise<Device[]>;
  update(id: string, patch: DevicePatch): Promise<Device>;
  setEnabled(id: string, enabled: boolean): Promise<Device>;
  /** Deletes the device and revokes its token records; false if there was none. */
  delete(id: string): Promise<boolean>;
}

export interface ApplicationStore {
  get(appId: string): Promise<Application | undefined>;
  /**
   * A resource by app id or identifier URI (case-insensitive, trailing slash ignored), so both
   * `resource=https://graph.microsoft.com` and `resource=00000003-...` resolve.
   */
  findResource(appIdOrUri: string): Promise<Application | undefined>;
  list(kind?: ApplicationKind): Promise<Application[]>;
}

export interface TokenRecordStore {
  add(record: NewTokenRecord): Promise<TokenRecord>;
  get(id: string): Promise<TokenRecord | undefined>;
  /** Revokes the record and every record obtained from it; returns how many changed. */
  revoke(id: string, at?: number): Promise<number>;
  revokeForUser(userId: string, at?: number): Promise<number>;
  revokeForDevice(deviceId: string, at?: number): Promise<number>;
  /** Deletes records that expired before `before` (Unix seconds); returns how many. */
  purgeExpired(before: number): Promise<number>;
}

/** A stored Conditional Access policy (cloud/policies/store.ts). */
export interface StoredPolicy {
  readonly id: string;
  /**
   * The policy as Graph returns it: the JSON accepted on create or update, with `id` first and
   * `createdDateTime` and `modifiedDateTime` (null until the first change) last.
   */
  readonly policy: Readonly<Record<string, unknown>>;
  readonly state: 'enabled' | 'disabled' | 'enabledForReportingButNotEnforced';
  readonly createdAt: string;
  readonly modifiedAt: string | null;
  /** When the policy was first report-only, or null if it never was. */
  readonly reportOnlySince: string | null;
}

export interface PolicyStore {
  /** Validates `json` (parsePolicy; CaError ERR_CA_POLICY) and stores it with a new id. */
  create(json: unknown): Promise<StoredPolicy>;
  get(id: string): Promise<StoredPolicy | undefined>;
  /** Oldest first. */
  list(): Promise<StoredPolicy[]>;
  /**
   * JSON merge patch (RFC 7396, as Graph PATCH): objects merge, null removes, lists replace;
   * server fields in the patch are ignored. The result is validated; undefined if no such policy.
   */
  update(id: string, patch: unknown): Promise<StoredPolicy | undefined>;
  delete(id: string): Promise<boolean>;
  setState(id: string, state: StoredPolicy['state']): Promise<StoredPolicy | undefined>;
  /** The tenant's catalog edition (cloud/ca/catalog.ts EDITIONS); the default until one is set. */
  edition(): Promise<string>;
  /** Sets the edition; an unknown name is refused with CaError ERR_CA_POLICY. */
  setEdition(edition: string): Promise<void>;
  /**
   * Tenant setting: whether device registration must be hardware-backed (TPM-attested); off by
   * default, as in Entra. When on, DRS refuses an unattested join with AADSTS9990220.
   */
  requireHardwareBackedRegistration(): Promise<boolean>;
  setRequireHardwareBackedRegistration(on: boolean): Promise<void>;
  /**
   * A value that differs whenever list() or edition() would answer differently, this process's
   * writes and other processes' alike (SQLite's data_version plus a local write counter). Cheap
   * enough to call on every token request.
   */
  changeToken(): string;
}

export interface Directory {
  readonly tenant: Tenant;
  readonly users: UserStore;
  readonly groups: GroupStore;
  readonly roles: RoleStore;
  readonly devices: DeviceStore;
  readonly applications: ApplicationStore;
  readonly tokens: TokenRecordStore;
  readonly policies: PolicyStore;
  /** Where the data lives, for status lines (no secrets). */
  describe(): string;
  close(): Promise<void>;
}
