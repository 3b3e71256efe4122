/**
 * The client runner against the lab cloud over HTTPS: broker clients get device-bound tokens
 * through the broker (test agent, test/shared/broker-fixtures.ts); the others sign in on their
 * own and keep a plain token cache file; a token-protection policy blocks the unbound ones with
 * AADSTS53003, which the report shows.
 */
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isClientError } from '../../clients/errors.ts';
import {
  type ClientEnvironment,
  formatReport,
  type RunReport,
  runClient,
} from '../../clients/run.ts';
import { clientCachePath } from '../../clients/token-cache.ts';
import { tokenProtectionPreset } from '../../cloud/policies/preset.ts';
import { type BrokerLab, PASSWORD, startBrokerLab } from '../shared/broker-fixtures.ts';

let lab: BrokerLab;
let env: ClientEnvironment;
/** The client's clock runs `ahead` ms in front of the real one. */
let ahead = 0;

function signedIn(r: RunReport) {
  if (!r.signIn.ok) throw new Error(`sign-in refused: ${r.signIn.message}`);
  return r.signIn;
}

beforeAll(async () => {
  lab = await startBrokerLab('prtlab-clients-run-');
  await lab.broker(lab.agent());
  env = {
    cloudUrl: lab.cloud.url,
    tenant: lab.cloud.tenant.id,
    caPem: lab.ca,
    deviceDir: lab.deviceDir,
    clock: () => Date.now() + ahead,
  };
}, 60_000);

afterAll(() => lab?.close());

describe('a client that uses the broker', () => {
  it('signs in through the broker with the password, gets a device-bound token and reads the site', async () => {
    const r = await runClient(env, { profile: 'onedrive', user: lab.upn, password: PASSWORD });
    expect(r.viaBroker).toBe(true);
    expect(signedIn(r)).toMatchObject({
      how: 'broker sign-in with password',
      upn: lab.upn,
      deviceBound: true,
    });
    expect(r.call).toMatchObject({ status: 200 });
    expect(r.call!.summary).toMatch(
      /^site '.+' \(https:\/\/contoso\.sharepoint\.com\/sites\/lab\)$/,
    );
  });

  it('then signs in silently from the broker cache, and calls another resource through the PRT', async () => {
    const cached = await runClient(env, { profile: 'onedrive' });
    expect(signedIn(cached).how).toBe('broker cache');
    expect(signedIn(cached).correlationId).toBeUndefined();
    const graph = await runClient(env, { profile: 'onedrive', resource: 'graph' });
    expect(signedIn(graph).how).toBe('broker, PRT-signed request');
    expect(graph.call?.summary).toBe(`user ${lab.upn} (Adele Vance)`);
    const mail = await runClient(env, { profile: 'teams', resource: 'exchange', user: lab.upn });
    expect(mail.call?.summary).toBe('1 message');
  });

  it('without a running broker it fails with ERR_CLIENT and says so', async () => {
    const err = await runClient(
      { ...env, deviceDir: `${lab.deviceDir}-missing` },
      {
        profile: 'teams',
      },
    ).catch((e: unknown) => e);
    expect(isClientError(err)).toBe(true);
    expect((err as Error).message).toMatch(/prtlab device start/);
  });
});

describe('a client that signs in on its own', () => {
  it('needs a password the first time', async () => {
    const err = await runClient(env, { profile: 'azure-cli' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CLIENT' });
    expect((err as Error).message).toMatch(/--user and --password/);
  });

  it('signs in with the password and keeps its tokens in a plain 0600 cache file', async () => {
    const r = await runClient(env, { profile: 'azure-cli', user: lab.upn, password: PASSWORD });
    expect(r.viaBroker).toBe(false);
    expect(signedIn(r)).toMatchObject({ how: 'own password sign-in', deviceBound: false });
    expect(r.call?.summary).toBe(`user ${lab.upn} (Adele Vance)`);
    const path = clientCachePath(lab.deviceDir, 'azure-cli');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const file = JSON.parse(await readFile(path, 'utf8'));
    const account = file.accounts[lab.upn];
    expect(account.refreshToken).toEqual(expect.any(String));
    expect(account.accessTokens['https://graph.microsoft.com'].accessToken).toEqual(
      expect.any(String),
    );
  });

  it('reuses the cached access token, then redeems its refresh token once the token is stale', async () => {
    expect(signedIn(await runClient(env, { profile: 'azure-cli' })).how).toBe('own token cache');
    ahead = 2 * 3600_000;
    try {
      const r = await runClient(env, { profile: 'azure-cli' });
      expect(signedIn(r).how).toBe('own refresh token');
      expect(r.call?.status).toBe(200);
    } finally {
      ahead = 0;
    }
  });

  it('an old OneDrive signs in on its own; the current one through the broker', async () => {
    const old = await runClient(env, {
      profile: 'onedrive',
      version: '21.220.1024.0005',
      user: lab.upn,
      password: PASSWORD,
    });
    expect(old.viaBroker).toBe(false);
    expect(signedIn(old)).toMatchObject({ how: 'own password sign-in', deviceBound: false });
  });

  it('a wrong password is reported with its AADSTS code', async () => {
    const r = await runClient(env, { profile: 'vscode', user: lab.upn, password: 'wrong-pass' });
    expect(r.signIn).toMatchObject({ ok: false, error: 'invalid_grant', aadsts: 50126 });
    expect(r.call).toBeUndefined();
  });
});

describe('under an enabled token-protection policy (Exchange and SharePoint)', () => {
  let policyId: string;
  beforeAll(async () => {
    policyId = (
      await lab.cloud.directory.policies.create(tokenProtectionPreset({ state: 'enabled' }))
    ).id;
  });
  afterAll(() => lab.cloud.directory.policies.delete(policyId));

  it('the current OneDrive through the broker still reads SharePoint', async () => {
    const r = await runClient(env, { profile: 'onedrive', user: lab.upn, password: PASSWORD });
    expect(r.call?.status).toBe(200);
  });

  it('an old OneDrive, a VS Code extension and Office perpetual are blocked with AADSTS53003', async () => {
    for (const opts of [
      { profile: 'onedrive', version: '21.220.1024.0005' },
      { profile: 'vscode' },
      { profile: 'office-perpetual' },
    ]) {
      const r = await runClient(env, { ...opts, user: lab.upn, password: PASSWORD });
      expect(r.signIn, opts.profile).toMatchObject({ ok: false, aadsts: 53003 });
      const text = formatReport(r);
      expect(text).toMatch(/refused: AADSTS53003 invalid_grant, correlation id [0-9a-f-]{36}/);
      expect(text).toMatch(/signs in on its own/);
    }
  });

  it('the 2023 preview blocks Exchange PowerShell even through the broker (unsupported then)', async () => {
    const r = await runClient(env, {
      profile: 'exchange-powershell',
      user: lab.upn,
      password: PASSWORD,
    });
    expect(r.viaBroker).toBe(true);
    expect(r.signIn).toMatchObject({ ok: false, aadsts: 53003, error: 'invalid_grant' });
  });

  it('Azure CLI on Graph is outside the policy: allowed, unbound', async () => {
    const r = await runClient(env, { profile: 'azure-cli', user: lab.upn, password: PASSWORD });
    expect(signedIn(r).deviceBound).toBe(false);
    expect(r.call?.status).toBe(200);
  });
});
