/**
 * Shared by the cloud tests: a lab cloud in a temporary directory, JSON replies, and the keys and
 * certificates the tests make for devices.
 */
import { createPublicKey, type KeyObject, webcrypto } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { APP_IDS } from '../../cloud/directory/seed.ts';
import type { Application, User } from '../../cloud/directory/types.ts';
import { type Authority, signCertificate } from '../../cloud/pki/authority.ts';
import { type CloudHandle, type StartCloudOptions, startCloud } from '../../cloud/server.ts';
import { issueAccessToken } from '../../cloud/token-service/access-tokens.ts';
import type { HttpResponse } from '../prt-client/http.ts';

/** scrypt parameters that keep password hashing fast in tests. */
export const TEST_SCRYPT = { ln: 10, r: 8, p: 1 };

export interface TestCloud {
  readonly dir: string;
  readonly cloud: CloudHandle;
  /** The lab CA certificate (PEM), the only trust anchor a test client needs. */
  readonly ca: string;
}

/**
 * Starts a cloud in a new temporary directory named `prefix...`, on a free port, with TEST_SCRYPT;
 * `options` add to or replace those settings.
 */
export async function startTestCloud(
  prefix: string,
  options: Omit<StartCloudOptions, 'dataDir'> = {},
): Promise<TestCloud> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  let cloud: CloudHandle | undefined;
  try {
    cloud = await startCloud({ dataDir: dir, port: 0, scrypt: TEST_SCRYPT, ...options });
    return { dir, cloud, ca: await readFile(cloud.caPath, 'utf8') };
  } catch (err) {
    await stopTestCloud(cloud, dir);
    throw err;
  }
}

/**
 * Checks that `body` is an Entra-shaped error (AADSTS description, error_codes, trace and
 * correlation ids, no stack trace) and returns its OAuth error, first code and description.
 */
export function entraError(body: string): { error: string; code: number; description: string } {
  const j = JSON.parse(body);
  expect(j.error_description).toMatch(/^AADSTS\d+: /);
  expect(Array.isArray(j.error_codes)).toBe(true);
  expect(j.trace_id).toBeTruthy();
  expect(j.correlation_id).toBeTruthy();
  expect(body).not.toMatch(/\n\s+at /);
  return { error: j.error, code: j.error_codes[0], description: j.error_description };
}

/** Closes a cloud startTestCloud started and removes its directory, as far as they exist. */
export async function stopTestCloud(
  cloud: CloudHandle | undefined,
  dir: string | undefined,
): Promise<void> {
  await cloud?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}

/** JSON.parse, or undefined for text that is not JSON. */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An HTTPS reply with its body parsed as JSON (undefined when the body is not JSON). */
export interface JsonReply extends HttpResponse {
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field
  json: any;
}

export function withJson(reply: HttpResponse): JsonReply {
  return { ...reply, json: jsonOrUndefined(reply.body) };
}

/** A node key pair imported into WebCrypto for `alg`: the private key signs, the public verifies. */
export async function webCryptoKeys(
  pair: { privateKey: KeyObject; publicKey: KeyObject },
  alg: Parameters<typeof webcrypto.subtle.importKey>[2],
) {
  return {
    privateKey: await webcrypto.subtle.importKey(
      'pkcs8',
      pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
      alg,
      false,
      ['sign'],
    ),
    publicKey: await webcrypto.subtle.importKey(
      'spki',
      pair.publicKey.export({ type: 'spki', format: 'der' }),
      alg,
      true,
      ['verify'],
    ),
  };
}

/**
 * A certificate for `subject` on `privateKey`'s public key, valid from now for a day and without
 * extensions, as a computer's on-premises certificate is: self-signed unless `issuer` is given.
 */
export function dayCertificate(
  privateKey: KeyObject,
  subject: string,
  issuer: Authority | { self: KeyObject } = { self: privateKey },
) {
  return signCertificate(issuer, {
    subject,
    publicKey: createPublicKey(privateKey),
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [],
  });
}

/** A v2 access token for `resource` (Microsoft Graph by default) issued by the cloud itself. */
export async function graphToken(
  cloud: CloudHandle,
  user: User,
  clientId: string,
  resource?: Application,
): Promise<string> {
  const app = resource ?? (await cloud.directory.applications.get(APP_IDS.microsoftGraph));
  if (!app) throw new Error('the directory has no Microsoft Graph application');
  const { token } = await issueAccessToken(cloud.services, {
    user,
    clientId,
    resource: app,
    version: 2,
    amr: ['pwd'],
    authTime: Math.floor(Date.now() / 1000),
  });
  return token;
}
