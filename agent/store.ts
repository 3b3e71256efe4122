/**
 * The device directory, `<data>/devices/<NAME>/` (0700):
 *
 *   device.json       the device: ids, cloud URL, join and device type, TPM spec, wrapped key
 *                     blobs (TPM) or where the software keys are, the device certificate
 *   cloud-ca.pem      the lab CA this device trusts for the cloud's HTTPS certificate
 *   accounts.json     per user: the session key as a TPM object blob, the PRT sealed under the
 *                     device's sealing key, update and expiry times, the last refusal
 *   tpm/              the built-in simulator's sealed state (--tpm builtin)
 *   keystore.key      the key-file keystore key: seals tpm/ or the software keys
 *   software-keys.sealed   --tpm none only
 *   agent.lock        held while an agent has the device open
 *
 * Every file is 0600 and replaced atomically. Nothing here is a plain secret except the keystore
 * key file (the lab's stand-in for the OS keystore, as `prtlab tpm serve --key-file`).
 */
import { join, resolve } from 'node:path';
import { AgentDeviceError } from './errors.ts';
import { readJsonFile, readPrivateFile, writeJsonFile, writePrivateFile } from './files.ts';
import type { WrappedSessionKey } from './keys/provider.ts';
import type { SoftwareKeyRecord } from './keys/software.ts';
import type { TpmKeyRecord } from './keys/tpm.ts';

export const DEVICES_DIR = 'devices';
export const DEVICE_FILE = 'device.json';
export const CLOUD_CA_FILE = 'cloud-ca.pem';
export const ACCOUNTS_FILE = 'accounts.json';
export const KEYSTORE_FILE = 'keystore.key';
export const AGENT_LOCK_FILE = 'agent.lock';

export const JOIN_KINDS = ['joined', 'hybrid', 'registered'] as const;
export type JoinKind = (typeof JOIN_KINDS)[number];
export const DEVICE_KINDS = [
  'windows',
  'windows-server',
  'surface-hub',
  'teams-room',
  'avd',
  'cloud-pc',
] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];
export const KEYSTORE_KINDS = ['key-file', 'secret-service'] as const;
export type KeystoreKind = (typeof KEYSTORE_KINDS)[number];

// A host-name-like label: what Windows allows in a computer name, and safe as a directory name.
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62})$/;

/** Throws ERR_AGENT_DEVICE unless `name` can name a device (letters, digits, `-`, `_`; 1..63). */
export function checkDeviceName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new AgentDeviceError(
      `bad device name '${String(name).slice(0, 80)}': use 1 to 63 letters, digits, '-' or '_', starting with a letter or digit`,
    );
  }
  return name;
}

/** `<data>/devices/<name>`, absolute. */
export function deviceDir(dataDir: string, name: string): string {
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw new TypeError('dataDir must be a non-empty path');
  }
  return join(resolve(dataDir), DEVICES_DIR, checkDeviceName(name));
}

/** What the broker and the client runner read: who the device is and which cloud it trusts. */
export interface DeviceConfig {
  readonly name: string;
  readonly deviceId: string;
  readonly tenantId: string;
  readonly cloudUrl: string;
  readonly cloudCaPem: string;
  readonly joinType: JoinKind;
  readonly deviceType: DeviceKind;
  readonly osVersion: string;
  /** The --tpm spec, canonical text (agent/tpm-spec.ts). */
  readonly tpm: string;
}

/** device.json. */
export interface DeviceRecord {
  readonly format: 'prtlab-device';
  readonly version: 1;
  readonly name: string;
  /** The device id, from the issued certificate; for a hybrid device, chosen by the device. */
  readonly deviceId: string;
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly cloudUrl: string;
  readonly joinType: JoinKind;
  readonly deviceType: DeviceKind;
  readonly osVersion: string;
  readonly tpm: string;
  /** The keystore key (builtin TPM state, software keys); account names its keystore entry. */
  readonly keystore: { readonly kind: KeystoreKind; readonly account: string };
  /** 'awaiting-sync': a hybrid device whose computer object is not yet in the cloud (§1.5). */
  readonly state: 'registered' | 'awaiting-sync';
  /** The DRS-issued device certificate, base64 DER; null until registered. */
  readonly certificate: string | null;
  /** Hybrid only: the on-premises computer certificate (self-signed), base64 DER. */
  readonly computerCertificate?: string;
  /** Hybrid only: the computer account's SID, signed in ClientIdentity (§2 "Hybrid join"). */
  readonly computerSid?: string;
  /** The LabSystemLabels sent at join (teams-room, avd, cloud-pc). */
  readonly systemLabels: readonly string[];
  readonly keys: TpmKeyRecord | SoftwareKeyRecord;
  readonly createdAt: string;
  readonly registeredAt: string | null;
  /**
   * How DRS judged the registration's TPM attestation, from its answer's lab member
   * `LabAttestation` (cloud/registration/index.ts). Absent in records written before attestation
   * existed, or when the cloud did not say: status shows UNKNOWN then.
   */
  readonly attestation?: DeviceAttestationRecord;
}

export interface DeviceAttestationRecord {
  readonly status: 'verified' | 'absent';
  readonly hardwareBacked: boolean;
  readonly reason: string;
}

/** One user with (or once with) a PRT on this device. */
export interface AccountRecord {
  /** The user's object id. */
  readonly id: string;
  readonly upn: string;
  readonly tenantId: string;
  readonly sessionKey: WrappedSessionKey;
  /** The PRT sealed under the device's sealing key (agent/seal.ts), base64. */
  readonly prt: string;
  readonly kdfVersion: 2;
  /** Lab-clock ms when the PRT was obtained or last renewed (AzureAdPrtUpdateTime). */
  readonly updatedAt: number;
  /** Lab-clock ms when the PRT expires (refresh_token_expires_in after the cloud's answer). */
  readonly expiresAt: number;
  /** 'revoked': the cloud said the PRT, its user or its device is no longer good. */
  readonly state: 'valid' | 'revoked';
  /** The last refusal for this account's PRT, kept for status. */
  readonly lastError?: StoredRefusal;
}

export interface StoredRefusal {
  readonly error: string;
  readonly aadsts: number;
  readonly description: string;
  readonly correlationId: string;
  /** Lab-clock ms. */
  readonly at: number;
}

/** accounts.json. */
export interface AccountsFile {
  readonly format: 'prtlab-device-accounts';
  readonly version: 1;
  /** dsregcmd's DeviceAuthStatus: FAILED once the cloud said the device is disabled or gone. */
  readonly deviceAuth:
    | { readonly status: 'SUCCESS' }
    | ({ readonly status: 'FAILED' } & StoredRefusal);
  readonly accounts: readonly AccountRecord[];
}

export const EMPTY_ACCOUNTS: AccountsFile = Object.freeze({
  format: 'prtlab-device-accounts' as const,
  version: 1 as const,
  deviceAuth: { status: 'SUCCESS' as const },
  accounts: [],
});

function corrupt(file: string, what: string): AgentDeviceError {
  return new AgentDeviceError(`${file} is corrupt: ${what}`);
}

function str(o: Record<string, unknown>, key: string, file: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0)
    throw corrupt(file, `${key} missing or not a string`);
  return v;
}

function oneOf<T extends string>(
  o: Record<string, unknown>,
  key: string,
  set: readonly T[],
  file: string,
): T {
  const v = o[key];
  if (!set.includes(v as T)) throw corrupt(file, `${key} is not one of ${set.join(', ')}`);
  return v as T;
}

function obj(v: unknown, file: string, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw corrupt(file, `${what} is not an object`);
  return v as Record<string, unknown>;
}

/** Reads and checks device.json; ERR_AGENT_DEVICE if the device does not exist or is corrupt. */
export async function readDeviceRecord(dir: string, name: string): Promise<DeviceRecord> {
  const file = join(dir, DEVICE_FILE);
  const raw = await readJsonFile(file);
  if (raw === undefined) throw new AgentDeviceError(`no device '${name}' (no ${file})`);
  const o = obj(raw, file, 'the file');
  if (o.format !== 'prtlab-device' || o.version !== 1)
    throw corrupt(file, 'unknown format or version');
  for (const key of [
    'name',
    'deviceId',
    'tenantId',
    'tenantDomain',
    'cloudUrl',
    'osVersion',
    'tpm',
    'createdAt',
  ]) {
    str(o, key, file);
  }
  oneOf(o, 'joinType', JOIN_KINDS, file);
  oneOf(o, 'deviceType', DEVICE_KINDS, file);
  oneOf(o, 'state', ['registered', 'awaiting-sync'] as const, file);
  const ks = obj(o.keystore, file, 'keystore');
  oneOf(ks, 'kind', KEYSTORE_KINDS, file);
  str(ks, 'account', file);
  const keys = obj(o.keys, file, 'keys');
  oneOf(keys, 'provider', ['tpm', 'software'] as const, file);
  if (o.certificate !== null && typeof o.certificate !== 'string')
    throw corrupt(file, 'certificate');
  if (o.state === 'registered' && typeof o.certificate !== 'string') {
    throw corrupt(file, 'a registered device has no certificate');
  }
  if (!Array.isArray(o.systemLabels) || !o.systemLabels.every((l) => typeof l === 'string')) {
    throw corrupt(file, 'systemLabels');
  }
  if (o.attestation !== undefined) {
    const a = obj(o.attestation, file, 'attestation');
    oneOf(a, 'status', ['verified', 'absent'] as const, file);
    str(a, 'reason', file);
    if (typeof a.hardwareBacked !== 'boolean') throw corrupt(file, 'attestation.hardwareBacked');
  }
  if (o.name !== name) throw corrupt(file, `it names device '${String(o.name)}'`);
  return raw as DeviceRecord;
}

export function writeDeviceRecord(dir: string, record: DeviceRecord): Promise<void> {
  return writeJsonFile(join(dir, DEVICE_FILE), record);
}

export async function readCloudCa(dir: string): Promise<string> {
  const bytes = await readPrivateFile(join(dir, CLOUD_CA_FILE));
  if (bytes === undefined)
    throw new AgentDeviceError(`the device has no ${CLOUD_CA_FILE} in ${dir}`);
  return bytes.toString('utf8');
}

export function writeCloudCa(dir: string, pem: string): Promise<void> {
  return writePrivateFile(join(dir, CLOUD_CA_FILE), pem);
}

export async function readAccounts(dir: string): Promise<AccountsFile> {
  const file = join(dir, ACCOUNTS_FILE);
  const raw = await readJsonFile(file);
  if (raw === undefined) return EMPTY_ACCOUNTS;
  const o = obj(raw, file, 'the file');
  if (o.format !== 'prtlab-device-accounts' || o.version !== 1) {
    throw corrupt(file, 'unknown format or version');
  }
  const auth = obj(o.deviceAuth, file, 'deviceAuth');
  oneOf(auth, 'status', ['SUCCESS', 'FAILED'] as const, file);
  if (!Array.isArray(o.accounts)) throw corrupt(file, 'accounts is not a list');
  for (const a of o.accounts) {
    const acc = obj(a, file, 'an account');
    for (const key of ['id', 'upn', 'tenantId', 'prt']) str(acc, key, file);
    oneOf(acc, 'state', ['valid', 'revoked'] as const, file);
    obj(acc.sessionKey, file, 'sessionKey');
    if (!Number.isFinite(acc.updatedAt) || !Number.isFinite(acc.expiresAt)) {
      throw corrupt(file, 'updatedAt or expiresAt');
    }
  }
  return raw as AccountsFile;
}

export function writeAccounts(dir: string, accounts: AccountsFile): Promise<void> {
  return writeJsonFile(join(dir, ACCOUNTS_FILE), accounts);
}

/** The public view of a device record plus its CA. */
export function configOf(record: DeviceRecord, cloudCaPem: string): DeviceConfig {
  return {
    name: record.name,
    deviceId: record.deviceId,
    tenantId: record.tenantId,
    cloudUrl: record.cloudUrl,
    cloudCaPem,
    joinType: record.joinType,
    deviceType: record.deviceType,
    osVersion: record.osVersion,
    tpm: record.tpm,
  };
}
