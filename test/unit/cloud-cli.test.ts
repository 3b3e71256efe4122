import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { startCloud } from '../../cloud/server.ts';
import { captureIo, removeDir, runCli, tempDir } from '../shared/cli.ts';
import { dayCertificate } from '../shared/cloud.ts';

let dir: string;
const PW = 'Correct-Horse-9';

/** `prtlab user add <upn> --password <password> [more...] --data <dir>`. */
function addUser(upn: string, password: string, ...more: string[]) {
  return runCli(['user', 'add', upn, '--password', password, ...more, '--data', dir]);
}

beforeEach(async () => {
  dir = await tempDir('prtlab-cloud-cli-');
});

afterEach(() => removeDir(dir));

describe('prtlab cloud ca', () => {
  it('creates the CA once and prints only its path', async () => {
    const first = await runCli(['cloud', 'ca', '--data', dir]);
    expect(first.code).toBe(0);
    const path = join(dir, 'cloud', 'ca', 'lab-ca.pem');
    expect(first.out).toBe(`${path}\n`);
    expect(first.err).toContain('created the lab CA');
    expect(new X509Certificate(await readFile(path)).ca).toBe(true);
    const second = await runCli(['cloud', 'ca', '--data', dir]);
    expect(second.out).toBe(`${path}\n`);
    expect(second.err).toBe('');
    expect((await stat(join(dir, 'cloud'))).mode & 0o777).toBe(0o700);
  });

  it('takes the data directory from PRTLAB_HOME when --data is absent', async () => {
    const saved = process.env.PRTLAB_HOME;
    process.env.PRTLAB_HOME = dir;
    try {
      const { code, out } = await runCli(['cloud', 'ca']);
      expect(code).toBe(0);
      expect(out).toBe(`${join(dir, 'cloud', 'ca', 'lab-ca.pem')}\n`);
    } finally {
      if (saved === undefined) delete process.env.PRTLAB_HOME;
      else process.env.PRTLAB_HOME = saved;
    }
  });
});

describe('prtlab user and group', () => {
  it('adds users (password by flag or stdin), groups and roles, and lists them', async () => {
    expect((await runCli(['group', 'add', 'TP Pilot', '--data', dir])).code).toBe(0);
    const added = await addUser(
      'alice@contoso.test',
      PW,
      '--role',
      'Global Administrator',
      '--role',
      'User',
      '--group',
      'TP Pilot',
    );
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/^added member alice@contoso\.test \(object id [0-9a-f-]{36}\)\n$/);
    const viaStdin = await runCli(
      ['user', 'add', 'bob@fabrikam.test', '--guest', '--password-stdin', '--data', dir],
      { readStdin: async () => `${PW}\n` },
    );
    expect(viaStdin.code).toBe(0);
    expect(viaStdin.out).toContain('added guest bob@fabrikam.test');

    const list = await runCli(['user', 'list', '--data', dir]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^UPN +OBJECT ID +KIND +ENABLED +ROLES +GROUPS\n/);
    expect(list.out).toContain('Global Administrator, User');
    expect(list.out).toContain('TP Pilot');
    expect(list.out).not.toContain(PW);

    const json = JSON.parse((await runCli(['user', 'list', '--json', '--data', dir])).out);
    expect(json).toHaveLength(2);
    expect(json[0]).toMatchObject({ upn: 'alice@contoso.test', kind: 'member', enabled: true });
    expect(json[0].roles.map((r: { displayName: string }) => r.displayName)).toEqual([
      'Global Administrator',
      'User',
    ]);
    expect(json[1]).toMatchObject({ upn: 'bob@fabrikam.test', kind: 'guest' });
    expect(JSON.stringify(json)).not.toMatch(/password|scrypt/);

    const groups = JSON.parse((await runCli(['group', 'list', '--json', '--data', dir])).out);
    expect(groups[0].members).toEqual([
      { id: json[0].id, userPrincipalName: 'alice@contoso.test' },
    ]);

    // The stdin password works: sign-in check through the directory.
    const { openSqliteDirectory } = await import('../../cloud/directory/sqlite.ts');
    const directory = await openSqliteDirectory({ path: join(dir, 'cloud', 'directory.sqlite') });
    try {
      expect((await directory.users.authenticate('bob@fabrikam.test', PW)).kind).toBe('guest');
    } finally {
      await directory.close();
    }
  });

  it('disables and enables users', async () => {
    await addUser('alice@contoso.test', PW);
    const off = await runCli(['user', 'disable', 'ALICE@contoso.test', '--data', dir]);
    expect(off.out).toBe('disabled alice@contoso.test\n');
    const json = JSON.parse((await runCli(['user', 'list', '--json', '--data', dir])).out);
    expect(json[0].enabled).toBe(false);
    expect((await runCli(['user', 'enable', json[0].id, '--data', dir])).code).toBe(0);
  });

  it('prints coded errors with exit code 1, usage errors with 2', async () => {
    await addUser('alice@contoso.test', PW);
    const dup = await addUser('Alice@Contoso.Test', PW);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/already exists \[ERR_DIRECTORY\]\n$/);
    expect(dup.err).not.toContain(PW);
    const role = await addUser('x@contoso.test', PW, '--role', 'Wizard');
    expect(role.code).toBe(1);
    expect(role.err).toContain('Cloud Device Administrator');
    const short = await addUser('y@contoso.test', 'short');
    expect(short.code).toBe(1);
    expect(short.err).not.toContain('short@');
    const noPw = await runCli(['user', 'add', 'z@contoso.test', '--data', dir]);
    expect(noPw.code).toBe(2);
    expect(noPw.err).toContain('[ERR_USAGE]');
    const both = await addUser('z@contoso.test', PW, '--password-stdin');
    expect(both.code).toBe(2);
    expect((await runCli(['user', 'frobnicate', '--data', dir])).code).toBe(2);
    expect((await runCli(['user', 'list', 'extra', '--data', dir])).code).toBe(2);
    expect((await runCli(['group', 'add', '--data', dir])).code).toBe(2);
    const dupGroup = await runCli(['group', 'add', 'g', '--data', dir]);
    expect(dupGroup.code).toBe(0);
    expect((await runCli(['group', 'add', 'G', '--data', dir])).code).toBe(1);
    const missing = await runCli(['user', 'disable', 'nobody@contoso.test', '--data', dir]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('[ERR_DIRECTORY]');
  });

  it('has help for every command', async () => {
    for (const argv of [
      ['--help'],
      ['cloud', '--help'],
      ['cloud', 'serve', '--help'],
      ['cloud', 'ca', '--help'],
      ['cloud', 'device', '--help'],
      ['user', '--help'],
      ['user', 'add', '--help'],
      ['group', '--help'],
    ]) {
      const { code, out } = await runCli(argv);
      expect(code, argv.join(' ')).toBe(0);
      expect(out).toMatch(/^(Usage|prtlab)/);
    }
    expect((await runCli(['user', '--help'])).out).toContain('--password-stdin');
    expect((await runCli(['cloud', 'serve', '--help'])).out).toContain('--allow-remote');
  });
});

describe('prtlab cloud device', () => {
  async function onPremCert(deviceId: string): Promise<string> {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cert = await dayCertificate(privateKey, `CN=${deviceId}`);
    const file = join(dir, 'onprem.pem');
    await writeFile(file, cert.toString());
    return file;
  }

  it('pre-creates, lists, disables and deletes devices', async () => {
    const id = '5d2c6f0e-7a1b-4c3d-9e8f-0a1b2c3d4e5f';
    const file = await onPremCert(id.toUpperCase());
    const created = await runCli([
      'cloud',
      'device',
      'precreate',
      '--cert',
      file,
      '--name',
      'WKS-01',
      '--data',
      dir,
    ]);
    expect(created.code).toBe(0);
    expect(created.out).toContain(`pre-created hybrid device ${id} (WKS-01)`);
    const again = await runCli(['cloud', 'device', 'precreate', '--cert', file, '--data', dir]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('[ERR_DIRECTORY]');

    const list = await runCli(['cloud', 'device', 'list', '--data', dir]);
    expect(list.out).toMatch(/DEVICE ID +NAME +JOIN +TRUST +STATE +ENABLED +HW +THUMBPRINT\n/);
    // A pre-created hybrid device carries no TPM attestation: not hardware-backed.
    expect(list.out).toMatch(new RegExp(`${id} +WKS-01 +6 +ServerAd +precreated +yes +no +-\n`));
    const json = JSON.parse(
      (await runCli(['cloud', 'device', 'list', '--json', '--data', dir])).out,
    );
    expect(json[0]).toMatchObject({ id, joinType: 6, trustType: 'ServerAd', enabled: true });
    expect(json[0].onPremCertificateThumbprint).toMatch(/^[0-9A-F]{40}$/);

    expect((await runCli(['cloud', 'device', 'disable', id, '--data', dir])).out).toContain(
      'disabled device',
    );
    const disabled = JSON.parse(
      (await runCli(['cloud', 'device', 'list', '--json', '--data', dir])).out,
    );
    expect(disabled[0].enabled).toBe(false);
    expect(
      (await runCli(['cloud', 'device', 'enable', json[0].objectId, '--data', dir])).code,
    ).toBe(0);
    expect((await runCli(['cloud', 'device', 'delete', id, '--data', dir])).code).toBe(0);
    expect((await runCli(['cloud', 'device', 'list', '--data', dir])).out).toBe('no devices\n');
    const gone = await runCli(['cloud', 'device', 'delete', id, '--data', dir]);
    expect(gone.code).toBe(1);
    expect(gone.err).toContain('[ERR_DIRECTORY]');
  });

  it('shows HW yes for a device whose registration was TPM-attested', async () => {
    const { openSqliteDirectory } = await import('../../cloud/directory/sqlite.ts');
    expect((await runCli(['cloud', 'ca', '--data', dir])).code).toBe(0);
    const directory = await openSqliteDirectory({ path: join(dir, 'cloud', 'directory.sqlite') });
    const attested = '7f4e8a2b-9c3d-4e5f-8a6b-2c3d4e5f6a7b';
    const software = '8a5f9b3c-0d4e-4f6a-9b7c-3d4e5f6a7b8c';
    try {
      await directory.devices.create({
        id: attested,
        displayName: 'PC-TPM',
        joinType: 0,
        certThumbprint: 'A'.repeat(40),
        attestation: { status: 'verified', reason: 'TPM attestation verified (test)' },
      });
      await directory.devices.create({
        id: software,
        displayName: 'PC-SOFT',
        joinType: 4,
        certThumbprint: 'B'.repeat(40),
      });
    } finally {
      await directory.close();
    }
    const list = await runCli(['cloud', 'device', 'list', '--data', dir]);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(
      new RegExp(`${attested} +PC-TPM +0 +AzureAd +registered +yes +yes +A{40}\n`),
    );
    expect(list.out).toMatch(
      new RegExp(`${software} +PC-SOFT +4 +Workplace +registered +yes +no +B{40}\n`),
    );
    const json = JSON.parse(
      (await runCli(['cloud', 'device', 'list', '--json', '--data', dir])).out,
    ) as { id: string; hardwareBacked: boolean; attestation: { status: string } }[];
    expect(json.map((d) => [d.id, d.hardwareBacked, d.attestation.status]).sort()).toEqual(
      [
        [attested, true, 'verified'],
        [software, false, 'absent'],
      ].sort(),
    );
  });

  it('records what device management would: compliance, Autopilot profile, labels', async () => {
    const id = '6e3d7f1a-8b2c-4d4e-8f90-1a2b3c4d5e6f';
    const file = await onPremCert(id.toUpperCase());
    expect(
      (await runCli(['cloud', 'device', 'precreate', '--cert', file, '--data', dir])).code,
    ).toBe(0);
    const set = await runCli([
      'cloud',
      'device',
      'set',
      id,
      '--compliant',
      'true',
      '--enrollment-profile',
      'Kiosk',
      '--labels',
      'CloudPC',
      '--data',
      dir,
    ]);
    expect(set.code).toBe(0);
    expect(set.out).toContain('isCompliant true');
    const [device] = JSON.parse(
      (await runCli(['cloud', 'device', 'list', '--json', '--data', dir])).out,
    );
    expect(device).toMatchObject({
      isCompliant: true,
      enrollmentProfileName: 'Kiosk',
      profileType: null,
      systemLabels: ['CloudPC'],
    });
    expect(
      (
        await runCli([
          'cloud',
          'device',
          'set',
          id,
          '--compliant',
          'unknown',
          '--enrollment-profile',
          '',
          '--data',
          dir,
        ])
      ).code,
    ).toBe(0);
    const [cleared] = JSON.parse(
      (await runCli(['cloud', 'device', 'list', '--json', '--data', dir])).out,
    );
    expect(cleared).toMatchObject({ isCompliant: null, enrollmentProfileName: null });
    expect(
      (await runCli(['cloud', 'device', 'set', id, '--compliant', 'maybe', '--data', dir])).code,
    ).toBe(2);
    expect((await runCli(['cloud', 'device', 'set', id, '--data', dir])).code).toBe(2);
    const nobody = await runCli([
      'cloud',
      'device',
      'set',
      'nope',
      '--compliant',
      'true',
      '--data',
      dir,
    ]);
    expect(nobody.code).toBe(1);
    expect(nobody.err).toContain('[ERR_DIRECTORY]');
  });

  it('refuses bad certificates and bad arguments', async () => {
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate');
    const bad = await runCli(['cloud', 'device', 'precreate', '--cert', junk, '--data', dir]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('[ERR_DIRECTORY]');
    expect((await runCli(['cloud', 'device', 'precreate', '--data', dir])).code).toBe(2);
    expect(
      (
        await runCli([
          'cloud',
          'device',
          'precreate',
          '--cert',
          join(dir, 'none.pem'),
          '--data',
          dir,
        ])
      ).code,
    ).toBe(2);
    expect((await runCli(['cloud', 'device', 'disable', '--data', dir])).code).toBe(2);
    expect((await runCli(['cloud', 'device', 'list', '--cert', 'x', '--data', dir])).code).toBe(2);
    expect((await runCli(['cloud', 'device', 'explode', '--data', dir])).code).toBe(2);
  });
});

describe('the CLI next to a running cloud', () => {
  it('changes the directory while the cloud has it open (SQLite WAL)', async () => {
    const cloud = await startCloud({ dataDir: dir, port: 0 });
    try {
      const added = await addUser('carol@contoso.test', PW);
      expect(added.code).toBe(0);
      const carol = await cloud.directory.users.findByUpn('carol@contoso.test');
      expect(carol?.enabled).toBe(true);
      expect((await runCli(['user', 'disable', 'carol@contoso.test', '--data', dir])).code).toBe(0);
      expect((await cloud.directory.users.get(carol!.id))?.enabled).toBe(false);
    } finally {
      await cloud.close();
    }
  });
});

describe('prtlab cloud serve', () => {
  it('refuses a non-loopback host before creating anything', async () => {
    const { code, err } = await runCli([
      'cloud',
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--data',
      dir,
    ]);
    expect(code).toBe(1);
    expect(err).toMatch(/non-loopback.*\[ERR_CLOUD_CONFIG\]/);
    await expect(stat(join(dir, 'cloud'))).rejects.toThrow();
    expect((await runCli(['cloud', 'serve', '--port', 'abc', '--data', dir])).code).toBe(2);
  });

  it('serves until stopped, printing URL, tenant and CA path', async () => {
    const stop = new AbortController();
    const io = captureIo({ stop: stop.signal });
    const exit = main(['cloud', 'serve', '--port', '0', '--data', dir], io);
    for (let i = 0; i < 200 && !io.stdout.includes('listening on'); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const url = /listening on (https:\/\/\S+)/.exec(io.stdout)?.[1];
    const caPath = join(dir, 'cloud', 'ca', 'lab-ca.pem');
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(io.stdout).toMatch(/tenant [0-9a-f-]{36} \(contoso\.test\)/);
    expect(io.stdout).toContain(caPath);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${url}/contoso.test/v2.0/.well-known/openid-configuration`,
        {
          ca: [readFileSync(caPath)],
          agent: false,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
    stop.abort();
    expect(await exit).toBe(0);
    expect(io.stdout).toContain('prtlab cloud: stopped');
    expect(io.stderr).toMatch(
      /prtlab cloud: GET \/contoso\.test\/v2\.0\/\.well-known\/openid-configuration 200 \d+ms/,
    );
  });
});
