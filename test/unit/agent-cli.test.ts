/**
 * `prtlab device ...` (cli/device.ts) against a lab cloud in the same data directory, so that the
 * commands find the cloud's CA on their own: add, signin, status (text and --json), list, remove,
 * the help of every subcommand, and usage errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEVICE_ADD_HELP,
  DEVICE_HELP,
  DEVICE_LIST_HELP,
  DEVICE_REMOVE_HELP,
  DEVICE_SIGNIN_HELP,
  DEVICE_STATUS_HELP,
  deviceCommand,
} from '../../cli/device.ts';
import type { Io } from '../../cli/io.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { isPrtlabError } from '../../lib/errors.ts';
import { startTestCloud, stopTestCloud, type TestCloud } from '../shared/cloud.ts';

const PASSWORD = 'Correct-Horse-9';
let tc: TestCloud;
let upn: string;

function io(stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const value: Io = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    readStdin: async () => stdin,
  };
  return { io: value, out: () => out.join(''), err: () => err.join('') };
}

async function run(argv: string[], stdin = '') {
  const c = io(stdin);
  const code = await deviceCommand([...argv], c.io);
  return { code, out: c.out() };
}

async function usageCode(argv: string[]): Promise<string | undefined> {
  try {
    await deviceCommand(argv, io().io);
  } catch (err) {
    return isPrtlabError(err) ? err.code : String(err);
  }
  return undefined;
}

beforeAll(async () => {
  tc = await startTestCloud('prtlab-device-cli-', {
    routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
  });
  upn = `megan@${tc.cloud.tenant.domain}`;
  await tc.cloud.directory.users.create({ upn, password: PASSWORD });
}, 60_000);

afterAll(() => stopTestCloud(tc?.cloud, tc?.dir));

describe('prtlab device', () => {
  it('add, signin, status, list and remove, with the cloud CA found in the data directory', async () => {
    const data = ['--data', tc.dir, '--cloud', tc.cloud.url];
    const added = await run(
      ['add', 'LAB-PC1', '--user', upn, '--password-stdin', ...data],
      `${PASSWORD}\n`,
    );
    expect(added.code).toBe(0);
    expect(added.out).toMatch(/^added device LAB-PC1: joined, device id [0-9a-f-]{36}, tenant /);

    const before = await run(['status', 'LAB-PC1', '--data', tc.dir]);
    expect(before.out).toMatch(/\n +AzureAdJoined : YES\n/);
    expect(before.out).toMatch(/\n +TpmProtected : YES\n/);
    expect(before.out).toMatch(/\n +AzureAdPrt : NO\n/);

    const signedIn = await run([
      'signin',
      'LAB-PC1',
      '--user',
      upn,
      '--password',
      PASSWORD,
      '--data',
      tc.dir,
    ]);
    expect(signedIn.out).toMatch(new RegExp(`^signed in ${upn} on LAB-PC1: PRT until \\d{4}-`));
    const json = JSON.parse((await run(['status', 'LAB-PC1', '--json', '--data', tc.dir])).out);
    expect(json).toMatchObject({
      DeviceName: 'LAB-PC1',
      AzureAdJoined: 'YES',
      AzureAdPrt: 'YES',
      KeySignTest: 'PASSED',
      TenantId: tc.cloud.tenant.id,
    });
    expect(json.Accounts[0].Upn).toBe(upn);
    expect(JSON.stringify(json)).not.toContain(PASSWORD);

    const listed = await run(['list', '--data', tc.dir]);
    expect(listed.out).toMatch(
      /^NAME +DEVICE ID +JOIN +TYPE +TPM +CLOUD\nLAB-PC1 +[0-9a-f-]{36} +joined +windows +builtin +https:/,
    );
    const listedJson = JSON.parse((await run(['list', '--json', '--data', tc.dir])).out);
    expect(listedJson[0]).toMatchObject({ name: 'LAB-PC1', deviceId: json.DeviceId });
    expect(listedJson[0].cloudCaPem).toBeUndefined();

    const removed = await run(['remove', 'LAB-PC1', '--data', tc.dir]);
    expect(removed.out).toBe('removed device LAB-PC1 (deleted in the cloud too)\n');
    expect(await tc.cloud.directory.devices.get(json.DeviceId)).toBeUndefined();
    expect((await run(['list', '--data', tc.dir])).out).toBe('no devices\n');
  });

  it('prints the help of every subcommand', async () => {
    expect(await run([])).toEqual({ code: 2, out: DEVICE_HELP });
    expect(await run(['--help'])).toEqual({ code: 0, out: DEVICE_HELP });
    for (const [sub, help] of [
      ['add', DEVICE_ADD_HELP],
      ['signin', DEVICE_SIGNIN_HELP],
      ['status', DEVICE_STATUS_HELP],
      ['list', DEVICE_LIST_HELP],
      ['remove', DEVICE_REMOVE_HELP],
    ] as const) {
      expect(await run([sub, '--help'])).toEqual({ code: 0, out: help });
      expect(help).toMatch(new RegExp(`^Usage: prtlab device ${sub}`));
      expect(help).toContain('--data DIR');
    }
  });

  it('refuses bad command lines with ERR_USAGE, and unknown devices with ERR_AGENT_DEVICE', async () => {
    const d = ['--data', tc.dir];
    expect(await usageCode(['frobnicate'])).toBe('ERR_USAGE');
    expect(await usageCode(['add', ...d])).toBe('ERR_USAGE'); // no NAME
    expect(await usageCode(['add', 'X', '--join', 'sideways', ...d])).toBe('ERR_USAGE');
    expect(await usageCode(['add', 'X', '--device-type', 'toaster', ...d])).toBe('ERR_USAGE');
    expect(await usageCode(['add', 'X', ...d])).toBe('ERR_USAGE'); // no --user
    expect(await usageCode(['add', 'X', '--join', 'hybrid', ...d])).toBe('ERR_USAGE'); // no --tenant
    expect(
      await usageCode(['add', 'X', '--user', upn, '--password', 'p', '--password-stdin', ...d]),
    ).toBe('ERR_USAGE');
    expect(
      await usageCode([
        'add',
        'X',
        '--user',
        upn,
        '--password',
        'p',
        '--data',
        `${tc.dir}/nowhere`,
      ]),
    ).toBe('ERR_USAGE'); // no cloud CA there
    expect(
      await usageCode([
        'add',
        'X',
        '--user',
        upn,
        '--password',
        'p',
        '--tpm',
        'floppy',
        '--cloud',
        tc.cloud.url,
        ...d,
      ]),
    ).toBe('ERR_AGENT_DEVICE');
    expect(await usageCode(['signin', 'X', '--password', 'p', ...d])).toBe('ERR_USAGE'); // no --user
    expect(await usageCode(['status', 'NOPE', ...d])).toBe('ERR_AGENT_DEVICE');
    expect(await usageCode(['status', '../etc', ...d])).toBe('ERR_AGENT_DEVICE');
  });
});
