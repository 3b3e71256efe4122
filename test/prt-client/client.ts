/**
 * A PRT client written from docs/prt-protocol.md: register a device (§2), get a nonce (§3), a PRT
 * (§4), app tokens through the PRT and renewals (§6.1), and redeem refresh tokens. It holds its
 * keys in node:crypto (the cloud's tests need no TPM) and talks HTTPS to the lab cloud.
 */
import 'reflect-metadata';
import { generateKeyPairSync, type KeyObject, randomUUID, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import {
  decryptResponse,
  deviceSignedJwt,
  prtCookie,
  rsa1Blob,
  sessionSignedJwt,
  unwrapSessionKey,
} from './crypto.ts';
import { form, type HttpResponse, httpsRequest } from './http.ts';

/** node's WebCrypto, typed as the provider @peculiar/x509 expects (a DOM type this project omits). */
const provider = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[1]
>;

export const WINDOWS_BROKER = '38aa3b87-a06d-4817-b275-7a316988d93b';
export const BROKER_PLUGIN = '29d9ed98-a469-4536-ade2-f981bc1d605e';
export const DRS_RESOURCE = 'urn:ms-drs:enterpriseregistration.windows.net';
/** The cookie (or header) name of the browser SSO credential (§6.3). */
export const PRT_COOKIE = 'x-ms-RefreshTokenCredential';
/** The fixed CSR subject Windows uses (§1.4). */
const CSR_SUBJECT = 'CN=7E980AD9-B86D-4306-9425-9AC066FB014A';

export interface Device {
  deviceId: string;
  certDer: Buffer;
  deviceKey: KeyObject;
  transportKey: KeyObject;
}

export interface Prt {
  prt: string;
  sessionKey: Buffer;
  response: Record<string, unknown>;
}

export class PrtTestClient {
  readonly base: string;
  readonly tenant: string;
  private readonly ca: string;

  constructor(opts: { baseUrl: string; tenant: string; ca: string }) {
    this.base = opts.baseUrl.replace(/\/$/, '');
    this.tenant = opts.tenant;
    this.ca = opts.ca;
  }

  async post(
    path: string,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    const f = form(fields);
    return httpsRequest(`${this.base}${path}`, {
      method: 'POST',
      ca: this.ca,
      headers: { ...headers, ...f.headers },
      body: f.body,
    });
  }

  async token(fields: Record<string, string>, v2 = false): Promise<HttpResponse> {
    return this.post(`/${this.tenant}/oauth2/${v2 ? 'v2.0/' : ''}token`, fields);
  }

  async nonce(): Promise<string> {
    const r = await this.token({ grant_type: 'srv_challenge' });
    if (r.status !== 200) throw new Error(`srv_challenge: ${r.status} ${r.body}`);
    return JSON.parse(r.body).Nonce;
  }

  /** ROPC, as non-broker clients do; also how the registration token is obtained. */
  async passwordGrant(args: {
    clientId: string;
    username: string;
    password: string;
    resource?: string;
    scope?: string;
  }) {
    const fields: Record<string, string> = {
      grant_type: 'password',
      client_id: args.clientId,
      username: args.username,
      password: args.password,
      ...(args.resource ? { resource: args.resource } : {}),
      ...(args.scope ? { scope: args.scope } : {}),
    };
    return this.token(fields, args.scope !== undefined);
  }

  /** §2: join (JoinType 0) or register (4) a device with a DRS bearer token. */
  async registerDevice(
    accessToken: string,
    joinType: 0 | 4 = 0,
  ): Promise<{ device: Device; response: HttpResponse }> {
    const dk = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const tk = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const keys = {
      privateKey: await webcrypto.subtle.importKey(
        'pkcs8',
        dk.privateKey.export({ type: 'pkcs8', format: 'der' }),
        alg,
        false,
        ['sign'],
      ),
      publicKey: await webcrypto.subtle.importKey(
        'spki',
        dk.publicKey.export({ type: 'spki', format: 'der' }),
        alg,
        true,
        ['verify'],
      ),
    };
    const csr = await x509.Pkcs10CertificateRequestGenerator.create(
      { name: CSR_SUBJECT, keys, signingAlgorithm: alg },
      provider,
    );
    const body = JSON.stringify({
      CertificateRequest: { Type: 'pkcs10', Data: Buffer.from(csr.rawData).toString('base64') },
      TransportKey: rsa1Blob(tk.publicKey).toString('base64'),
      TargetDomain: 'contoso.test',
      DeviceType: 'Windows',
      OSVersion: '10.0.22631.4460',
      DeviceDisplayName: `LAB-${randomUUID().slice(0, 8)}`,
      JoinType: joinType,
      attributes: { ReuseDevice: 'true', ReturnClientSid: 'true' },
    });
    const response = await httpsRequest(`${this.base}/EnrollmentServer/device/?api-version=2.0`, {
      method: 'POST',
      ca: this.ca,
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        'user-agent': 'Dsreg/10.0 (Windows 10.0.22631.4460)',
      },
      body,
    });
    if (response.status !== 200 && response.status !== 201)
      return { device: undefined as never, response };
    const out = JSON.parse(response.body);
    const certDer = Buffer.from(out.Certificate.RawBody, 'base64');
    const cert = new x509.X509Certificate(certDer);
    const deviceId = cert.subject.replace(/^CN=/, '');
    return {
      device: { deviceId, certDer, deviceKey: dk.privateKey, transportKey: tk.privateKey },
      response,
    };
  }

  /** §4: the PRT with a password, in a request JWT signed by the device key. */
  async requestPrt(
    device: Device,
    args: { username: string; password: string; kdfVersion?: 1 | 2; nonce?: string },
  ): Promise<{ prt?: Prt; response: HttpResponse }> {
    const nonce = args.nonce ?? (await this.nonce());
    const payload = {
      client_id: WINDOWS_BROKER,
      request_nonce: nonce,
      scope: 'openid aza ugs',
      group_sids: [],
      win_ver: '10.0.22631.4460',
      grant_type: 'password',
      username: args.username,
      password: args.password,
    };
    const request = deviceSignedJwt(
      device.deviceKey,
      device.certDer,
      payload,
      (args.kdfVersion ?? 2) === 2 ? { kdf_ver: 2 } : {},
    );
    const response = await this.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request,
      windows_api_version: '2.0',
      client_info: '1',
    });
    if (response.status !== 200) return { response };
    const json = JSON.parse(response.body);
    const sessionKey = unwrapSessionKey(json.session_key_jwe, device.transportKey);
    return { prt: { prt: json.refresh_token, sessionKey, response: json }, response };
  }

  /** §6.1: a request signed with the session key; the answer is a JWE decrypted with it. */
  async prtSigned(
    prt: Prt,
    payload: Record<string, unknown>,
    kdfVersion: 1 | 2 = 2,
  ): Promise<{ json?: Record<string, unknown>; response: HttpResponse; jwt: string }> {
    const { jwt } = sessionSignedJwt(prt.sessionKey, payload, kdfVersion);
    const response = await this.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      request: jwt,
      windows_api_version: '2.0',
      client_info: '1',
    });
    if (response.status !== 200) return { response, jwt };
    return { json: decryptResponse(response.body, prt.sessionKey), response, jwt };
  }

  /** WAM-style app token through the PRT (§6.1). */
  async appTokenViaPrt(
    prt: Prt,
    args: { clientId: string; resource: string; nonce?: string; aza?: boolean; appVer?: string },
  ) {
    const now = Math.floor(Date.now() / 1000);
    return this.prtSigned(prt, {
      client_id: args.clientId,
      grant_type: 'refresh_token',
      refresh_token: prt.prt,
      request_nonce: args.nonce ?? (await this.nonce()),
      scope: args.aza ? 'openid aza' : 'openid',
      resource: args.resource,
      redirect_uri: `ms-appx-web://Microsoft.AAD.BrokerPlugin/${args.clientId}`,
      iss: 'aad:brokerplugin',
      aud: 'login.microsoftonline.com',
      win_ver: '10.0.22631.4460',
      // The calling app's version, which Conditional Access checks against client minimums.
      ...(args.appVer ? { app_ver: args.appVer } : {}),
      iat: String(now),
      exp: String(now + 300),
    });
  }

  /**
   * §6.3: the browser SSO cookie for `prt`, signed with its session key over `nonce` (a fresh
   * srv_challenge nonce unless given; `null` leaves the nonce out).
   */
  async prtCookie(prt: Prt, nonce?: string | null, kdfVersion: 1 | 2 = 2): Promise<string> {
    const n = nonce === null ? undefined : (nonce ?? (await this.nonce()));
    return prtCookie(prt.sessionKey, prt.prt, n, kdfVersion);
  }

  /**
   * GET /authorize (v1, or v2 with `v2`) with `query`, presenting `credential` as a cookie of
   * that name (the default) or as a header; redirects are not followed.
   */
  async authorize(
    query: Record<string, string>,
    opts: {
      credential?: string;
      transport?: 'cookie' | 'header';
      v2?: boolean;
      headers?: Record<string, string>;
    } = {},
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.credential !== undefined) {
      if (opts.transport === 'header') headers[PRT_COOKIE] = opts.credential;
      else headers.cookie = `${PRT_COOKIE}=${opts.credential}`;
    }
    const path = `/${this.tenant}/oauth2/${opts.v2 ? 'v2.0/' : ''}authorize`;
    return httpsRequest(`${this.base}${path}?${new URLSearchParams(query).toString()}`, {
      ca: this.ca,
      headers,
    });
  }

  /** PRT renewal (§6.1): a new PRT, the same session key. */
  async renewPrt(prt: Prt) {
    return this.prtSigned(prt, {
      client_id: WINDOWS_BROKER,
      scope: 'openid aza ugs',
      iss: 'aad:brokerplugin',
      grant_type: 'refresh_token',
      refresh_token: prt.prt,
      previous_refresh_token: prt.prt,
      request_nonce: await this.nonce(),
      group_sids: [],
      win_ver: '10.0.22631.4460',
    });
  }

  /** Redeems an app refresh token in a session-key-signed request (how WAM proves binding, §7). */
  async redeemBound(prt: Prt, args: { clientId: string; refreshToken: string; resource: string }) {
    const now = Math.floor(Date.now() / 1000);
    return this.prtSigned(prt, {
      client_id: args.clientId,
      grant_type: 'refresh_token',
      refresh_token: args.refreshToken,
      request_nonce: await this.nonce(),
      scope: 'openid',
      resource: args.resource,
      iss: 'aad:brokerplugin',
      aud: 'login.microsoftonline.com',
      iat: String(now),
      exp: String(now + 300),
    });
  }

  /** A plain bearer refresh_token grant, as an attacker with a stolen token would send it. */
  async plainRefresh(args: {
    clientId: string;
    refreshToken: string;
    resource?: string;
    scope?: string;
  }) {
    return this.token(
      {
        grant_type: 'refresh_token',
        client_id: args.clientId,
        refresh_token: args.refreshToken,
        ...(args.resource ? { resource: args.resource } : {}),
        ...(args.scope ? { scope: args.scope } : {}),
      },
      args.scope !== undefined,
    );
  }
}
