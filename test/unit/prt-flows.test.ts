/**
 * The PRT protocol end to end, through a client written from docs/prt-protocol.md
 * (test/prt-client/), against the lab cloud over HTTPS: register, PRT with a password, app tokens
 * through the PRT, renewal, bound refresh tokens, and a negative test for each check.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { BROKER_PLUGIN, type Device, type Prt, PrtTestClient } from '../prt-client/client.ts';
import { deviceSignedJwt, sessionSignedJwt, unwrapSessionKey } from '../prt-client/crypto.ts';
import { httpsRequest } from '../prt-client/http.ts';
import {
  EXCHANGE,
  entraError,
  ONEDRIVE,
  PASSWORD,
  startTestCloud,
  stopTestCloud,
} from '../shared/cloud.ts';
import { devicePrt, joinDevice, registrationTokens } from '../shared/devices.ts';

let dir: string;
let cloud: CloudHandle;
let client: PrtTestClient;
let ca: string;
let upn: string;
let device: Device;
/** The cloud's clock runs `offset` ms ahead of the real one, so tests can let time pass. */
let offset = 0;

const decode = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString());

function aadsts(body: string): number {
  return entraError(body).code;
}

function newDevice(): Promise<Device> {
  return joinDevice(client, upn, PASSWORD);
}

function prtFor(d: Device, kdfVersion: 1 | 2 = 2): Promise<Prt> {
  return devicePrt(client, d, { username: upn, password: PASSWORD, kdfVersion });
}

beforeAll(async () => {
  ({ dir, cloud, ca } = await startTestCloud('prtlab-prt-', {
    routes: (c) => [...tokenRoutes(c), ...coreRoutes(c)],
    clock: () => new Date(Date.now() + offset),
  }));
  upn = `adele@${cloud.tenant.domain}`;
  await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
  client = new PrtTestClient({ baseUrl: cloud.url, tenant: 'common', ca });
  device = await newDevice();
}, 60_000);

afterAll(() => stopTestCloud(cloud, dir));

describe('PRT acquisition (prt-protocol §4)', () => {
  it('returns a PRT, a session key the transport key unwraps, and an unsigned id_token', async () => {
    const prt = await prtFor(device);
    expect(prt.sessionKey.length).toBe(32);
    expect(prt.response.token_type).toBe('pop');
    expect(prt.response.refresh_token_expires_in).toBe(1209599);
    const idt = String(prt.response.id_token);
    expect(JSON.parse(Buffer.from(idt.split('.')[0]!, 'base64url').toString())).toEqual({
      typ: 'JWT',
      alg: 'none',
    });
    expect(decode(idt)).toMatchObject({
      upn,
      amr: ['pwd', 'rsa'],
      iss: `https://sts.windows.net/${cloud.tenant.id}/`,
    });
  });

  it('refuses a request signed by another key, an unknown device, a disabled device, a bad password, a forged nonce', async () => {
    const impostor = {
      ...device,
      deviceKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    };
    expect(
      aadsts(
        (await client.requestPrt(impostor, { username: upn, password: PASSWORD })).response.body,
      ),
    ).toBe(50155);
    expect(
      aadsts(
        (await client.requestPrt(device, { username: upn, password: 'wrong-password' })).response
          .body,
      ),
    ).toBe(50126);
    const other = await newDevice();
    await cloud.directory.devices.setEnabled(other.deviceId, false);
    expect(
      aadsts((await client.requestPrt(other, { username: upn, password: PASSWORD })).response.body),
    ).toBe(135011);
    await cloud.directory.devices.delete(other.deviceId);
    expect(
      aadsts((await client.requestPrt(other, { username: upn, password: PASSWORD })).response.body),
    ).toBe(700003);
    expect(
      aadsts(
        (
          await client.requestPrt(device, {
            username: upn,
            password: PASSWORD,
            nonce: 'AQ-forged-nonce',
          })
        ).response.body,
      ),
    ).toBe(9990101);
  });
});

describe('requests signed with the session key (prt-protocol §6)', () => {
  it('an app token through the PRT: a device-bound access token and a bound refresh token, in a JWE', async () => {
    const prt = await prtFor(device);
    const { json, response } = await client.appTokenViaPrt(prt, {
      clientId: ONEDRIVE,
      resource: EXCHANGE,
    });
    expect(response.status, response.body).toBe(200);
    expect(response.body.split('.')).toHaveLength(5);
    const at = decode(String(json!.access_token));
    expect(at).toMatchObject({ aud: EXCHANGE, appid: ONEDRIVE, deviceid: device.deviceId, upn });
    const rt = String(json!.refresh_token);
    // Bound: refused as a bearer token, accepted in a request signed with the session key.
    const stolen = await client.plainRefresh({
      clientId: ONEDRIVE,
      refreshToken: rt,
      resource: EXCHANGE,
    });
    expect(stolen.status).toBe(400);
    expect(JSON.parse(stolen.body).error).toBe('invalid_grant');
    expect(aadsts(stolen.body)).toBe(9990105);
    const redeemed = await client.redeemBound(prt, {
      clientId: ONEDRIVE,
      refreshToken: rt,
      resource: EXCHANGE,
    });
    expect(redeemed.response.status, redeemed.response.body).toBe(200);
    expect(decode(String(redeemed.json!.access_token)).deviceid).toBe(device.deviceId);
  });

  it('renewal with aza gives a new PRT that works with the same session key', async () => {
    const prt = await prtFor(device);
    const renewed = await client.renewPrt(prt);
    expect(renewed.response.status, renewed.response.body).toBe(200);
    const next = String(renewed.json!.refresh_token);
    expect(next).not.toBe(prt.prt);
    expect(renewed.json!.access_token).toBeUndefined();
    const again = await client.appTokenViaPrt(
      { ...prt, prt: next },
      { clientId: ONEDRIVE, resource: EXCHANGE },
    );
    expect(again.response.status, again.response.body).toBe(200);
  });

  it('the KDF version declared at issuance is enforced, both ways', async () => {
    const v1 = await prtFor(device, 1);
    const nonce = await client.nonce();
    const payload = {
      client_id: ONEDRIVE,
      grant_type: 'refresh_token',
      refresh_token: v1.prt,
      request_nonce: nonce,
      scope: 'openid',
      resource: EXCHANGE,
    };
    expect((await client.prtSigned(v1, payload, 1)).response.status).toBe(200);
    expect(
      aadsts(
        (await client.prtSigned(v1, { ...payload, request_nonce: await client.nonce() }, 2))
          .response.body,
      ),
    ).toBe(9990104);
    const v2 = await prtFor(device, 2);
    expect(
      aadsts((await client.prtSigned(v2, { ...payload, refresh_token: v2.prt }, 1)).response.body),
    ).toBe(9990104);
  });

  it('refuses a replayed signed request, a wrong session key, a forged nonce', async () => {
    const prt = await prtFor(device);
    const { jwt } = sessionSignedJwt(prt.sessionKey, {
      client_id: ONEDRIVE,
      grant_type: 'refresh_token',
      refresh_token: prt.prt,
      request_nonce: await client.nonce(),
      scope: 'openid',
      resource: EXCHANGE,
    });
    const send = () =>
      client.token({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', request: jwt });
    expect((await send()).status).toBe(200);
    expect(aadsts((await send()).body)).toBe(9990102);
    const wrongKey = { ...prt, sessionKey: Buffer.alloc(32, 7) };
    expect(
      aadsts(
        (await client.appTokenViaPrt(wrongKey, { clientId: ONEDRIVE, resource: EXCHANGE })).response
          .body,
      ),
    ).toBe(9990103);
    expect(
      aadsts(
        (
          await client.appTokenViaPrt(prt, {
            clientId: ONEDRIVE,
            resource: EXCHANGE,
            nonce: 'forged',
          })
        ).response.body,
      ),
    ).toBe(9990101);
  });

  it('a disabled or deleted device loses its PRT', async () => {
    const d = await newDevice();
    const prt = await prtFor(d);
    await cloud.directory.devices.setEnabled(d.deviceId, false);
    expect(
      aadsts(
        (await client.appTokenViaPrt(prt, { clientId: ONEDRIVE, resource: EXCHANGE })).response
          .body,
      ),
    ).toBe(135011);
    await cloud.directory.devices.delete(d.deviceId);
    expect(
      aadsts(
        (await client.appTokenViaPrt(prt, { clientId: ONEDRIVE, resource: EXCHANGE })).response
          .body,
      ),
    ).toBe(50173);
  });
});

describe('time, inner grants and certificate forms', () => {
  it('a nonce older than 5 minutes is refused (AADSTS76026), and a PRT past 14 days (AADSTS70008)', async () => {
    const prt = await prtFor(device);
    const nonce = await client.nonce();
    offset = 6 * 60 * 1000;
    try {
      const late = await client.appTokenViaPrt(prt, {
        clientId: ONEDRIVE,
        resource: EXCHANGE,
        nonce,
      });
      expect(aadsts(late.response.body)).toBe(76026);
      offset = 15 * 24 * 3600 * 1000;
      const old = await client.appTokenViaPrt(prt, { clientId: ONEDRIVE, resource: EXCHANGE });
      expect(aadsts(old.response.body)).toBe(70008);
    } finally {
      offset = 0;
    }
  });

  it('a PRT from a broker refresh token (inner grant refresh_token), with x5c as an array', async () => {
    const broker = await registrationTokens(client, upn, PASSWORD);
    const payload = {
      client_id: BROKER_PLUGIN,
      request_nonce: await client.nonce(),
      scope: 'openid aza ugs',
      grant_type: 'refresh_token',
      refresh_token: broker.refresh_token,
    };
    const request = deviceSignedJwt(device.deviceKey, device.certDer, payload, {
      kdf_ver: 2,
      x5c: [device.certDer.toString('base64')],
    });
    const r = await client.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request,
    });
    expect(r.status, r.body).toBe(200);
    expect(unwrapSessionKey(JSON.parse(r.body).session_key_jwe, device.transportKey).length).toBe(
      32,
    );
  });

  it('an unknown client in a PRT-signed request is AADSTS700016', async () => {
    const prt = await prtFor(device);
    const r = await client.appTokenViaPrt(prt, {
      clientId: '11111111-2222-3333-4444-555555555555',
      resource: EXCHANGE,
    });
    expect(aadsts(r.response.body)).toBe(700016);
  });
});

describe('resources accept what the PRT flow issued', () => {
  it('Exchange answers the device-bound access token', async () => {
    const prt = await prtFor(device);
    const { json } = await client.appTokenViaPrt(prt, { clientId: ONEDRIVE, resource: EXCHANGE });
    const r = await httpsRequest(`${cloud.url}/resources/exchange/api/v2.0/me/messages`, {
      ca,
      headers: { authorization: `Bearer ${json!.access_token}` },
    });
    expect(r.status, r.body).toBe(200);
  });
});
