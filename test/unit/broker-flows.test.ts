/**
 * The broker's methods end to end: a client on the WebSocket, the broker, a test agent that
 * speaks the PRT protocol (test/shared/broker-fixtures.ts) and the lab cloud over HTTPS. Tokens,
 * refusals and Conditional Access blocks are the cloud's own.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrokerClient } from '../../broker/client.ts';
import { type BrokerRpcError, isBrokerError } from '../../broker/errors.ts';
import { RPC_ERRORS } from '../../broker/rpc.ts';
import type { BrokerHandle } from '../../broker/server.ts';
import { tokenProtectionPreset } from '../../cloud/policies/preset.ts';
import { PrtlabError } from '../../lib/errors.ts';
import {
  type BrokerLab,
  cloudRefusalError,
  EXCHANGE,
  type FixtureAgent,
  GRAPH,
  ONEDRIVE,
  PASSWORD,
  startBrokerLab,
  VISUAL_STUDIO,
} from '../shared/broker-fixtures.ts';

let lab: BrokerLab;
let agent: FixtureAgent;
let broker: BrokerHandle;
let client: BrokerClient;
let adeleId: string;

const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

/**
 * A request with `correlationId` set to any value, including ones the request type forbids (the
 * client passes every member through to the broker as it is, so the broker's checks are tested).
 */
function withCorrelation<T extends object>(request: T, correlationId: unknown): T {
  return { ...request, correlationId } as T;
}

/** The JSON-RPC error a call failed with. */
async function rpcError(p: Promise<unknown>): Promise<BrokerRpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isBrokerError(err, 'ERR_BROKER_RPC')) throw new Error(`expected an RPC error, got ${err}`);
  return err as BrokerRpcError;
}

beforeAll(async () => {
  lab = await startBrokerLab('prtlab-broker-flows-');
  agent = lab.agent();
  broker = await lab.broker(agent);
  client = await BrokerClient.forDevice(lab.deviceDir);
  const first = await client.acquireTokenInteractive({
    clientId: ONEDRIVE,
    resource: EXCHANGE,
    username: lab.upn,
    password: PASSWORD,
    clientVersion: '24.201.1006.0005',
  });
  adeleId = first.account.id;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await lab?.close();
});

describe('acquireTokenInteractive', () => {
  it('signs in with the password (a PRT on the device) and answers a device-bound access token only', async () => {
    const r = await client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      resource: GRAPH,
      username: lab.upn,
      password: PASSWORD,
    });
    expect(Object.keys(r).sort()).toEqual(
      ['accessToken', 'account', 'correlationId', 'expiresOn', 'fromCache', 'tokenType'].sort(),
    );
    expect(r.account).toEqual({ id: adeleId, upn: lab.upn });
    expect(r.fromCache).toBe(false);
    expect(r.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    const at = claims(r.accessToken);
    expect(at).toMatchObject({ aud: GRAPH, appid: ONEDRIVE, deviceid: lab.device.deviceId });
    expect(r.expiresOn).toBe(at.exp);
    expect(JSON.stringify(r)).not.toMatch(/refresh/i);
  });

  it('a wrong password is the cloud refusal AADSTS50126, with its correlation id', async () => {
    const err = await rpcError(
      client.acquireTokenInteractive({
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        username: lab.upn,
        password: 'not-the-password',
      }),
    );
    expect(err.rpcCode).toBe(RPC_ERRORS.cloudRefused);
    expect(err.data).toMatchObject({ error: 'invalid_grant', aadsts: 50126, subError: null });
    expect(err.message).toMatch(/^AADSTS50126:/);
  });
});

describe('acquireTokenSilent', () => {
  it('serves the cache while the token is fresh, without asking the agent', async () => {
    const before = { ...agent.calls };
    const a = await client.acquireTokenSilent({ clientId: ONEDRIVE, resource: EXCHANGE });
    const b = await client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      accountId: adeleId,
    });
    expect(a.fromCache).toBe(true);
    expect(b.accessToken).toBe(a.accessToken);
    expect(agent.calls.acquireToken).toBe(before.acquireToken);
    expect(agent.calls.redeemRefreshToken).toBe(before.redeemRefreshToken);
  });

  it('a resource not cached yet is a PRT-signed round trip, then cached', async () => {
    const before = agent.calls.acquireToken;
    const miss = await client.acquireTokenSilent({
      clientId: ONEDRIVE,
      scopes: ['https://graph.microsoft.com/User.Read', 'openid'],
      accountId: adeleId,
    });
    expect(miss.fromCache).toBe(false);
    // A v2 token (scopes): its audience is the resource's app id, as Entra issues them.
    expect(claims(miss.accessToken)).toMatchObject({
      aud: '00000003-0000-0000-c000-000000000000',
      scp: 'User.Read',
    });
    expect(agent.calls.acquireToken).toBe(before + 1);
    // The same scopes in another order are the same cache entry.
    const hit = await client.acquireTokenSilent({
      clientId: ONEDRIVE,
      scopes: ['openid', 'https://graph.microsoft.com/User.Read'],
      accountId: adeleId,
    });
    expect(hit).toMatchObject({ fromCache: true, accessToken: miss.accessToken });
  });

  it('forceRefresh asks the cloud through the PRT and passes the client version on', async () => {
    const before = agent.calls.acquireToken;
    const r = await client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      forceRefresh: true,
      clientVersion: '24.1.0',
    });
    expect(r.fromCache).toBe(false);
    expect(agent.calls.acquireToken).toBe(before + 1);
    expect(agent.versionsSent.at(-1)).toBe('24.1.0');
  });

  it('concurrent misses for one entry share one round trip', async () => {
    const before = agent.calls.acquireToken;
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        client.acquireTokenSilent({ clientId: ONEDRIVE, resource: 'https://outlook.office.com' }),
      ),
    );
    expect(agent.calls.acquireToken).toBe(before + 1);
    expect(new Set(results.map((r) => r.accessToken)).size).toBe(1);
  });

  it('without a PRT for the account the answer is interaction_required', async () => {
    const err = await rpcError(
      client.acquireTokenSilent({
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        accountId: '00000000-0000-4000-8000-000000000001',
      }),
    );
    expect(err.rpcCode).toBe(RPC_ERRORS.interactionRequired);
    expect(err.data).toMatchObject({
      error: 'interaction_required',
      aadsts: null,
      subError: 'no_prt',
    });
  });

  it('with two accounts and no accountId it asks which one', async () => {
    const other = await client.acquireTokenInteractive({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      username: lab.otherUpn,
      password: PASSWORD,
    });
    const err = await rpcError(client.acquireTokenSilent({ clientId: ONEDRIVE, resource: GRAPH }));
    expect(err.data).toMatchObject({
      error: 'interaction_required',
      subError: 'multiple_accounts',
    });
    const { accounts } = await client.getAccounts();
    expect(accounts.map((a) => a.upn).sort()).toEqual([lab.upn, lab.otherUpn].sort());
    await client.signOut(other.account.id);
  });

  it('a Conditional Access block reads as a cloud refusal with its AADSTS code', async () => {
    // Token protection on Exchange; Visual Studio is unsupported in the 2023 preview, so even a
    // PRT-signed request from it is unbound and blocked (token-protection.md §1.5, §3.4).
    const policy = await lab.cloud.directory.policies.create(
      tokenProtectionPreset({ state: 'enabled' }),
    );
    try {
      const err = await rpcError(
        client.acquireTokenSilent({ clientId: VISUAL_STUDIO, resource: EXCHANGE }),
      );
      expect(err.rpcCode).toBe(RPC_ERRORS.cloudRefused);
      expect(err.data).toMatchObject({ error: 'invalid_grant', aadsts: 53003, subError: null });
      expect(err.data?.correlationId).toMatch(/^[0-9a-f-]{36}$/);
      // OneDrive at a supported version passes the same policy (bound, through the broker).
      const ok = await client.acquireTokenSilent({
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        clientVersion: '24.201.1006.0005',
        forceRefresh: true,
      });
      expect(ok.fromCache).toBe(false);
      // An old OneDrive is below the catalog's minimum (22.217): blocked.
      const old = await rpcError(
        client.acquireTokenSilent({
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          clientVersion: '21.220.1024.0005',
          forceRefresh: true,
        }),
      );
      expect(old.data?.aadsts).toBe(53003);
    } finally {
      await lab.cloud.directory.policies.delete(policy.id);
    }
  });
});

describe('correlation ids', () => {
  it("a miss sends the app's correlationId to the cloud: the answer and the sign-in log carry it", async () => {
    const id = randomUUID();
    const r = await client.acquireTokenSilent(
      withCorrelation(
        {
          clientId: ONEDRIVE,
          resource: EXCHANGE,
          forceRefresh: true,
        },
        id,
      ),
    );
    expect(r).toMatchObject({ fromCache: false, correlationId: id });
    expect(agent.correlationIdsSent.at(-1)).toBe(id);
    expect(lab.signInsWith(id)).toMatchObject([
      { appId: ONEDRIVE, userId: adeleId, status: { errorCode: 0 } },
    ]);
    // Without one, the cloud's answer names the request the agent sent.
    const own = await client.acquireTokenSilent({
      clientId: ONEDRIVE,
      resource: EXCHANGE,
      forceRefresh: true,
    });
    expect(agent.correlationIdsSent.at(-1)).toBeUndefined();
    expect(own.correlationId).not.toBe(id);
    expect(lab.signInsWith(own.correlationId)).toHaveLength(1);
  });

  it("a cache hit and the broker's own errors carry the caller's correlationId", async () => {
    const id = randomUUID();
    const hit = await client.acquireTokenSilent(
      withCorrelation(
        {
          clientId: ONEDRIVE,
          resource: EXCHANGE,
        },
        id,
      ),
    );
    expect(hit).toMatchObject({ fromCache: true, correlationId: id });
    const noPrt = await rpcError(
      client.acquireTokenSilent(
        withCorrelation(
          {
            clientId: ONEDRIVE,
            resource: EXCHANGE,
            accountId: '00000000-0000-4000-8000-000000000002',
          },
          id,
        ),
      ),
    );
    expect(noPrt.data).toMatchObject({ subError: 'no_prt', correlationId: id });
  });

  it('acquireTokenInteractive passes it on too', async () => {
    const id = randomUUID();
    const r = await client.acquireTokenInteractive(
      withCorrelation(
        {
          clientId: ONEDRIVE,
          resource: GRAPH,
          username: lab.upn,
          password: PASSWORD,
        },
        id,
      ),
    );
    expect(r.correlationId).toBe(id);
    expect(lab.signInsWith(id)).toMatchObject([{ appId: ONEDRIVE, status: { errorCode: 0 } }]);
  });

  it('a correlationId that is not a GUID is -32602 naming params.correlationId, nothing sent', async () => {
    const before = { ...agent.calls };
    for (const bad of ['not-a-guid', '', 42, `${randomUUID()}0`]) {
      const silent = await rpcError(
        client.acquireTokenSilent(
          withCorrelation(
            {
              clientId: ONEDRIVE,
              resource: EXCHANGE,
              forceRefresh: true,
            },
            bad,
          ),
        ),
      );
      expect(silent.rpcCode).toBe(RPC_ERRORS.invalidParams);
      expect(silent.data).toMatchObject({ field: 'params.correlationId' });
      const interactive = await rpcError(
        client.acquireTokenInteractive(
          withCorrelation(
            {
              clientId: ONEDRIVE,
              resource: EXCHANGE,
              username: lab.upn,
              password: PASSWORD,
            },
            bad,
          ),
        ),
      );
      expect(interactive.data).toMatchObject({ field: 'params.correlationId' });
    }
    expect(agent.calls.acquireToken).toBe(before.acquireToken);
    expect(agent.calls.signIn).toBe(before.signIn);
  });
});

describe('the other methods', () => {
  it('getAccounts lists the accounts with a PRT', async () => {
    expect((await client.getAccounts()).accounts).toEqual([
      { id: adeleId, upn: lab.upn, tenantId: lab.cloud.tenant.id },
    ]);
  });

  it('getCookieInfoForUri answers x-ms-RefreshTokenCredential records (prt-protocol §6.3)', async () => {
    const { cookies } = await client.getCookieInfoForUri(
      `${lab.cloud.url}/common/oauth2/authorize?client_id=x&sso_nonce=AwABEgEAAAAC`,
    );
    expect(cookies).toHaveLength(1);
    const [c] = cookies;
    expect(c).toMatchObject({ name: 'x-ms-RefreshTokenCredential', flags: 8256 });
    expect(c!.p3pHeader).toMatch(/^CP="/);
    const header = JSON.parse(Buffer.from(c!.data.split('.')[0]!, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'HS256', kdf_ver: 2 });
    expect(claims(c!.data)).toMatchObject({ is_primary: 'true', request_nonce: 'AwABEgEAAAAC' });
  });

  it('getDeviceStatus answers the agent status', async () => {
    expect(await client.getDeviceStatus()).toMatchObject({
      AzureAdJoined: 'YES',
      DeviceId: lab.device.deviceId,
      AzureAdPrt: 'YES',
    });
  });

  it('an agent failure is -32002 carrying the agent code only', async () => {
    agent.failOn(
      'status',
      new PrtlabError('ERR_AGENT_DEVICE', 'TPM state in /secret/path is corrupt'),
    );
    const err = await rpcError(client.getDeviceStatus());
    expect(err.rpcCode).toBe(RPC_ERRORS.agentFailure);
    expect(err.message).not.toContain('/secret/path');
    expect(err.data).toMatchObject({ error: 'agent_failure', subError: 'ERR_AGENT_DEVICE' });
  });

  it('a refusal the agent reports keeps its suberror', async () => {
    agent.failOn(
      'accounts',
      cloudRefusalError({
        error: 'interaction_required',
        aadsts: 50076,
        description: 'AADSTS50076: multi-factor authentication is required.',
        correlationId: '11111111-2222-4333-8444-555555555555',
        subError: 'basic_action',
      }),
    );
    const err = await rpcError(client.getAccounts());
    expect(err.data).toEqual({
      error: 'interaction_required',
      aadsts: 50076,
      correlationId: '11111111-2222-4333-8444-555555555555',
      subError: 'basic_action',
    });
  });

  it('signOut drops the PRT and the cached tokens; the next silent call needs interaction', async () => {
    const out = await client.signOut(adeleId);
    expect(out.accountId).toBe(adeleId);
    expect(out.removedTokens).toBeGreaterThan(0);
    const err = await rpcError(
      client.acquireTokenSilent({ clientId: ONEDRIVE, resource: EXCHANGE }),
    );
    expect(err.data).toMatchObject({ error: 'interaction_required', subError: 'no_account' });
    const again = await rpcError(client.signOut(adeleId));
    expect(again.rpcCode).toBe(RPC_ERRORS.accountNotFound);
  });
});

describe('broker.json', () => {
  it('names the port, is 0600 in a 0700 directory, and goes away when the broker stops', async () => {
    const { stat, readFile } = await import('node:fs/promises');
    const file = JSON.parse(await readFile(broker.brokerFile, 'utf8'));
    expect(Object.keys(file).sort()).toEqual(['port', 'secret']);
    expect(file.port).toBe(broker.port);
    expect(file.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(broker.brokerFile)).mode & 0o777).toBe(0o600);
    expect((await stat(lab.deviceDir)).mode & 0o777).toBe(0o700);
    const second = await lab.broker(lab.agent());
    expect(second.port).not.toBe(broker.port);
    await second.close();
    await expect(stat(second.brokerFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
