/**
 * Shared by the cloud tests: devices joined, and PRTs got, through the independent test client
 * (test/prt-client/), with a user's password.
 */
import { expect } from 'vitest';
import {
  BROKER_PLUGIN,
  type Device,
  DRS_RESOURCE,
  type Prt,
  type PrtTestClient,
} from '../prt-client/client.ts';

/**
 * The broker plugin's tokens for the device registration service, by a password grant: the
 * access token a device joins with, and a refresh token the broker keeps.
 */
export async function registrationTokens(
  client: PrtTestClient,
  username: string,
  password: string,
): Promise<{ access_token: string; refresh_token: string }> {
  const r = await client.passwordGrant({
    clientId: BROKER_PLUGIN,
    username,
    password,
    resource: DRS_RESOURCE,
  });
  expect(r.status, r.body).toBe(200);
  return JSON.parse(r.body);
}

/** A new device joined (JoinType 0) by `username`, checked to be accepted. */
export async function joinDevice(
  client: PrtTestClient,
  username: string,
  password: string,
): Promise<Device> {
  const { access_token } = await registrationTokens(client, username, password);
  const { device, response } = await client.registerDevice(access_token, 0);
  expect(response.status).toBe(200);
  return device;
}

/** A PRT for `username` on `device` with a password (prt-protocol §4), checked to be issued. */
export async function devicePrt(
  client: PrtTestClient,
  device: Device,
  args: { username: string; password: string; kdfVersion?: 1 | 2 },
): Promise<Prt> {
  const { prt, response } = await client.requestPrt(device, {
    username: args.username,
    password: args.password,
    kdfVersion: args.kdfVersion ?? 2,
  });
  expect(response.status, response.body).toBe(200);
  return prt!;
}
