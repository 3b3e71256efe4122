/** `prtlab cloud ...`: serve the simulated Entra ID, print the CA path, manage device objects. */
import { readFile } from 'node:fs/promises';
import { ensureCloudDirs, resolveDataDir } from '../cloud/data-dir.ts';
import type { Device, DevicePatch } from '../cloud/directory/types.ts';
import { DirectoryError, echo } from '../cloud/errors.ts';
import { certificateThumbprint, loadOrCreateAuthorities } from '../cloud/pki/authority.ts';
import { parseOnPremDeviceCertificate } from '../cloud/pki/device-cert.ts';
import { addTrustedManufacturer } from '../cloud/registration/index.ts';
import { coreRoutes } from '../cloud/routes.ts';
import { DEFAULT_CLOUD_HOST, DEFAULT_CLOUD_PORT, startCloud } from '../cloud/server.ts';
import { tokenRoutes } from '../cloud/token-service/service.ts';
import {
  expectPositionals,
  parseDataArgs,
  parseSubcommand,
  printList,
  subcommand,
  withDirectory,
} from './cloud-data.ts';
import { type Io, usageError, waitForStop } from './io.ts';
import {
  CLOUD_CA_HELP,
  CLOUD_DEVICE_HELP,
  CLOUD_HELP,
  CLOUD_SERVE_HELP,
  CLOUD_SETTING_HELP,
  CLOUD_TRUST_TPM_CA_HELP,
} from './usage.ts';

export async function cloudCommand(argv: string[], io: Io): Promise<number> {
  const split = subcommand(argv, CLOUD_HELP, io);
  if (typeof split === 'number') return split;
  const [sub, rest] = split;
  if (sub === 'serve') return cloudServe(rest, io);
  if (sub === 'ca') return cloudCa(rest, io);
  if (sub === 'device') return cloudDevice(rest, io);
  if (sub === 'trust-tpm-ca') return cloudTrustTpmCa(rest, io);
  if (sub === 'setting') return cloudSetting(rest, io);
  throw usageError(`unknown subcommand 'cloud ${sub}' (see prtlab cloud --help)`);
}

async function cloudServe(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(
    argv,
    {
      host: { type: 'string', default: DEFAULT_CLOUD_HOST },
      port: { type: 'string', default: String(DEFAULT_CLOUD_PORT) },
      'allow-remote': { type: 'boolean', default: false },
    },
    CLOUD_SERVE_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  expectPositionals(positionals, [], 'cloud serve');
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    throw usageError(`--port must be 0..65535, not ${values.port}`);
  }
  const cloud = await startCloud({
    dataDir: resolveDataDir(values.data),
    host: values.host,
    port,
    allowRemote: values['allow-remote'],
    log: (line) => io.err(`prtlab cloud: ${line}`),
    routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
  });
  io.out(
    `prtlab cloud: ${cloud.caCreated ? 'created the lab CA and device CA' : 'loaded the lab CA'}\n` +
      `prtlab cloud: ${cloud.directory.describe()}\n` +
      `prtlab cloud: tenant ${cloud.tenant.id} (${cloud.tenant.domain})\n` +
      `prtlab cloud: listening on ${cloud.url}\n` +
      `prtlab cloud: trust ${cloud.caPath}  (curl --cacert ${cloud.caPath} ${cloud.url}/common/discovery/keys)\n`,
  );
  await waitForStop(io);
  await cloud.close();
  io.out('prtlab cloud: stopped\n');
  return 0;
}

async function cloudCa(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, {}, CLOUD_CA_HELP, io);
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  expectPositionals(positionals, [], 'cloud ca');
  const paths = await ensureCloudDirs(resolveDataDir(values.data));
  const { created } = await loadOrCreateAuthorities(paths);
  if (created) io.err(`prtlab cloud: created the lab CA and device CA in ${paths.caDir}`);
  // Only the path on stdout, so `--cacert "$(prtlab cloud ca)"` works.
  io.out(`${paths.labCaCert}\n`);
  return 0;
}

/** `prtlab cloud trust-tpm-ca FILE`: trust a TPM manufacturer CA for attested registration. */
async function cloudTrustTpmCa(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, {}, CLOUD_TRUST_TPM_CA_HELP, io);
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [file] = expectPositionals(positionals, ['FILE'], 'cloud trust-tpm-ca');
  const paths = await ensureCloudDirs(resolveDataDir(values.data));
  io.out(`${await addTrustedManufacturer(paths.root, file!)}\n`);
  return 0;
}

/**
 * `prtlab cloud setting require-attestation [on|off]`: prints or sets the tenant setting
 * requireHardwareBackedRegistration (off by default; cloud/registration refuses unattested
 * registrations with AADSTS9990220 when on). Applies from the next registration.
 */
async function cloudSetting(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, {}, CLOUD_SETTING_HELP, io);
  if (typeof args === 'number') return args;
  const { values, positionals } = args;
  const [name, value] = positionals;
  if (name !== 'require-attestation' || positionals.length > 2) {
    throw usageError('cloud setting: expected require-attestation [on|off]');
  }
  if (value !== undefined && value !== 'on' && value !== 'off') {
    throw usageError(`cloud setting require-attestation: expected on or off, not '${echo(value)}'`);
  }
  const now = await withDirectory(values.data, async (d) => {
    if (value !== undefined) await d.policies.setRequireHardwareBackedRegistration(value === 'on');
    return d.policies.requireHardwareBackedRegistration();
  });
  io.out(`require-attestation ${now ? 'on' : 'off'}\n`);
  return 0;
}

async function cloudDevice(argv: string[], io: Io): Promise<number> {
  const args = parseSubcommand(
    argv,
    {
      json: { type: 'boolean', default: false },
      cert: { type: 'string' },
      name: { type: 'string' },
      compliant: { type: 'string' },
      'enrollment-profile': { type: 'string' },
      'profile-type': { type: 'string' },
      labels: { type: 'string' },
    },
    CLOUD_DEVICE_HELP,
    io,
  );
  if (typeof args === 'number') return args;
  const { sub, values, positionals } = args;
  const only = (allowed: readonly string[]) => {
    const flags = [
      'json',
      'cert',
      'name',
      'compliant',
      'enrollment-profile',
      'profile-type',
      'labels',
    ] as const;
    for (const flag of flags) {
      const given = flag === 'json' ? values.json : values[flag] !== undefined;
      if (given && !allowed.includes(flag)) {
        throw usageError(`cloud device ${sub}: --${flag} does not apply`);
      }
    }
  };
  switch (sub) {
    case 'list': {
      only(['json']);
      expectPositionals(positionals, [], 'cloud device list');
      const devices = await withDirectory(values.data, (d) => d.devices.list());
      printList(io, devices, values.json, {
        none: 'no devices',
        json: deviceJson,
        // HW: hardware-backed, the registration's TPM attestation was verified (--json: why).
        header: ['DEVICE ID', 'NAME', 'JOIN', 'TRUST', 'STATE', 'ENABLED', 'HW', 'THUMBPRINT'],
        row: (d) => [
          d.id,
          d.displayName,
          String(d.joinType),
          d.trustType,
          d.state,
          d.enabled ? 'yes' : 'no',
          d.hardwareBacked ? 'yes' : 'no',
          d.certThumbprint ?? '-',
        ],
      });
      return 0;
    }
    case 'disable':
    case 'enable': {
      only([]);
      const [id] = expectPositionals(positionals, ['ID'], `cloud device ${sub}`);
      const device = await withDirectory(values.data, async (d) => {
        const found = await d.devices.find(id!);
        if (!found) throw notFound(id!);
        return d.devices.setEnabled(found.id, sub === 'enable');
      });
      io.out(`${sub}d device ${device.id} (${device.displayName})\n`);
      return 0;
    }
    case 'set': {
      only(['compliant', 'enrollment-profile', 'profile-type', 'labels']);
      const [id] = expectPositionals(positionals, ['ID'], 'cloud device set');
      const patch = managementPatch(values);
      if (Object.keys(patch).length === 0)
        throw usageError(
          'cloud device set: give at least one of --compliant, --enrollment-profile, --profile-type, --labels',
        );
      const device = await withDirectory(values.data, async (d) => {
        const found = await d.devices.find(id!);
        if (!found) throw notFound(id!);
        return d.devices.update(found.id, patch);
      });
      io.out(
        `device ${device.id} (${device.displayName}): isCompliant ${device.isCompliant ?? 'unknown'}, ` +
          `enrollmentProfileName ${device.enrollmentProfileName ?? '-'}, profileType ${device.profileType ?? '-'}, ` +
          `systemLabels [${device.systemLabels.join(', ')}]\n`,
      );
      return 0;
    }
    case 'delete': {
      only([]);
      const [id] = expectPositionals(positionals, ['ID'], 'cloud device delete');
      const device = await withDirectory(values.data, async (d) => {
        const found = await d.devices.find(id!);
        if (!found) throw notFound(id!);
        await d.devices.delete(found.id);
        return found;
      });
      io.out(`deleted device ${device.id} (${device.displayName}); its tokens are revoked\n`);
      return 0;
    }
    case 'precreate': {
      only(['cert', 'name']);
      expectPositionals(positionals, [], 'cloud device precreate');
      if (values.cert === undefined)
        throw usageError('cloud device precreate: --cert PEM_FILE is required');
      let data: Buffer;
      try {
        data = await readFile(values.cert);
      } catch (err) {
        throw usageError(
          `cannot read ${values.cert}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        );
      }
      const onPrem = parseOnPremDeviceCertificate(data);
      const device = await withDirectory(values.data, (d) =>
        d.devices.precreate({
          id: onPrem.deviceId,
          displayName: values.name ?? onPrem.deviceId,
          onPremCertificate: onPrem.der,
        }),
      );
      io.out(
        `pre-created hybrid device ${device.id} (${device.displayName}); on-premises certificate ${onPrem.thumbprint}\n`,
      );
      return 0;
    }
    default:
      throw usageError(`unknown subcommand 'cloud device ${sub}' (see prtlab cloud device --help)`);
  }
}

function notFound(id: string): DirectoryError {
  return new DirectoryError(700003, `no device with device id or object id '${echo(id)}'`);
}

/**
 * `cloud device set` options as a directory patch: what device management (Intune, Autopilot,
 * the Windows 365 and AVD services) would record. An empty value clears a text field;
 * `--compliant unknown` clears the compliance state.
 */
function managementPatch(values: {
  compliant?: string | undefined;
  'enrollment-profile'?: string | undefined;
  'profile-type'?: string | undefined;
  labels?: string | undefined;
}): DevicePatch {
  const patch: DevicePatch = {};
  if (values.compliant !== undefined) {
    const v = values.compliant.toLowerCase();
    if (v !== 'true' && v !== 'false' && v !== 'unknown')
      throw usageError('cloud device set: --compliant takes true, false or unknown');
    patch.isCompliant = v === 'unknown' ? null : v === 'true';
  }
  const text = (v: string | undefined) => (v === undefined ? undefined : v === '' ? null : v);
  const profile = text(values['enrollment-profile']);
  if (profile !== undefined) patch.enrollmentProfileName = profile;
  const type = text(values['profile-type']);
  if (type !== undefined) patch.profileType = type;
  if (values.labels !== undefined)
    patch.systemLabels = values.labels === '' ? [] : values.labels.split(',').map((l) => l.trim());
  return patch;
}

function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id,
    objectId: d.objectId,
    displayName: d.displayName,
    joinType: d.joinType,
    trustType: d.trustType,
    state: d.state,
    enabled: d.enabled,
    operatingSystem: d.operatingSystem,
    operatingSystemVersion: d.operatingSystemVersion,
    deviceType: d.deviceType,
    certThumbprint: d.certThumbprint,
    transportKey: d.transportKey?.toString('base64') ?? null,
    onPremCertificateThumbprint: d.onPremCertificate
      ? certificateThumbprint(d.onPremCertificate)
      : null,
    registeringUserId: d.registeringUserId,
    systemLabels: d.systemLabels,
    isCompliant: d.isCompliant,
    enrollmentProfileName: d.enrollmentProfileName,
    profileType: d.profileType,
    // Lab fields (cloud/registration/attestation.ts): the registration's TPM attestation.
    hardwareBacked: d.hardwareBacked,
    attestation: d.attestation,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
  };
}
