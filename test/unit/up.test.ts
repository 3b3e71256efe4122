/**
 * `prtlab up` in process on a temporary data directory, ports 0: the first start creates the demo
 * tenant, policy and device, signs the pilot in and runs OneDrive and Teams through the broker;
 * the CLI changes the policy from "another process" (its own SQLite connection) while the lab
 * runs; a second start (the CLI path, stopped as Ctrl-C would) finds everything and creates
 * nothing; a third start with lab time 15 days on signs the pilot in again.
 */
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabClock } from '../../agent/index.ts';
import { BrokerClient } from '../../broker/client.ts';
import { startUp, UP_HELP, type UpHandle, type UpOptions, upCommand } from '../../cli/up.ts';
import { runClient } from '../../clients/run.ts';
import { ensureCloudDirs } from '../../cloud/data-dir.ts';
import { openDirectory } from '../../cloud/directory/index.ts';
import type { Directory } from '../../cloud/directory/types.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import {
  DEMO_CREDENTIALS_FILE,
  DEMO_DEVICE_NAME,
  DEMO_GROUP_NAME,
  DEMO_POLICY_NAME,
} from '../../lab/demo.ts';
import { captureIo, removeDir, runCli, startUntil, tempDir } from '../shared/cli.ts';
import { TEST_SCRYPT } from '../shared/cloud.ts';

const EXO_ID = '00000002-0000-0ff1-ce00-000000000000';
const SPO_ID = '00000003-0000-0ff1-ce00-000000000000';

let data: string;

beforeAll(async () => {
  data = await tempDir('prtlab-up-');
});

afterAll(async () => {
  await removeDir(data);
});

function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

/** The directory of `data`, opened beside (or after) the lab's own connection. */
async function withDirectory<T>(fn: (d: Directory) => Promise<T>): Promise<T> {
  const d = await openDirectory(await ensureCloudDirs(data));
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

async function credentials(): Promise<{
  users: Record<'pilot' | 'breakGlass' | 'guest', { upn: string; password: string }>;
}> {
  return JSON.parse(await readFile(join(data, DEMO_CREDENTIALS_FILE), 'utf8'));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('prtlab up: options', () => {
  it('--help prints the usage and exits 0', async () => {
    const io = captureIo();
    expect(await upCommand(['--help'], io)).toBe(0);
    expect(io.stdout).toBe(UP_HELP);
    expect(UP_HELP).toMatch(/--broker-port P/);
  });

  it('refuses bad options with ERR_USAGE before touching the data directory', async () => {
    const never = join(data, 'never');
    for (const argv of [
      ['--port', '70000'],
      ['--port', 'http'],
      ['--broker-port', '65536'],
      ['--device', 'LAB PC'],
      ['extra'],
    ]) {
      const err = await upCommand([...argv, '--data', never], captureIo()).catch((e) => e);
      expect(err, argv.join(' ')).toMatchObject({ code: 'ERR_USAGE' });
    }
    const unknown = await upCommand(['--bogus', '--data', never], captureIo()).catch((e) => e);
    expect(unknown).toMatchObject({ code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' });
    expect(await exists(never)).toBe(false);
  });

  it('a stop request during set-up stops it between steps (exit 130), before the cloud exists', async () => {
    const dir = join(data, 'interrupted');
    const io = captureIo({ stop: AbortSignal.abort() });
    expect(await upCommand(['--data', dir, '--port', '0'], io, { scrypt: TEST_SCRYPT })).toBe(130);
    expect(io.stdout).toMatch(/stopped during set-up/);
    expect(await exists(join(dir, 'cloud'))).toBe(false);
  });
});

describe('prtlab up: first start on a new data directory', () => {
  let first: UpHandle;
  let io: ReturnType<typeof captureIo>;
  const options = (): UpOptions => ({
    dataDir: data,
    dataFlag: data,
    port: 0,
    brokerPort: 0,
    device: DEMO_DEVICE_NAME,
    scrypt: TEST_SCRYPT,
  });

  beforeAll(async () => {
    io = captureIo();
    first = await startUp(options(), io);
  }, 120_000);

  afterAll(() => first?.stop());

  it('creates the demo tenant: a pilot in the pilot group, a break-glass admin, a B2B guest', async () => {
    const d = first.lab.cloud.directory;
    const { pilot, breakGlass, guest } = first.lab.users;
    expect((await d.users.list()).map((u) => u.upn).sort()).toEqual(
      [pilot.upn, breakGlass.upn, guest.upn].sort(),
    );
    expect((await d.users.memberOf(pilot.id)).groups.map((g) => g.displayName)).toEqual([
      DEMO_GROUP_NAME,
    ]);
    expect((await d.users.memberOf(breakGlass.id)).roles.map((r) => r.displayName)).toContain(
      'Global Administrator',
    );
    expect((await d.users.memberOf(breakGlass.id)).groups).toEqual([]);
    expect(guest.kind).toBe('guest');
    expect(guest.upn.endsWith(`@${first.lab.tenant.domain}`)).toBe(false);
    expect((await d.groups.list()).map((g) => g.displayName)).toEqual([DEMO_GROUP_NAME]);
  });

  it('keeps the generated passwords in a 0600 file and prints each exactly once, never to the log', async () => {
    const path = join(data, DEMO_CREDENTIALS_FILE);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const file = await credentials();
    const log = await readFile(join(data, 'up.log'), 'utf8');
    expect((await stat(join(data, 'up.log'))).mode & 0o777).toBe(0o600);
    expect(log).toMatch(/cloud: POST /);
    for (const role of ['pilot', 'breakGlass', 'guest'] as const) {
      const { upn, password } = file.users[role];
      expect(upn).toBe(first.lab.users[role].upn);
      expect(
        await first.lab.cloud.directory.users.verifyPassword(first.lab.users[role].id, password),
      ).toBe(true);
      expect(occurrences(io.stdout, password), role).toBe(1);
      expect(log).not.toContain(password);
    }
  });

  it("creates the seed document's policy: report-only, the pilot group, the break-glass user excluded", async () => {
    const policies = await first.lab.cloud.directory.policies.list();
    expect(policies).toHaveLength(1);
    const p = policies[0]!;
    expect(p.id).toBe(first.lab.policy.id);
    expect(p.state).toBe('enabledForReportingButNotEnforced');
    expect(p.policy).toMatchObject({
      displayName: DEMO_POLICY_NAME,
      conditions: {
        users: {
          includeUsers: [],
          includeGroups: [first.lab.group.id],
          excludeUsers: [first.lab.users.breakGlass.id],
        },
        applications: { includeApplications: [EXO_ID, SPO_ID] },
        platforms: { includePlatforms: ['windows'] },
        clientAppTypes: ['mobileAppsAndDesktopClients'],
      },
      sessionControls: { secureSignInSession: { isEnabled: true } },
    });
  });

  it('joins a Windows 11 device with the built-in TPM and signs the pilot in (a PRT)', async () => {
    const devices = await first.lab.cloud.directory.devices.list();
    expect(devices).toHaveLength(1);
    expect(devices[0]).toMatchObject({
      id: first.lab.device.config.deviceId,
      displayName: DEMO_DEVICE_NAME,
      joinType: 0,
      trustType: 'AzureAd',
      operatingSystemVersion: '10.0.22631',
      registeringUserId: first.lab.users.pilot.id,
    });
    const status = await first.lab.agent.deviceStatus();
    expect(status).toMatchObject({
      AzureAdJoined: 'YES',
      TpmProtected: 'YES',
      OsVersion: '10.0.22631',
    });
    expect(status.Tpm).toMatch(/built-in/);
    const pilot = status.Accounts.find((a) => a.Upn === first.lab.users.pilot.upn);
    expect(pilot).toMatchObject({ AzureAdPrt: 'YES', AzureAdPrtState: 'VALID' });
    expect(first.lab.signIn.state).toBe('signed-in');
  });

  it('prtlab device status works while the lab holds the device: the broker answers', async () => {
    const r = await runCli(['device', 'status', DEMO_DEVICE_NAME, '--data', data]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/AzureAdJoined : YES/);
    expect(r.out).toMatch(/AzureAdPrt : YES/);
  });

  it('OneDrive and Teams got device-bound tokens through the broker, logged with report-only results', async () => {
    expect(first.runs.map((r) => r.report.profile.name)).toEqual(['onedrive', 'teams']);
    for (const run of first.runs) {
      expect(run.report.viaBroker).toBe(true);
      expect(run.report.signIn).toMatchObject({ ok: true, deviceBound: true });
      expect(run.report.call?.status).toBe(200);
      expect(run.policyResult).toBe('reportOnlySuccess');
      expect(run.logEntry?.signInTokenProtectionStatus).toBe('bound');
    }
    // The CLI reads the same entries through its own connection while the lab runs.
    const signins = await runCli(['signins', '--json', '--data', data]);
    expect(signins.code).toBe(0);
    const ids = (JSON.parse(signins.out) as { correlationId: string }[]).map(
      (e) => e.correlationId,
    );
    for (const run of first.runs) expect(ids).toContain(run.logEntry?.correlationId);
  });

  it('prints the URLs, the CA, the broker and the next commands', () => {
    const lab = first.lab;
    expect(io.stdout).toContain(`listening on ${lab.cloud.url}`);
    expect(io.stdout).toContain(lab.cloud.caPath);
    expect(io.stdout).toContain(`ws://127.0.0.1:${lab.broker.port}/`);
    expect(io.stdout).toMatch(/reportOnlySuccess; token protection: bound/);
    for (const next of [
      `prtlab policy set-state ${lab.policy.id} on --data ${data}`,
      `client run vscode --device ${DEMO_DEVICE_NAME}`,
      `prtlab attack run --data ${data}`,
      `prtlab report impact --data ${data}`,
      `prtlab signins --data ${data}`,
      `prtlab device status ${DEMO_DEVICE_NAME} --data ${data}`,
    ])
      expect(io.stdout).toContain(next);
  });

  it('a policy set-state through the CLI applies from the next token request', async () => {
    const { password } = (await credentials()).users.pilot;
    const env = {
      cloudUrl: first.lab.cloud.url,
      tenant: first.lab.tenant.id,
      caPem: first.lab.device.config.cloudCaPem,
      deviceDir: first.lab.device.dir,
    };
    const vscode = () =>
      runClient(env, { profile: 'vscode', user: first.lab.users.pilot.upn, password });
    // Report-only: VS Code (no broker, unbound) still gets its token.
    expect((await vscode()).signIn).toMatchObject({ ok: true, deviceBound: false });
    const set = await runCli(['policy', 'set-state', first.lab.policy.id, 'on', '--data', data]);
    expect(set.code, set.err).toBe(0);
    const blocked = await vscode();
    expect(blocked.signIn).toMatchObject({ ok: false, aadsts: 53003 });
  });

  it('the pilot signs out through the broker, then the lab stops cleanly and loses nothing', async () => {
    const lab = first.lab;
    const pilotId = lab.users.pilot.id.toLowerCase();
    const broker = await BrokerClient.forDevice(lab.device.dir);
    try {
      expect((await broker.signOut(pilotId)).removedTokens).toBeGreaterThanOrEqual(2);
    } finally {
      await broker.close();
    }
    expect((await lab.agent.accounts()).map((a) => a.id)).not.toContain(pilotId);
    const last = (await runCli(['signins', '--json', '--top', '1', '--data', data])).out;
    const lastId = (JSON.parse(last) as { correlationId: string }[])[0]!.correlationId;

    await first.stop();
    expect(await exists(join(lab.device.dir, 'broker.json'))).toBe(false);
    expect(await exists(join(lab.device.dir, 'agent.lock'))).toBe(false);
    const store = new SignInStore(join(data, 'cloud', SIGNINS_DB_NAME));
    try {
      const entries = store.list({ top: 1000 }).value;
      expect(entries.map((e) => e.correlationId)).toContain(lastId);
      // The blocked VS Code request is there with its reason.
      expect(entries.some((e) => e.status.errorCode === 53003)).toBe(true);
    } finally {
      store.close();
    }
  });
});

describe('prtlab up: later starts on the same data directory', () => {
  it('refuses a cloud port other than the one the device was joined against', async () => {
    const joined = Number(new URL((await deviceCloudUrl()) ?? '').port);
    const other = joined === 65535 ? 65534 : joined + 1;
    const err = await startUp(
      { dataDir: data, port: other, device: DEMO_DEVICE_NAME, scrypt: TEST_SCRYPT },
      captureIo(),
    ).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CLOUD_CONFIG' });
    expect((err as Error).message).toContain(`port ${joined}`);
  });

  it('refuses a credentials file others can read (ERR_CLOUD_STATE), and stops what it started', async () => {
    const path = join(data, DEMO_CREDENTIALS_FILE);
    await chmod(path, 0o644);
    try {
      const err = await startUp(
        { dataDir: data, device: DEMO_DEVICE_NAME, scrypt: TEST_SCRYPT },
        captureIo(),
      ).catch((e) => e);
      expect(err).toMatchObject({ code: 'ERR_CLOUD_STATE' });
      expect((err as Error).message).toMatch(/chmod 600/);
    } finally {
      await chmod(path, 0o600);
    }
    // The cloud it had started is closed again: its port is free for the next start.
    const url = new URL((await deviceCloudUrl()) ?? '');
    const reachable = await fetch(`https://${url.host}/`).then(
      () => true,
      (e: Error & { cause?: { code?: string } }) => e.cause?.code !== 'ECONNREFUSED',
    );
    expect(reachable).toBe(false);
  });

  it('finds the tenant, policy and device, creates nothing, and signs the pilot in again', async () => {
    const before = await readFile(join(data, DEMO_CREDENTIALS_FILE), 'utf8');
    const { users } = await credentials();
    const started = await startUntil('Ctrl-C stops the lab.', (io) =>
      upCommand(['--data', data, '--port', '0', '--broker-port', '0'], io, {
        scrypt: TEST_SCRYPT,
      }),
    );
    const io = started.io;
    try {
      expect(io.stdout).not.toMatch(/created/);
      expect(io.stdout).toMatch(/found group 'Token protection pilot'/);
      expect(occurrences(io.stdout, 'found user ')).toBe(3);
      expect(io.stdout).toMatch(/found policy '.+' \(id [0-9a-f-]+, on\)/);
      expect(io.stdout).toMatch(/found device LAB-PC1/);
      // Signed out before: the stored password signs the pilot in again.
      expect(io.stdout).toContain(`signed in ${users.pilot.upn}: PRT until`);
      // The policy kept the state the CLI gave it, and the broker clients still pass.
      expect(occurrences(io.stdout, "': success; token protection: bound")).toBe(2);
      for (const role of ['pilot', 'breakGlass', 'guest'] as const)
        expect(io.stdout).not.toContain(users[role].password);
      expect(io.stdout).toContain(join(data, DEMO_CREDENTIALS_FILE));
    } finally {
      started.stop();
    }
    expect(await started.exited).toBe(0);
    expect(io.stdout).toMatch(/prtlab up: stopped\n$/);
    expect(await readFile(join(data, DEMO_CREDENTIALS_FILE), 'utf8')).toBe(before);
    await withDirectory(async (d) => {
      expect(await d.users.list()).toHaveLength(3);
      expect(await d.groups.list()).toHaveLength(1);
      const policies = await d.policies.list();
      expect(policies.map((p) => p.state)).toEqual(['enabled']);
      expect(await d.devices.list()).toHaveLength(1);
    });
    expect((await readdir(join(data, 'devices'))).filter((n) => !n.startsWith('.'))).toEqual([
      DEMO_DEVICE_NAME,
    ]);
  }, 120_000);

  it('signs the pilot in again when the PRT has expired (lab time 15 days on); a lost password is replaced and shown once', async () => {
    // Drop the guest's entry: that start must give the guest a new password, and only the guest.
    const path = join(data, DEMO_CREDENTIALS_FILE);
    const file = await credentials();
    const { guest: lost, ...kept } = file.users;
    await writeFile(path, JSON.stringify({ ...file, users: kept }), { mode: 0o600 });
    const clock = new LabClock();
    clock.advance(15 * 24 * 3600_000);
    const io = captureIo();
    const lab = await startUp(
      { dataDir: data, device: DEMO_DEVICE_NAME, scrypt: TEST_SCRYPT, clock },
      io,
    );
    try {
      expect(lab.lab.signIn.state).toBe('signed-in');
      const status = await lab.lab.agent.deviceStatus();
      expect(status.Accounts.find((a) => a.Upn === lab.lab.users.pilot.upn)).toMatchObject({
        AzureAdPrtState: 'VALID',
      });
      for (const run of lab.runs)
        expect(run.report.signIn).toMatchObject({ ok: true, deviceBound: true });
      expect(lab.lab.newPasswords.map((p) => p.role)).toEqual(['guest']);
      const now = await credentials();
      expect(now.users.pilot).toEqual(kept.pilot);
      expect(now.users.guest.password).not.toBe(lost.password);
      expect(occurrences(io.stdout, now.users.guest.password)).toBe(1);
      expect(io.stdout).not.toContain(kept.pilot.password);
      expect(
        await lab.lab.cloud.directory.users.verifyPassword(
          lab.lab.users.guest.id,
          now.users.guest.password,
        ),
      ).toBe(true);
    } finally {
      await lab.stop();
    }
  }, 120_000);
});

/** The cloud URL in the device's device.json. */
async function deviceCloudUrl(): Promise<string | undefined> {
  const json = JSON.parse(
    await readFile(join(data, 'devices', DEMO_DEVICE_NAME, 'device.json'), 'utf8'),
  ) as { cloudUrl?: string };
  return json.cloudUrl;
}
