/**
 * `prtlab device add`: make a device's keys and register it with the cloud (prt-protocol §2).
 *
 *   joined / registered   a user's DRS token (password sign-in), then POST /EnrollmentServer/device/
 *                         with JoinType 0 or 4, a CSR the TPM signed with the device key, and the
 *                         transport key as a BCRYPT_RSAKEY_BLOB (§1.3)
 *   hybrid                a computer key in the TPM and a self-signed computer certificate
 *                         CN=<device id> (the on-premises object, §1.5); once an administrator has
 *                         pre-created (synced) it, PUT /EnrollmentServer/device/{id} with
 *                         ClientIdentity signed by that key. Until then the device waits in state
 *                         'awaiting-sync' and a second `device add` finishes the join.
 *
 * Everything is made in a staging directory next to the final one and renamed into place only
 * once the cloud answered, so a refused registration leaves nothing behind.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DRS_JOIN_TYPE, encodeRsaBlob } from '../protocol/index.ts';
import { acquireDirLock } from '../tpm-sim/state/dir-lock.ts';
import { computerCertificate, deviceCsr, readIssuedCertificate } from './certificates.ts';
import { type Clock, systemClock } from './clock.ts';
import {
  discoverTenantId,
  drsAccessToken,
  fetchDrsNonce,
  hybridJoinDevice,
  joinDevice,
} from './cloud-api.ts';
import { AgentCloudError, AgentDeviceError } from './errors.ts';
import { checkPrivateDir, ensurePrivateDir, writeJsonFile, writePrivateFile } from './files.ts';
import { type CloudEndpoint, normalizeCloudUrl } from './http.ts';
import { createKeyProvider, keySourceFor, openKeyProvider } from './keys/open.ts';
import type { KeyProvider } from './keys/provider.ts';
import {
  ACCOUNTS_FILE,
  AGENT_LOCK_FILE,
  checkDeviceName,
  configOf,
  DEVICE_KINDS,
  DEVICES_DIR,
  type DeviceAttestationRecord,
  type DeviceConfig,
  type DeviceKind,
  type DeviceRecord,
  deviceDir,
  EMPTY_ACCOUNTS,
  JOIN_KINDS,
  type JoinKind,
  KEYSTORE_KINDS,
  type KeystoreKind,
  readCloudCa,
  readDeviceRecord,
  writeCloudCa,
  writeDeviceRecord,
} from './store.ts';
import { formatTpmSpec, parseTpmSpec } from './tpm-spec.ts';

export const DEFAULT_OS_VERSION = '10.0.22631';

export interface AddDeviceOptions {
  readonly dataDir: string;
  readonly name: string;
  /** Default 'joined'. */
  readonly joinType?: JoinKind;
  /** Default 'windows'. */
  readonly deviceType?: DeviceKind;
  /** Default 10.0.22631 (Windows 11 23H2). */
  readonly osVersion?: string;
  /** A --tpm spec (agent/tpm-spec.ts); default 'builtin'. */
  readonly tpm?: string;
  /** Where the keystore key lives (builtin TPM state, software keys); default 'key-file'. */
  readonly keystore?: KeystoreKind;
  readonly cloudUrl: string;
  /** The lab CA (PEM) the cloud's HTTPS certificate chains to. */
  readonly cloudCaPem: string;
  /** The user who joins or registers the device (required for joined and registered). */
  readonly user?: { readonly upn: string; readonly password: string };
  /** Hybrid: the tenant (domain or id) the on-premises directory syncs to. */
  readonly tenant?: string;
  /**
   * Joined and registered devices on a TPM: send TPM attestation with the registration (default
   * true; `--no-attest` sets false). Ignored for `--tpm none` (software keys cannot attest) and
   * for hybrid joins (the lab's hybrid join body takes no attestation).
   */
  readonly attest?: boolean;
  readonly clock?: Clock;
}

export interface AddDeviceResult {
  readonly config: DeviceConfig;
  readonly state: 'registered' | 'awaiting-sync';
  /** Hybrid: the computer certificate (PEM) an administrator pre-creates the device with. */
  readonly computerCertificatePem?: string;
  /** Hybrid: where that PEM was written. */
  readonly computerCertificatePath?: string;
}

/** The file a hybrid device writes its computer certificate to, for `cloud device precreate`. */
export const COMPUTER_CERT_FILE = 'computer-certificate.pem';

/**
 * DRS `DeviceType` becomes the device object's operatingSystem, which Conditional Access reads
 * (cloud/ca/catalog.ts): Windows Server and Surface Hub ("Windows 10 Team") by their OS name.
 */
export function drsDeviceType(kind: DeviceKind): string {
  if (kind === 'windows-server') return 'Windows Server';
  if (kind === 'surface-hub') return 'Windows 10 Team';
  return 'Windows';
}

/**
 * The `LabSystemLabels` a device kind claims at join (a lab convention: Entra's provisioning
 * services set these labels, and the lab has none; cloud/registration/request.ts).
 */
export function labSystemLabels(kind: DeviceKind): string[] {
  if (kind === 'teams-room') return ['MicrosoftTeamsRoom'];
  if (kind === 'avd') return ['AzureVirtualDesktop'];
  if (kind === 'cloud-pc') return ['CloudPC'];
  return [];
}

const OS_VERSION = /^\d{1,3}\.\d{1,3}\.\d{1,6}(?:\.\d{1,6})?$/;

function checkOptions(o: AddDeviceOptions) {
  if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object');
  checkDeviceName(o.name);
  const joinType = o.joinType ?? 'joined';
  if (!JOIN_KINDS.includes(joinType)) {
    throw new AgentDeviceError(`--join must be one of ${JOIN_KINDS.join(', ')}`);
  }
  const deviceType = o.deviceType ?? 'windows';
  if (!DEVICE_KINDS.includes(deviceType)) {
    throw new AgentDeviceError(`--device-type must be one of ${DEVICE_KINDS.join(', ')}`);
  }
  const osVersion = o.osVersion ?? DEFAULT_OS_VERSION;
  if (!OS_VERSION.test(osVersion)) {
    throw new AgentDeviceError(`--os-version must look like 10.0.22631 or 10.0.22631.4460`);
  }
  const keystore = o.keystore ?? 'key-file';
  if (!KEYSTORE_KINDS.includes(keystore)) {
    throw new AgentDeviceError(`--keystore must be one of ${KEYSTORE_KINDS.join(', ')}`);
  }
  const spec = parseTpmSpec(o.tpm ?? 'builtin');
  const cloudUrl = normalizeCloudUrl(o.cloudUrl);
  if (typeof o.cloudCaPem !== 'string' || !o.cloudCaPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AgentDeviceError('the cloud CA must be a PEM certificate');
  }
  if (joinType === 'hybrid') {
    if (!o.tenant)
      throw new AgentDeviceError('a hybrid device needs the tenant it syncs to (--tenant)');
  } else if (!o.user || typeof o.user.upn !== 'string' || typeof o.user.password !== 'string') {
    throw new AgentDeviceError(
      `a ${joinType} device needs the user who ${joinType === 'joined' ? 'joins' : 'registers'} it (--user, --password)`,
    );
  } else if (!o.user.upn.includes('@')) {
    throw new AgentDeviceError('--user must be a UPN (name@domain)');
  }
  return { joinType, deviceType, osVersion, keystore, spec, cloudUrl };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The DRS body members both joins share (§2), plus the lab's LabSystemLabels when not empty. */
async function joinFacts(
  provider: KeyProvider,
  record: { deviceType: DeviceKind; osVersion: string; name: string },
  targetDomain: string,
) {
  const csr = await deviceCsr(provider.devicePublicKey, (data) => provider.signWithDeviceKey(data));
  return {
    csr: { Type: 'pkcs10', Data: csr.toString('base64') },
    facts: {
      TransportKey: encodeRsaBlob(provider.transportPublicKey).toString('base64'),
      TargetDomain: targetDomain,
      DeviceType: drsDeviceType(record.deviceType),
      OSVersion: record.osVersion,
      DeviceDisplayName: record.name,
    },
  };
}

const ATTRIBUTES = { ReuseDevice: 'true', ReturnClientSid: 'true' };

/** The lab member `LabAttestation` of a join answer (cloud/registration/index.ts), if well-formed. */
function attestationOf(json: Record<string, unknown>): DeviceAttestationRecord | undefined {
  const a = json.LabAttestation as Record<string, unknown> | undefined;
  if (typeof a !== 'object' || a === null) return undefined;
  if (a.Status !== 'verified' && a.Status !== 'absent') return undefined;
  if (typeof a.HardwareBacked !== 'boolean' || typeof a.Reason !== 'string') return undefined;
  return {
    status: a.Status,
    hardwareBacked: a.HardwareBacked,
    reason: a.Reason.slice(0, 512) || '-',
  };
}

async function postJoin(
  cloud: CloudEndpoint,
  bearer: string,
  body: Record<string, unknown>,
  osVersion: string,
): Promise<{ der: Buffer; attestation: DeviceAttestationRecord | undefined }> {
  const { der, answer } = await joinDevice(cloud, bearer, body, osVersion);
  return { der, attestation: attestationOf(answer) };
}

/**
 * POST /EnrollmentServer/device/ (§2), with TPM attestation when `attest` and the keys are in a
 * TPM: a DRS nonce (the tenant's nonce service), then TPM2_Certify of dk and tk over it
 * (keys/attestation.ts). If the cloud does not trust this TPM's manufacturer (AADSTS9990215:
 * a cloud on another data directory than the TPM's), the device registers once more without
 * attestation, as a device without a usable TPM attestation would, and status says ABSENT with
 * the cloud's reason; if that is refused too (the tenant requires attestation, 9990220), the
 * first refusal is the one reported.
 */
async function joinWithAttestation(
  provider: KeyProvider,
  cloud: CloudEndpoint,
  bearer: string,
  body: Record<string, unknown>,
  domain: string,
  osVersion: string,
  attest: boolean,
): Promise<{ der: Buffer; attestation: DeviceAttestationRecord | undefined }> {
  if (!attest || !provider.attest) return postJoin(cloud, bearer, body, osVersion);
  const nonce = await fetchDrsNonce(cloud, domain);
  const fields = await provider.attest(nonce);
  if (!fields) return postJoin(cloud, bearer, body, osVersion);
  try {
    return await postJoin(cloud, bearer, { ...body, ...fields }, osVersion);
  } catch (err) {
    if (!(err instanceof AgentCloudError) || err.refusal.aadsts !== 9990215) throw err;
    try {
      return await postJoin(cloud, bearer, body, osVersion);
    } catch (retryErr) {
      if (retryErr instanceof AgentCloudError && retryErr.refusal.aadsts === 9990220) throw err;
      throw retryErr;
    }
  }
}

/** `<sid>.<yyyy-MM-dd HH:mm:ss>Z`, the ClientIdentity text (§2 "Hybrid join"). */
function clientIdentitySid(sid: string, atMs: number): string {
  return `${sid}.${new Date(atMs).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** A domain computer SID, S-1-5-21-<three random sub-authorities>-<RID>, for the lab's AD. */
function newComputerSid(): string {
  const r = randomBytes(12);
  return `S-1-5-21-${r.readUInt32BE(0)}-${r.readUInt32BE(4)}-${r.readUInt32BE(8)}-${1000 + (randomBytes(2).readUInt16BE(0) % 50_000)}`;
}

/**
 * The hybrid join (§1.5, §2): PUT with ClientIdentity. Returns the new record, or undefined when
 * the cloud does not know the device yet (AADSTS700003: not pre-created).
 */
async function tryHybridJoin(
  provider: KeyProvider,
  record: DeviceRecord,
  caPem: string,
  clock: Clock,
): Promise<DeviceRecord | undefined> {
  const { csr, facts } = await joinFacts(provider, record, record.tenantDomain);
  if (!record.computerSid) throw new AgentDeviceError('device.json is corrupt: no computerSid');
  const sid = clientIdentitySid(record.computerSid, clock.now());
  const signed = await provider.signWithComputerKey(Buffer.from(sid, 'utf8'));
  const body = {
    CertificateRequest: csr,
    JoinType: DRS_JOIN_TYPE.hybrid,
    attributes: ATTRIBUTES,
    ServerAdJoinData: {
      ...facts,
      TargetDomainId: record.tenantId,
      ClientIdentity: { Type: 'sha256signed', Sid: sid, SignedBlob: signed.toString('base64') },
    },
    ...(record.systemLabels.length ? { LabSystemLabels: record.systemLabels } : {}),
  };
  let der: Buffer;
  try {
    der = await hybridJoinDevice(
      { url: record.cloudUrl, caPem },
      record.deviceId,
      body,
      record.osVersion,
    );
  } catch (err) {
    if (err instanceof AgentCloudError && err.refusal.aadsts === 700003) return undefined;
    throw err;
  }
  const issued = readIssuedCertificate(der, provider.devicePublicKey);
  if (issued.deviceId !== record.deviceId || issued.tenantId !== record.tenantId) {
    throw new AgentDeviceError(
      'the device certificate from the cloud names another device or tenant',
    );
  }
  return {
    ...record,
    state: 'registered',
    certificate: der.toString('base64'),
    registeredAt: new Date(clock.now()).toISOString(),
    // The lab's hybrid join sends no attestation (the cloud records the same, cloud/registration).
    attestation: {
      status: 'absent',
      hardwareBacked: false,
      reason: 'hybrid join: the lab hybrid join carries no TPM attestation',
    },
  };
}

function pem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** Finishes a hybrid device left 'awaiting-sync' by an earlier `device add`. */
async function resumeHybrid(dir: string, name: string, clock: Clock): Promise<AddDeviceResult> {
  // The same lock an open agent holds: the record is rewritten below.
  const lock = await acquireDirLock(join(dir, AGENT_LOCK_FILE), 'device directory');
  try {
    const record = await readDeviceRecord(dir, name);
    const caPem = await readCloudCa(dir);
    const keySource = keySourceFor(dir, record.keystore);
    const provider = await openKeyProvider(parseTpmSpec(record.tpm), dir, keySource, record.keys);
    try {
      const joined = await tryHybridJoin(provider, record, caPem, clock);
      if (joined) await writeDeviceRecord(dir, joined);
      return hybridResult(joined ?? record, caPem, dir);
    } finally {
      await provider.close();
    }
  } finally {
    await lock.release();
  }
}

function hybridResult(record: DeviceRecord, caPem: string, dir: string): AddDeviceResult {
  const der = Buffer.from(record.computerCertificate ?? '', 'base64');
  return {
    config: configOf(record, caPem),
    state: record.state,
    computerCertificatePem: pem(der),
    computerCertificatePath: join(dir, COMPUTER_CERT_FILE),
  };
}

/**
 * Adds a device: keys in the TPM (or software keys for --tpm none), registration with the cloud,
 * and its directory `<data>/devices/<name>`. A hybrid device may come back 'awaiting-sync' (see
 * above); calling addDevice again with the same name then completes it.
 */
export async function addDevice(options: AddDeviceOptions): Promise<AddDeviceResult> {
  const o = checkOptions(options);
  const clock = options.clock ?? systemClock;
  const finalDir = deviceDir(options.dataDir, options.name);
  const devicesDir = join(resolve(options.dataDir), DEVICES_DIR);
  await ensurePrivateDir(devicesDir);
  if (await exists(finalDir)) {
    await checkPrivateDir(finalDir);
    const existing = await readDeviceRecord(finalDir, options.name).catch((err: unknown) => {
      throw new AgentDeviceError(
        `${finalDir} already exists but holds no readable device; remove it to add '${options.name}'`,
        { cause: err },
      );
    });
    if (existing.state === 'awaiting-sync' && o.joinType === 'hybrid') {
      return resumeHybrid(finalDir, options.name, clock);
    }
    throw new AgentDeviceError(`device '${options.name}' already exists in ${finalDir}`);
  }

  const staging = await mkdtemp(join(devicesDir, `.add-${options.name}-`));
  let provider: KeyProvider | undefined;
  try {
    await ensurePrivateDir(staging);
    const keystore = { kind: o.keystore, account: randomUUID() };
    const keySource = keySourceFor(staging, keystore);
    const created = await createKeyProvider(o.spec, staging, keySource, {
      computerKey: o.joinType === 'hybrid',
    });
    provider = created.provider;
    const cloud = { url: o.cloudUrl, caPem: options.cloudCaPem };
    const base = {
      format: 'prtlab-device' as const,
      version: 1 as const,
      name: options.name,
      cloudUrl: o.cloudUrl,
      joinType: o.joinType,
      deviceType: o.deviceType,
      osVersion: o.osVersion,
      tpm: formatTpmSpec(o.spec),
      keystore,
      systemLabels: labSystemLabels(o.deviceType),
      keys: created.record,
      createdAt: new Date(clock.now()).toISOString(),
    };
    let record: DeviceRecord;
    if (o.joinType === 'hybrid') {
      const tenantId = await discoverTenantId(cloud, options.tenant!);
      const deviceId = randomUUID();
      const computerDer = await computerCertificate(
        deviceId,
        provider.computerPublicKey!,
        (data) => provider!.signWithComputerKey(data),
        new Date(clock.now()),
      );
      const waiting = {
        ...base,
        deviceId,
        tenantId,
        tenantDomain: options.tenant!,
        state: 'awaiting-sync' as const,
        certificate: null,
        computerCertificate: computerDer.toString('base64'),
        computerSid: newComputerSid(),
        registeredAt: null,
      };
      record = (await tryHybridJoin(provider, waiting, options.cloudCaPem, clock)) ?? waiting;
      await writePrivateFile(join(staging, COMPUTER_CERT_FILE), pem(computerDer));
    } else {
      const user = options.user!;
      const bearer = await drsAccessToken(cloud, user.upn, user.password);
      const domain = user.upn.slice(user.upn.lastIndexOf('@') + 1);
      const { csr, facts } = await joinFacts(provider, { ...base }, domain);
      const body = {
        CertificateRequest: csr,
        ...facts,
        JoinType: o.joinType === 'joined' ? DRS_JOIN_TYPE.joined : DRS_JOIN_TYPE.registered,
        attributes: ATTRIBUTES,
        ...(base.systemLabels.length ? { LabSystemLabels: base.systemLabels } : {}),
      };
      const { der, attestation } = await joinWithAttestation(
        provider,
        cloud,
        bearer,
        body,
        domain,
        o.osVersion,
        options.attest ?? true,
      );
      const issued = readIssuedCertificate(der, provider.devicePublicKey);
      record = {
        ...base,
        deviceId: issued.deviceId,
        tenantId: issued.tenantId,
        tenantDomain: domain,
        state: 'registered',
        certificate: der.toString('base64'),
        registeredAt: new Date(clock.now()).toISOString(),
        ...(attestation ? { attestation } : {}),
      };
    }
    await writeDeviceRecord(staging, record);
    await writeCloudCa(staging, options.cloudCaPem);
    await writeJsonFile(join(staging, ACCOUNTS_FILE), EMPTY_ACCOUNTS);
    await provider.close();
    provider = undefined;
    try {
      await rename(staging, finalDir);
    } catch (err) {
      throw new AgentDeviceError(`cannot move the new device into ${finalDir}`, { cause: err });
    }
    return o.joinType === 'hybrid'
      ? hybridResult(record, options.cloudCaPem, finalDir)
      : { config: configOf(record, options.cloudCaPem), state: 'registered' };
  } catch (err) {
    await provider?.close().catch(() => {});
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}
