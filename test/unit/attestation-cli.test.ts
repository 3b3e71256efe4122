/**
 * The attested-registration commands (issue 7): `prtlab cloud setting require-attestation
 * [on|off]` (the tenant setting requireHardwareBackedRegistration) and `prtlab cloud trust-tpm-ca
 * FILE` (a TPM manufacturer CA DRS accepts EK certificates from).
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteDirectory } from '../../cloud/directory/sqlite.ts';
import {
  TRUSTED_TPM_MANUFACTURERS_DIR,
  trustedManufacturers,
} from '../../cloud/registration/trusted-manufacturers.ts';
import { loadOrCreateManufacturerCa } from '../../tpm-sim/index.ts';
import { removeDir, runCli, tempDir } from '../shared/cli.ts';
import { dayCertificate } from '../shared/cloud.ts';

let dir: string;

beforeEach(async () => {
  dir = await tempDir('prtlab-attest-cli-');
});

afterEach(() => removeDir(dir));

const setting = (...args: string[]) =>
  runCli(['cloud', 'setting', 'require-attestation', ...args, '--data', dir]);

describe('prtlab cloud setting require-attestation', () => {
  it('is off by default; on and off set it, and the directory keeps it', async () => {
    expect(await setting()).toEqual({ code: 0, out: 'require-attestation off\n', err: '' });
    expect(await setting('on')).toEqual({ code: 0, out: 'require-attestation on\n', err: '' });
    expect((await setting()).out).toBe('require-attestation on\n');
    // What DRS reads at each registration (cloud/registration).
    const directory = await openSqliteDirectory({ path: join(dir, 'cloud', 'directory.sqlite') });
    try {
      expect(await directory.policies.requireHardwareBackedRegistration()).toBe(true);
    } finally {
      await directory.close();
    }
    expect((await setting('off')).out).toBe('require-attestation off\n');
    expect((await setting()).out).toBe('require-attestation off\n');
  });

  it('refuses a bad value, another setting name or extra arguments (usage error, exit 2)', async () => {
    expect((await setting('on')).code).toBe(0);
    for (const argv of [
      ['cloud', 'setting', 'require-attestation', 'yes', '--data', dir],
      ['cloud', 'setting', 'require-attestation', 'ON', '--data', dir],
      ['cloud', 'setting', 'require-attestation', 'on', 'off', '--data', dir],
      ['cloud', 'setting', 'require-mfa', 'on', '--data', dir],
      ['cloud', 'setting', '--data', dir],
    ]) {
      const r = await runCli(argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/\[ERR_USAGE\]\n$/);
    }
    expect((await setting('yes')).err).toContain("expected on or off, not 'yes'");
    // None of them changed the setting.
    expect((await setting()).out).toBe('require-attestation on\n');
  });

  it('has help', async () => {
    const r = await runCli(['cloud', 'setting', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: prtlab cloud setting require-attestation \[on\|off\]/);
    expect(r.out).toContain('AADSTS9990220');
    expect(r.out).toContain('--data');
  });
});

describe('prtlab cloud trust-tpm-ca', () => {
  const trustedDir = () => join(dir, 'cloud', TRUSTED_TPM_MANUFACTURERS_DIR);

  it('copies a PEM CA certificate into the trusted directory, named by its fingerprint', async () => {
    // Another lab's TPM manufacturer CA: not trusted by this cloud until added.
    const other = await loadOrCreateManufacturerCa(join(dir, 'other-lab'));
    const file = join(dir, 'other-lab', 'tpm-manufacturer', 'ca.pem');
    const fingerprint = new X509Certificate(other.certDer).fingerprint256
      .replaceAll(':', '')
      .toLowerCase();
    expect(await trustedManufacturers(join(dir, 'cloud'))).toEqual([]);

    const r = await runCli(['cloud', 'trust-tpm-ca', file, '--data', dir]);
    expect(r.code, r.err).toBe(0);
    const target = join(trustedDir(), `${fingerprint}.pem`);
    expect(r.out).toBe(`${target}\n`);
    expect(await readFile(target, 'utf8')).toBe(await readFile(file, 'utf8'));
    // The directory is private (0700), as the cloud directory around it.
    expect((await stat(trustedDir())).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'cloud'))).mode & 0o777).toBe(0o700);

    const trusted = await trustedManufacturers(join(dir, 'cloud'));
    expect(trusted.map((t) => t.source)).toEqual([
      `${TRUSTED_TPM_MANUFACTURERS_DIR}/${fingerprint}.pem`,
    ]);
    expect(trusted[0]!.cert.fingerprint256).toBe(new X509Certificate(other.certDer).fingerprint256);

    // Adding it again writes the same file: still one trusted CA.
    const again = await runCli(['cloud', 'trust-tpm-ca', file, '--data', dir]);
    expect(again.out).toBe(r.out);
    expect(await readdir(trustedDir())).toEqual([`${fingerprint}.pem`]);
  });

  it('refuses a file that is not one CA certificate with a coded error (exit 1)', async () => {
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate\n');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = join(dir, 'leaf.pem');
    await writeFile(leaf, (await dayCertificate(privateKey, 'CN=not a CA')).toString());
    const a = await loadOrCreateManufacturerCa(join(dir, 'lab-a'));
    const b = await loadOrCreateManufacturerCa(join(dir, 'lab-b'));
    const two = join(dir, 'two.pem');
    await writeFile(two, `${a.certPem}${b.certPem}`);
    for (const file of [junk, leaf, two, join(dir, 'missing.pem')]) {
      const r = await runCli(['cloud', 'trust-tpm-ca', file, '--data', dir]);
      expect(r.code, file).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(`${file} must hold exactly one PEM CA certificate`);
      expect(r.err).toMatch(/\[ERR_CLOUD_STATE\]\n$/);
    }
    expect(await readdir(trustedDir()).catch(() => [])).toEqual([]);
    expect(await trustedManufacturers(join(dir, 'cloud'))).toEqual([]);
  });

  it('takes exactly one FILE (usage error, exit 2) and has help', async () => {
    const none = await runCli(['cloud', 'trust-tpm-ca', '--data', dir]);
    expect(none.code).toBe(2);
    expect(none.err).toContain('[ERR_USAGE]');
    const twoArgs = await runCli(['cloud', 'trust-tpm-ca', 'a.pem', 'b.pem', '--data', dir]);
    expect(twoArgs.code).toBe(2);
    const help = await runCli(['cloud', 'trust-tpm-ca', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: prtlab cloud trust-tpm-ca FILE/);
    expect(help.out).toContain('trusted-tpm-manufacturers/');
    expect((await runCli(['cloud', '--help'])).out).toMatch(/trust-tpm-ca[\s\S]*setting/);
  });
});
