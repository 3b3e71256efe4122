/**
 * The victim's lab (attacks/lab.ts) and the tenant settings a replay may set: the cloud and the
 * victim's devices share the lab's data directory, so the built-in TPM's EK certificate chains to
 * a CA the cloud trusts and the victim's device registers TPM-attested, also while the tenant
 * requires attestation; the settings go back to their defaults when the runner resets them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VictimLab } from '../../attacks/lab.ts';
import { TENANT_SETTINGS } from '../../attacks/model.ts';

describe("the victim's lab", () => {
  let root: string;
  let lab: VictimLab;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'prtlab-attack-lab-'));
    lab = await VictimLab.start(root);
  }, 60_000);

  afterAll(async () => {
    await lab?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('starts with every tenant setting at its default', async () => {
    expect(await lab.tenantSettings()).toEqual({ requireAttestation: false });
    expect(TENANT_SETTINGS.requireAttestation.default).toBe(false);
  });

  it("registers the victim's device TPM-attested while the tenant requires attestation", async () => {
    await lab.setTenantSettings({ requireAttestation: true });
    expect(await lab.tenantSettings()).toEqual({ requireAttestation: true });
    expect(await lab.cloud.directory.policies.requireHardwareBackedRegistration()).toBe(true);
    // An unattested join would be refused (9990220): the device exists only if DRS verified it.
    const device = await lab.device();
    const registered = await lab.cloud.directory.devices.list();
    expect(registered).toHaveLength(1);
    expect(registered[0]?.displayName).toBe(device.name);
    expect(registered[0]?.hardwareBacked).toBe(true);
    expect(registered[0]?.attestation.status).toBe('verified');
  }, 60_000);

  it('puts the tenant settings back to their defaults, and leaves unnamed ones alone', async () => {
    await lab.setTenantSettings({ requireAttestation: true });
    await lab.setTenantSettings({});
    expect(await lab.tenantSettings()).toEqual({ requireAttestation: true });
    await lab.resetTenantSettings();
    expect(await lab.tenantSettings()).toEqual({ requireAttestation: false });
    expect(await lab.cloud.directory.policies.requireHardwareBackedRegistration()).toBe(false);
  });
});
