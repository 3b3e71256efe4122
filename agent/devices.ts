/** Opening, reading, listing and removing devices in a data directory. */
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DeviceAgent, type OpenDeviceAgentOptions } from './agent.ts';
import { AgentDeviceError, isAgentError } from './errors.ts';
import { checkPrivateDir } from './files.ts';
import {
  configOf,
  DEVICES_DIR,
  type DeviceConfig,
  deviceDir,
  readCloudCa,
  readDeviceRecord,
} from './store.ts';

/** Opens a device's agent (see DeviceAgent); one agent per device at a time. */
export function openDeviceAgent(options: OpenDeviceAgentOptions): Promise<DeviceAgent> {
  return DeviceAgent.open(options);
}

/** A device's configuration, without opening its TPM: what the broker and client runner need. */
export async function loadDeviceConfig(dataDir: string, name: string): Promise<DeviceConfig> {
  const dir = deviceDir(dataDir, name);
  await checkPrivateDir(dir).catch((err) => {
    throw new AgentDeviceError(`no device '${name}' in ${dataDir}`, { cause: err });
  });
  return configOf(await readDeviceRecord(dir, name), await readCloudCa(dir));
}

/** Every device in the data directory, with its configuration or why it cannot be read. */
export async function listDevices(
  dataDir: string,
): Promise<Array<{ name: string; config?: DeviceConfig; error?: string }>> {
  let names: string[];
  try {
    names = await readdir(join(resolve(dataDir), DEVICES_DIR));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AgentDeviceError(`cannot list ${join(resolve(dataDir), DEVICES_DIR)}`, {
      cause: err,
    });
  }
  const out: Array<{ name: string; config?: DeviceConfig; error?: string }> = [];
  // Names starting with a dot are staging directories of a `device add` in progress.
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    try {
      out.push({ name, config: await loadDeviceConfig(dataDir, name) });
    } catch (err) {
      if (!isAgentError(err)) throw err;
      out.push({ name, error: err.message });
    }
  }
  return out;
}

/**
 * Removes a device: first from the cloud (DELETE /EnrollmentServer/device/{id}, proven with the
 * device key, like `dsregcmd /leave`), then its directory, with its keys and TPM state. With
 * `localOnly` the cloud is not asked (a device the cloud already deleted).
 */
export async function removeDevice(options: {
  dataDir: string;
  name: string;
  localOnly?: boolean;
}): Promise<{ leftCloud: boolean }> {
  const dir = deviceDir(options.dataDir, options.name);
  let leftCloud = false;
  if (!options.localOnly) {
    const agent = await DeviceAgent.open({ dataDir: options.dataDir, name: options.name });
    try {
      leftCloud = await agent.leave();
    } finally {
      await agent.close();
    }
  } else {
    await checkPrivateDir(dir).catch((err) => {
      throw new AgentDeviceError(`no device '${options.name}' in ${options.dataDir}`, {
        cause: err,
      });
    });
  }
  await rm(dir, { recursive: true, force: true });
  return { leftCloud };
}
