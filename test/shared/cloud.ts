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
import type { Application, NewUser, User } from '../../cloud/directory/types.ts';
import { type Authority, signCertificate } from '../../cloud/pki/authority.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import { type CloudHandle, type StartCloudOptions, startCloud } from '../../cloud/server.ts';
import { SIGNINS_DB_NAME, SignInStore } from '../../cloud/signins/store.ts';
import { issueAccessToken } from '../../cloud/token-service/access-tokens.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { form, type HttpResponse, httpsRequest } from '../prt-client/http.ts';

/** scrypt parameters that keep password hashing fast in tests. */
export const TEST_SCRYPT = { ln: 10, r: 8, p: 1 };

/** The password the cloud tests give their users. */
export const PASSWORD = 'Correct-Horse-9';

/** Exchange Online: its v1 resource URI and its application id. */
export const EXCHANGE = 'https://outlook.office365.com';
export const EXO_ID = '00000002-0000-0ff1-ce00-000000000000';
/** Client ids: OneDrive SyncEngine (a broker client) and Microsoft Azure CLI (a public client). */
export const ONEDRIVE = 'ab9b8c07-8f02-4f72-87fa-80105867a763';
export const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
/** Outlook's user agent on Windows: it marks a request as a Windows desktop client's. */
export const DESKTOP_UA = 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928)';

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

/** A test cloud whose sign-in log the test reads; stopSignInCloud closes both. */
export interface SignInTestCloud extends TestCloud {
  readonly store: SignInStore;
}

/**
 * startTestCloud with the token service and the core routes, Conditional Access evaluating what
 * `policies()` returns at each request, and token requests logged to `store`.
 */
export async function startSignInCloud(
  prefix: string,
  policies: () => unknown[],
): Promise<SignInTestCloud> {
  let store: SignInStore | undefined;
  let started: TestCloud;
  try {
    started = await startTestCloud(prefix, {
      routes: (c) => {
        store = new SignInStore(join(c.paths.root, SIGNINS_DB_NAME));
        return [
          ...tokenRoutes(c, { policies: { list: async () => policies() }, signIns: store }),
          ...coreRoutes(c),
        ];
      },
    });
  } catch (err) {
    store?.close();
    throw err;
  }
  if (!store) throw new Error('the cloud did not build its routes');
  return { ...started, store };
}

/** Closes the sign-in log of a cloud startSignInCloud started, then stops it as stopTestCloud does. */
export async function stopSignInCloud(
  store: SignInStore | undefined,
  cloud: CloudHandle | undefined,
  dir: string | undefined,
): Promise<void> {
  store?.close();
  await stopTestCloud(cloud, dir);
}

/** Adds the user `<name>@<tenant domain>` with PASSWORD; `more` gives roles, groups and the rest. */
export function createUser(
  cloud: CloudHandle,
  name: string,
  more: Omit<NewUser, 'upn' | 'password'> = {},
): Promise<User> {
  return cloud.directory.users.create({
    upn: `${name}@${cloud.tenant.domain}`,
    password: PASSWORD,
    ...more,
  });
}

/**
 * A v1 password grant (`resource`) to `/common/oauth2/token` over HTTPS, sent with `userAgent`
 * when one is given (the user agent gives the client's platform).
 */
export function passwordToken(
  cloud: CloudHandle,
  ca: string,
  args: {
    clientId: string;
    username: string;
    password: string;
    resource: string;
    userAgent?: string;
  },
): Promise<HttpResponse> {
  const f = form({
    grant_type: 'password',
    client_id: args.clientId,
    username: args.username,
    password: args.password,
    resource: args.resource,
  });
  return httpsRequest(`${cloud.url}/common/oauth2/token`, {
    method: 'POST',
    ca,
    headers: args.userAgent ? { ...f.headers, 'user-agent': args.userAgent } : f.headers,
    body: f.body,
  });
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
