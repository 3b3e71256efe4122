/**
 * Shared by the broker and client-stub tests: a BrokerAgent written for tests (FixtureAgent) that
 * holds its device keys and PRTs in memory and speaks the PRT protocol through the independent
 * test client (test/prt-client/) to a real lab cloud over HTTPS, so the broker sees real tokens,
 * real refusals and real Conditional Access blocks without a TPM; it seals with AES-256-GCM under
 * a random in-memory key, the label as associated data. Plus a lab that wires cloud, device,
 * agent and broker together, and a raw WebSocket for malformed-traffic tests.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import type {
  AgentAccount,
  AgentCookie,
  AgentTokenRequest,
  AgentTokenResponse,
  BrokerAgent,
  CloudRefusal,
} from '../../broker/agent-port.ts';
import { readBrokerFile } from '../../broker/files.ts';
import { type BrokerHandle, type StartBrokerOptions, startBroker } from '../../broker/server.ts';
import { coreRoutes } from '../../cloud/routes.ts';
import type { CloudHandle } from '../../cloud/server.ts';
import type { CloudServices } from '../../cloud/services.ts';
import type { SignInEntry } from '../../cloud/signins/entry.ts';
import { signInStoreFor } from '../../cloud/signins/registry.ts';
import { tokenRoutes } from '../../cloud/token-service/service.ts';
import { PrtlabError } from '../../lib/errors.ts';
import {
  BROKER_PLUGIN,
  type Device,
  DRS_RESOURCE,
  type Prt,
  PrtTestClient,
} from '../prt-client/client.ts';
import { decryptResponse, sessionSignedJwt } from '../prt-client/crypto.ts';
import { form, type HttpResponse, httpsRequest } from '../prt-client/http.ts';
import { startTestCloud, stopTestCloud } from './cloud.ts';

export const PASSWORD = 'Correct-Horse-9';
export const EXCHANGE = 'https://outlook.office365.com';
export const GRAPH = 'https://graph.microsoft.com';
export const ONEDRIVE = 'ab9b8c07-8f02-4f72-87fa-80105867a763';
export const TEAMS = '1fec8e78-bce4-4aaf-ab1b-5451cc387264';
export const VISUAL_STUDIO = '872cd9fa-d31f-45e0-9eab-6e460a02d1f1';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** The P3P header BrowserCore sends with the cookie (prt-protocol §6.3). */
const P3P =
  'CP="CAO DSP COR ADMa DEV CONo TELo CUR PSA PSD TAI IVDo OUR SAMi BUS DEM NAV STA UNI COM INT PHY ONL FIN PUR LOCi CNT"';

/** An agent cloud refusal as the real agent throws it: ERR_AGENT_CLOUD with `refusal`. */
export function cloudRefusalError(refusal: CloudRefusal): PrtlabError {
  const err = new PrtlabError('ERR_AGENT_CLOUD', refusal.description);
  return Object.assign(err, { refusal });
}

function refusalFrom(response: HttpResponse, correlationId: string): PrtlabError {
  let j: Record<string, unknown> = {};
  try {
    j = JSON.parse(response.body);
  } catch {
    // not Entra-shaped: reported with status only
  }
  const codes = Array.isArray(j.error_codes) ? j.error_codes : [];
  return cloudRefusalError({
    error: typeof j.error === 'string' ? j.error : `http_${response.status}`,
    aadsts: typeof codes[0] === 'number' ? codes[0] : 0,
    description:
      typeof j.error_description === 'string' ? j.error_description : `HTTP ${response.status}`,
    correlationId: typeof j.correlation_id === 'string' ? j.correlation_id : correlationId,
    ...(typeof j.suberror === 'string' ? { subError: j.suberror } : {}),
  });
}

const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<
    string,
    unknown
  >;

/** Methods a test can hold (their calls wait until released) or count. */
type Held = 'acquireToken' | 'redeemRefreshToken';

export class FixtureAgent implements BrokerAgent {
  readonly calls: Record<keyof BrokerAgent, number> = {
    accounts: 0,
    signIn: 0,
    signOut: 0,
    acquireToken: 0,
    redeemRefreshToken: 0,
    cookiesFor: 0,
    status: 0,
    seal: 0,
    unseal: 0,
  };
  /** The client versions the agent was asked to send, in order. */
  readonly versionsSent: (string | undefined)[] = [];
  /** The correlation ids the agent was asked to send (acquireToken, redeemRefreshToken), in order. */
  readonly correlationIdsSent: (string | undefined)[] = [];
  /** The refresh tokens redeemRefreshToken was asked to send, in order. */
  readonly refreshTokensSent: string[] = [];
  /**
   * When set, the lifetime in seconds the agent reports for refresh tokens instead of the cloud's
   * refresh_token_expires_in (to let a test see one expire).
   */
  refreshTokenLifetimeS: number | undefined;
  /** Errors the next call of a method throws instead of running (once each). */
  private readonly failures = new Map<keyof BrokerAgent, Error>();
  private readonly prts = new Map<string, { account: AgentAccount; prt: Prt }>();
  private readonly sealKey: Buffer;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private readonly held = new Set<Held>();

  readonly client: PrtTestClient;
  readonly device: Device;
  readonly tenantId: string;
  /** The lab CA (PEM), the only trust anchor for the cloud. */
  private readonly ca: string;

  constructor(opts: {
    client: PrtTestClient;
    device: Device;
    tenantId: string;
    ca: string;
    sealKey?: Buffer;
  }) {
    this.client = opts.client;
    this.device = opts.device;
    this.tenantId = opts.tenantId;
    this.ca = opts.ca;
    this.sealKey = opts.sealKey ?? randomBytes(32);
  }

  /** A new agent for the same device, sealing key and PRTs (the device after a restart). */
  restarted(): FixtureAgent {
    const next = new FixtureAgent({
      client: this.client,
      device: this.device,
      tenantId: this.tenantId,
      ca: this.ca,
      sealKey: this.sealKey,
    });
    for (const [id, v] of this.prts) next.prts.set(id, v);
    return next;
  }

  /** The same device and PRTs, but another sealing key (a cache copied to another device). */
  withOtherSealingKey(): FixtureAgent {
    const next = new FixtureAgent({
      client: this.client,
      device: this.device,
      tenantId: this.tenantId,
      ca: this.ca,
    });
    for (const [id, v] of this.prts) next.prts.set(id, v);
    return next;
  }

  /** Makes calls to `methods` wait until release() (to hold requests in flight). */
  hold(...methods: Held[]): void {
    for (const m of methods) this.held.add(m);
    this.gate ??= new Promise((r) => {
      this.openGate = r;
    });
  }

  release(): void {
    this.held.clear();
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  /** Makes the next call of `method` throw `error` instead of running. */
  failOn(method: keyof BrokerAgent, error: Error): void {
    this.failures.set(method, error);
  }

  private async enter(method: keyof BrokerAgent): Promise<void> {
    this.calls[method]++;
    const fail = this.failures.get(method);
    if (fail) {
      this.failures.delete(method);
      throw fail;
    }
    if (this.gate && this.held.has(method as Held)) await this.gate;
  }

  async accounts(): Promise<AgentAccount[]> {
    await this.enter('accounts');
    return [...this.prts.values()].map((p) => p.account);
  }

  async signIn(upn: string, password: string): Promise<AgentAccount> {
    await this.enter('signIn');
    const { prt, response } = await this.client.requestPrt(this.device, {
      username: upn,
      password,
    });
    if (!prt) throw refusalFrom(response, '');
    const id = claimsOf(String(prt.response.id_token));
    const account: AgentAccount = {
      id: String(id.oid),
      upn: String(id.upn),
      tenantId: String(id.tid),
    };
    this.prts.set(account.id, { account, prt });
    return account;
  }

  async signOut(accountId: string): Promise<void> {
    await this.enter('signOut');
    this.prts.delete(accountId);
  }

  private session(accountId: string) {
    const s = this.prts.get(accountId);
    if (!s) throw new PrtlabError('ERR_AGENT_NO_PRT', `no PRT for account ${accountId}`);
    return s;
  }

  /**
   * A session-key-signed request (prt-protocol §6.1) with a client-request-id (the caller's, else a
   * new one); the JWE opened. The answer's correlation id is the cloud's echo of it.
   */
  private async signed(
    prt: Prt,
    payload: Record<string, unknown>,
    account: AgentAccount,
    requested: string | undefined,
  ): Promise<AgentTokenResponse> {
    const sent = requested ?? randomUUID();
    const { jwt } = sessionSignedJwt(prt.sessionKey, payload);
    const f = form({
      grant_type: JWT_BEARER,
      request: jwt,
      windows_api_version: '2.0',
      client_info: '1',
    });
    const response = await httpsRequest(`${this.client.base}/${this.client.tenant}/oauth2/token`, {
      method: 'POST',
      ca: this.ca,
      headers: { ...f.headers, 'client-request-id': sent },
      body: f.body,
    });
    const echoed = response.headers['client-request-id'];
    const correlationId = typeof echoed === 'string' ? echoed : sent;
    if (response.status !== 200) throw refusalFrom(response, correlationId);
    const json = decryptResponse(response.body, prt.sessionKey);
    const now = Math.floor(Date.now() / 1000);
    const rtLifetime = this.refreshTokenLifetimeS ?? Number(json.refresh_token_expires_in);
    return {
      accessToken: String(json.access_token),
      tokenType: String(json.token_type),
      expiresOn:
        json.expires_on !== undefined
          ? Number(json.expires_on)
          : now + Number(json.expires_in ?? 3600),
      ...(typeof json.refresh_token === 'string' ? { refreshToken: json.refresh_token } : {}),
      ...(typeof json.refresh_token === 'string' && Number.isFinite(rtLifetime)
        ? { refreshTokenExpiresOn: now + rtLifetime }
        : {}),
      correlationId,
      account,
    };
  }

  private payload(request: AgentTokenRequest, refreshToken: string, nonce: string) {
    const now = Math.floor(Date.now() / 1000);
    return {
      client_id: request.clientId,
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      request_nonce: nonce,
      ...(request.resource !== undefined
        ? { scope: 'openid', resource: request.resource }
        : { scope: ['openid', ...(request.scopes ?? [])].join(' ') }),
      redirect_uri: `ms-appx-web://Microsoft.AAD.BrokerPlugin/${request.clientId}`,
      iss: 'aad:brokerplugin',
      aud: 'login.microsoftonline.com',
      win_ver: '10.0.22631.4460',
      ...(request.clientVersion !== undefined ? { app_ver: request.clientVersion } : {}),
      iat: String(now),
      exp: String(now + 300),
    };
  }

  async acquireToken(request: AgentTokenRequest): Promise<AgentTokenResponse> {
    await this.enter('acquireToken');
    this.versionsSent.push(request.clientVersion);
    this.correlationIdsSent.push(request.correlationId);
    const { account, prt } = this.session(request.accountId);
    return this.signed(
      prt,
      this.payload(request, prt.prt, await this.client.nonce()),
      account,
      request.correlationId,
    );
  }

  async redeemRefreshToken(
    request: AgentTokenRequest & { readonly refreshToken: string },
  ): Promise<AgentTokenResponse> {
    await this.enter('redeemRefreshToken');
    this.versionsSent.push(request.clientVersion);
    this.correlationIdsSent.push(request.correlationId);
    this.refreshTokensSent.push(request.refreshToken);
    const { account, prt } = this.session(request.accountId);
    return this.signed(
      prt,
      this.payload(request, request.refreshToken, await this.client.nonce()),
      account,
      request.correlationId,
    );
  }

  async cookiesFor(uri: string): Promise<AgentCookie[]> {
    await this.enter('cookiesFor');
    const ssoNonce = new URL(uri).searchParams.get('sso_nonce');
    const out: AgentCookie[] = [];
    for (const { prt } of this.prts.values()) {
      const nonce = ssoNonce ?? (await this.client.nonce());
      const { jwt } = sessionSignedJwt(prt.sessionKey, {
        refresh_token: prt.prt,
        is_primary: 'true',
        request_nonce: nonce,
        iat: String(Math.floor(Date.now() / 1000)),
      });
      out.push({ name: 'x-ms-RefreshTokenCredential', data: jwt, p3pHeader: P3P, flags: 8256 });
    }
    return out;
  }

  async status(): Promise<Record<string, unknown>> {
    await this.enter('status');
    return {
      AzureAdJoined: 'YES',
      DeviceId: this.device.deviceId,
      TenantId: this.tenantId,
      AzureAdPrt: this.prts.size > 0 ? 'YES' : 'NO',
      TpmProtected: 'NO',
    };
  }

  async seal(plain: Buffer, label: string): Promise<Buffer> {
    await this.enter('seal');
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.sealKey, iv);
    c.setAAD(Buffer.from(label));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), ct]);
  }

  async unseal(sealed: Buffer, label: string): Promise<Buffer> {
    await this.enter('unseal');
    try {
      const d = createDecipheriv('aes-256-gcm', this.sealKey, sealed.subarray(0, 12));
      d.setAAD(Buffer.from(label));
      d.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
    } catch (err) {
      throw new PrtlabError('ERR_AGENT_DEVICE', 'the sealed blob does not open', { cause: err });
    }
  }
}

export interface BrokerLab {
  readonly cloud: CloudHandle;
  readonly ca: string;
  readonly cloudDir: string;
  readonly client: PrtTestClient;
  readonly device: Device;
  /** A 0700 directory standing in for `<data>/devices/<NAME>`. */
  readonly deviceDir: string;
  readonly upn: string;
  /** A second user of the tenant (no PRT until signed in). */
  readonly otherUpn: string;
  /** Creates a FixtureAgent for the lab's device (no accounts yet). */
  agent(): FixtureAgent;
  /** The cloud's sign-in log entries whose correlation id is `correlationId`. */
  signInsWith(correlationId: string): SignInEntry[];
  /** Starts a broker on the device directory; stopped by close(). */
  broker(agent: BrokerAgent, options?: Partial<StartBrokerOptions>): Promise<BrokerHandle>;
  close(): Promise<void>;
}

/** A cloud with token, DRS and resource routes, two users, one joined device, a device dir. */
export async function startBrokerLab(prefix: string): Promise<BrokerLab> {
  let services: CloudServices | undefined;
  const { dir, cloud, ca } = await startTestCloud(prefix, {
    routes: (c) => {
      services = c;
      return [...tokenRoutes(c), ...coreRoutes(c)];
    },
  });
  const brokers: BrokerHandle[] = [];
  const scratch = await mkdtemp(join(tmpdir(), `${prefix}dev-`));
  try {
    const upn = `adele@${cloud.tenant.domain}`;
    const otherUpn = `alex@${cloud.tenant.domain}`;
    await cloud.directory.users.create({ upn, password: PASSWORD, displayName: 'Adele Vance' });
    await cloud.directory.users.create({
      upn: otherUpn,
      password: PASSWORD,
      displayName: 'Alex Wilber',
    });
    const client = new PrtTestClient({ baseUrl: cloud.url, tenant: cloud.tenant.id, ca });
    const drs = await client.passwordGrant({
      clientId: BROKER_PLUGIN,
      username: upn,
      password: PASSWORD,
      resource: DRS_RESOURCE,
    });
    const { device, response } = await client.registerDevice(JSON.parse(drs.body).access_token, 0);
    if (response.status !== 200) throw new Error(`device registration: ${response.body}`);
    const deviceDir = join(scratch, 'devices', 'PC-1');
    await mkdir(deviceDir, { recursive: true, mode: 0o700 });
    const tenantId = cloud.tenant.id;
    return {
      cloud,
      ca,
      cloudDir: dir,
      client,
      device,
      deviceDir,
      upn,
      otherUpn,
      agent() {
        return new FixtureAgent({ client, device, tenantId, ca });
      },
      signInsWith(correlationId) {
        if (!services) throw new Error('the cloud has no routes');
        return signInStoreFor(services)
          .list({ top: 10_000 })
          .value.filter((e) => e.correlationId === correlationId);
      },
      async broker(agent, options = {}) {
        const b = await startBroker({ agent, deviceDir, ...options });
        brokers.push(b);
        return b;
      },
      async close() {
        for (const b of brokers) await b.close();
        await rm(scratch, { recursive: true, force: true });
        await stopTestCloud(cloud, dir);
      },
    };
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    await stopTestCloud(cloud, dir);
    throw err;
  }
}

/** A WebSocket to the broker that sends raw text and reads raw answers, for protocol tests. */
export interface RawSocket {
  readonly ws: WebSocket;
  send(text: string | Buffer, binary?: boolean): void;
  /** The next answer, parsed. */
  next(): Promise<Record<string, unknown>>;
  /** Resolves with the close code once the connection is closed. */
  readonly closed: Promise<number>;
  /** Answers received and not yet taken by next(). */
  readonly queued: number;
}

export async function rawSocket(
  port: number,
  headers: Record<string, string>,
  options: { origin?: string } = {},
): Promise<RawSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, {
    headers,
    ...(options.origin ? { origin: options.origin } : {}),
  });
  const inbox: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown>) => void)[] = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(msg);
    else inbox.push(msg);
  });
  ws.on('error', () => {});
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  return {
    ws,
    send: (text, binary = false) => ws.send(text, { binary }),
    next: () => {
      const m = inbox.shift();
      if (m) return Promise.resolve(m);
      return new Promise((r) => waiters.push(r));
    },
    closed,
    get queued() {
      return inbox.length;
    },
  };
}

/** The Authorization header for the broker of `deviceDir`. */
export async function bearerFor(deviceDir: string): Promise<Record<string, string>> {
  const { secret } = await readBrokerFile(deviceDir);
  return { authorization: `Bearer ${secret}` };
}

/** The HTTP status of a refused upgrade (or 101 when it was accepted). */
export async function upgradeStatus(
  port: number,
  headers: Record<string, string>,
  options: { origin?: string; path?: string } = {},
): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${options.path ?? '/'}`, {
    headers,
    ...(options.origin ? { origin: options.origin } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.once('close', () => resolve(101));
      ws.close();
    });
    ws.once('error', reject);
  });
}
