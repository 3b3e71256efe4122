/**
 * The device agent (CloudAP's and the WAM plugin's role, prt-protocol §1.1): PRT acquisition with
 * a device-signed request (§4), PRT renewal (§4.5, §6.1), app tokens and bound refresh tokens
 * through PRT-signed requests (§6.1, §7), SSO cookies (§6.3), and sealing for the broker. It
 * implements the broker's BrokerAgent port; every key operation goes to the KeyProvider (the TPM),
 * and no key material ever leaves through this class.
 *
 * Lab time (agent/clock.ts) drives renewal: a PRT older than the renewal interval (4 hours of lab
 * time by default, as CloudAP does) is renewed before it is next used, when lab time is advanced,
 * and on a real-time tick when the agent runs long (tickMs). A PRT past its expiry (14 days from
 * the cloud's answer, refresh_token_expires_in) is never sent: the user must sign in again.
 */
import { constants, randomBytes, verify, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type {
  AgentAccount,
  AgentCookie,
  AgentTokenRequest,
  AgentTokenResponse,
  BrokerAgent,
  CloudRefusal,
} from '../broker/agent-port.ts';
import {
  BROKER_PLUGIN_ISSUER,
  brokerRedirectUri,
  DRS_RESOURCE,
  decryptResponseWith,
  ESTS_AUDIENCE,
  fromBase64Url,
  type JsonObject,
  openSessionKeyJwePayload,
  PRT_COOKIE_NAME,
  PRT_SCOPE,
  parseJsonObject,
  parseSessionKeyJwe,
  signRs256With,
  signWithSessionKeyDerive,
  WINDOWS_BROKER_CLIENT_ID,
} from '../protocol/index.ts';
import { acquireDirLock, type DirLock } from '../tpm-sim/state/dir-lock.ts';
import { type Clock, startTicker, systemClock } from './clock.ts';
import { deleteDevice, fetchDrsNonce, fetchNonce, postSignedRequest } from './cloud-api.ts';
import { AgentCloudError, AgentDeviceError, AgentNoPrtError } from './errors.ts';
import { checkPrivateDir } from './files.ts';
import { type CloudEndpoint, jsonOf, refusalOf, refuse } from './http.ts';
import { keySourceFor, openKeyProvider } from './keys/open.ts';
import type { KeyProvider } from './keys/provider.ts';
import { Mutex } from './mutex.ts';
import { NONCE_REFUSALS, NonceCache } from './nonce-cache.ts';
import { seal, unseal } from './seal.ts';
import { tpmDeriver } from './session-key.ts';
import { type AccountStatus, attestationStatus, type DeviceStatus, dsregTime } from './status.ts';
import {
  type AccountRecord,
  type AccountsFile,
  AGENT_LOCK_FILE,
  configOf,
  type DeviceConfig,
  type DeviceRecord,
  deviceDir,
  readAccounts,
  readCloudCa,
  readDeviceRecord,
  type StoredRefusal,
  writeAccounts,
} from './store.ts';
import { parseTpmSpec } from './tpm-spec.ts';

/** CloudAP renews the PRT every 4 hours (prt-protocol §4.5). */
export const DEFAULT_RENEWAL_INTERVAL_MS = 4 * 3600_000;
/** A signed request's `exp`: 5 minutes after `iat`, the lifetime of a nonce in the lab cloud. */
const REQUEST_LIFETIME_S = 300;
/** BrowserCore's cookie record (§6.3 "Native messaging reply" [RT-bc]). */
const COOKIE_P3P =
  'CP="CAO DSP COR ADMa DEV CONo TELo CUR PSA PSD TAI IVDo OUR SAMi BUS DEM NAV STA UNI COM INT PHY ONL FIN PUR LOCi CNT"';
const COOKIE_FLAGS = 8256;

/** Refusals that mean the device object is disabled or gone: every PRT on it is dead (§4.5). */
const DEVICE_REFUSALS = new Set([700003, 135011]);
/** Refusals that mean the account's user can no longer use its PRT (disabled, deleted; §4.5). */
const USER_REFUSALS = new Set([50057, 50034]);
/** Refusals about the PRT itself (expired, revoked, not a token of this tenant). */
const PRT_REFUSALS = new Set([70008, 50173, 70000]);

export interface OpenDeviceAgentOptions {
  readonly dataDir: string;
  readonly name: string;
  /** Lab time; real time by default. */
  readonly clock?: Clock;
  /** Lab time between PRT renewals; 4 hours by default. */
  readonly renewalIntervalMs?: number;
  /** A real-time period for the renewal check of a long-running agent; none by default. */
  readonly tickMs?: number;
}

function isGuid(v: unknown): v is string {
  return (
    typeof v === 'string' &&
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)
  );
}

/** The claims of the PRT response's id_token, which is unsigned (`alg: none`, §4.3). */
function idTokenClaims(idToken: unknown): JsonObject {
  if (typeof idToken !== 'string')
    throw new AgentDeviceError("the cloud's PRT answer has no id_token");
  const parts = idToken.split('.');
  if (parts.length !== 3) throw new AgentDeviceError("the cloud's PRT id_token is not a JWT");
  // Trusted because it arrived over TLS from the cloud this device trusts, in the same answer as
  // the PRT; the cloud does not sign it (§4.3).
  return parseJsonObject(
    fromBase64Url(parts[1]!, { what: 'id_token payload' }),
    'id_token payload',
  );
}

function storedRefusal(r: CloudRefusal, at: number): StoredRefusal {
  return {
    error: r.error,
    aadsts: r.aadsts,
    description: r.description,
    correlationId: r.correlationId,
    at,
  };
}

function positiveSeconds(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined;
}

export class DeviceAgent implements BrokerAgent {
  readonly config: DeviceConfig;
  readonly dir: string;
  readonly #record: DeviceRecord;
  readonly #keys: KeyProvider;
  readonly #lock: DirLock;
  readonly #clock: Clock;
  readonly #renewalIntervalMs: number;
  readonly #cloud: CloudEndpoint;
  readonly #state = new Mutex();
  readonly #renewals = new Map<string, Promise<void>>();
  /** The srv_challenge nonce signed requests share (nonce-cache.ts says why that is safe). */
  readonly #nonces: NonceCache;
  readonly #stops: (() => void)[] = [];
  #accounts: AccountsFile;
  #background: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(args: {
    dir: string;
    record: DeviceRecord;
    caPem: string;
    keys: KeyProvider;
    lock: DirLock;
    clock: Clock;
    renewalIntervalMs: number;
    accounts: AccountsFile;
  }) {
    this.dir = args.dir;
    this.#record = args.record;
    this.config = configOf(args.record, args.caPem);
    this.#keys = args.keys;
    this.#lock = args.lock;
    this.#clock = args.clock;
    this.#renewalIntervalMs = args.renewalIntervalMs;
    this.#accounts = args.accounts;
    this.#cloud = { url: args.record.cloudUrl, caPem: args.caPem };
    const tenantId = args.record.tenantId;
    this.#nonces = new NonceCache(
      () => fetchNonce(this.#cloud, tenantId),
      () => this.#clock.now(),
    );
  }

  /** Opens a device added with addDevice; the device stays locked to this agent until close(). */
  static async open(options: OpenDeviceAgentOptions): Promise<DeviceAgent> {
    const dir = deviceDir(options.dataDir, options.name);
    const interval = options.renewalIntervalMs ?? DEFAULT_RENEWAL_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) {
      throw new RangeError('renewalIntervalMs must be a positive number');
    }
    try {
      await checkPrivateDir(dir);
    } catch (err) {
      throw new AgentDeviceError(`no device '${options.name}' in ${options.dataDir}`, {
        cause: err,
      });
    }
    const lock = await acquireDirLock(join(dir, AGENT_LOCK_FILE), 'device directory');
    let keys: KeyProvider | undefined;
    try {
      const record = await readDeviceRecord(dir, options.name);
      const caPem = await readCloudCa(dir);
      const accounts = await readAccounts(dir);
      keys = await openKeyProvider(
        parseTpmSpec(record.tpm),
        dir,
        keySourceFor(dir, record.keystore),
        record.keys,
      );
      const agent = new DeviceAgent({
        dir,
        record,
        caPem,
        keys,
        lock,
        clock: options.clock ?? systemClock,
        renewalIntervalMs: interval,
        accounts,
      });
      agent.#startBackground(options.tickMs);
      return agent;
    } catch (err) {
      await keys?.close().catch(() => {});
      await lock.release().catch(() => {});
      throw err;
    }
  }

  #startBackground(tickMs: number | undefined): void {
    const check = () => {
      this.#background = this.#background.then(() => this.#renewDue());
    };
    this.#stops.push(this.#clock.onAdvance(check));
    if (tickMs !== undefined) this.#stops.push(startTicker(check, tickMs));
  }

  /** Resolves when the renewal checks started by clock advances or ticks have finished. */
  idle(): Promise<void> {
    return this.#background;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of this.#stops) stop();
    await this.#background;
    await Promise.allSettled([...this.#renewals.values()]);
    try {
      await this.#keys.close();
    } finally {
      await this.#lock.release();
    }
  }

  #open(): void {
    if (this.#closed) throw new AgentDeviceError('the device agent is closed');
  }

  #registered(): void {
    this.#open();
    if (this.#record.state !== 'registered' || !this.#record.certificate) {
      throw new AgentDeviceError(
        `device '${this.#record.name}' is not registered yet: its computer object must be pre-created in the cloud, then run 'prtlab device add ${this.#record.name} --join hybrid' again`,
      );
    }
  }

  /** Changes accounts.json as one step: read the current state, apply `change`, write. */
  #update(change: (state: AccountsFile) => AccountsFile): Promise<void> {
    return this.#state.run(async () => {
      const next = change(this.#accounts);
      await writeAccounts(this.dir, next);
      this.#accounts = next;
    });
  }

  #setAccount(id: string, change: (a: AccountRecord) => AccountRecord): Promise<void> {
    return this.#update((s) => ({
      ...s,
      accounts: s.accounts.map((a) => (a.id === id ? change(a) : a)),
    }));
  }

  #account(id: string): AccountRecord | undefined {
    return this.#accounts.accounts.find((a) => a.id === id);
  }

  #isUsable(a: AccountRecord): boolean {
    return a.state === 'valid' && this.#clock.now() < a.expiresAt;
  }

  /** The account's record if its PRT can be used now; ERR_AGENT_NO_PRT otherwise. */
  #usable(id: string): AccountRecord {
    const a = this.#account(id);
    if (!a)
      throw new AgentNoPrtError('none', `no PRT for account ${id} on this device; sign in first`);
    if (a.state === 'revoked') {
      throw new AgentNoPrtError(
        'revoked',
        `the PRT of ${a.upn} is no longer valid${a.lastError ? ` (AADSTS${a.lastError.aadsts})` : ''}; sign in again`,
      );
    }
    if (this.#clock.now() >= a.expiresAt) {
      throw new AgentNoPrtError(
        'expired',
        `the PRT of ${a.upn} expired at ${dsregTime(a.expiresAt)}; sign in again`,
      );
    }
    return a;
  }

  async #prtOf(a: AccountRecord): Promise<string> {
    const plain = await unseal(
      (d) => this.#keys.sealingHmac(d),
      'agent',
      Buffer.from(a.prt, 'base64'),
      `prt:${a.id}`,
    );
    return plain.toString('utf8');
  }

  async #sealPrt(accountId: string, prt: string): Promise<string> {
    const sealed = await seal(
      (d) => this.#keys.sealingHmac(d),
      'agent',
      Buffer.from(prt, 'utf8'),
      `prt:${accountId}`,
    );
    return sealed.toString('base64');
  }

  /**
   * Records what a refusal says about the device or the account (prt-protocol §4.5: a PRT is
   * invalidated by user disable or delete, device disable or delete, revocation, expiry).
   * `aboutPrt` is false when the request's refresh token was an app token, whose own expiry or
   * revocation says nothing about the PRT.
   */
  async #recordRefusal(accountId: string, refusal: CloudRefusal, aboutPrt: boolean): Promise<void> {
    const at = this.#clock.now();
    const stored = storedRefusal(refusal, at);
    if (DEVICE_REFUSALS.has(refusal.aadsts)) {
      await this.#update((s) => ({
        ...s,
        deviceAuth: { status: 'FAILED', ...stored },
        accounts: s.accounts.map((a) =>
          a.state === 'valid' ? { ...a, state: 'revoked', lastError: stored } : a,
        ),
      }));
    } else if (
      USER_REFUSALS.has(refusal.aadsts) ||
      (aboutPrt && PRT_REFUSALS.has(refusal.aadsts))
    ) {
      await this.#setAccount(accountId, (a) => ({ ...a, state: 'revoked', lastError: stored }));
    }
  }

  /** Runs `attempt` with a nonce fetched for it alone. */
  async #withOwnNonce<T>(attempt: (nonce: string) => Promise<T>): Promise<T> {
    return attempt(await fetchNonce(this.#cloud, this.#record.tenantId));
  }

  /**
   * Runs `attempt` with the shared nonce and, when the cloud refuses the nonce as stale or not its
   * own, once more with a fresh one (a new request: new ctx, iat and exp; nonce-cache.ts).
   */
  async #withNonce<T>(attempt: (nonce: string) => Promise<T>): Promise<T> {
    const nonce = await this.#nonces.get();
    try {
      return await attempt(nonce);
    } catch (err) {
      if (!(err instanceof AgentCloudError) || !NONCE_REFUSALS.has(err.refusal.aadsts)) throw err;
      this.#nonces.discard(nonce);
      return attempt(await this.#nonces.get());
    }
  }

  /**
   * Signs the payload with a key the TPM derives from the session key (KDFv2), sends it,
   * decrypts; `payloadFor` builds it around the request's nonce (#withNonce). `correlationId` is
   * the request's client-request-id when the caller has one. `sentAt` is lab time before sending,
   * the base for lifetimes in the answer.
   */
  async #prtSigned(
    a: AccountRecord,
    payloadFor: (nonce: string) => JsonObject,
    aboutPrt: boolean,
    what: string,
    correlationId?: string,
  ): Promise<{ json: JsonObject; correlationId: string; sentAt: number }> {
    return this.#withNonce((nonce) =>
      this.#prtSignedOnce(a, payloadFor(nonce), aboutPrt, what, correlationId),
    );
  }

  async #prtSignedOnce(
    a: AccountRecord,
    payload: JsonObject,
    aboutPrt: boolean,
    what: string,
    correlationId: string | undefined,
  ): Promise<{ json: JsonObject; correlationId: string; sentAt: number }> {
    const deriver = tpmDeriver(this.#keys, a.sessionKey);
    try {
      const request = await signWithSessionKeyDerive(deriver.derive, payload, { kdfVersion: 2 });
      const sentAt = this.#clock.now();
      const reply = await postSignedRequest(
        this.#cloud,
        this.#record.tenantId,
        request,
        correlationId,
      );
      if (reply.status !== 200) {
        const refusal = refusalOf(reply);
        if (!refusal) refuse(reply, what);
        await this.#recordRefusal(a.id, refusal, aboutPrt);
        throw new AgentCloudError(refusal, reply.status, what);
      }
      // The answer is a JWE under KDFv1(session key, its own ctx) (§5.5, §6.2), also from the TPM.
      const decrypted = await decryptResponseWith(reply.body.trim(), deriver.derive);
      try {
        return {
          json: parseJsonObject(decrypted.plaintext, 'token response'),
          correlationId: reply.correlationId,
          sentAt,
        };
      } finally {
        decrypted.plaintext.fill(0);
      }
    } finally {
      deriver.wipe();
    }
  }

  /** Renews the account's PRT if the renewal interval has passed (one renewal at a time each). */
  async #renewIfDue(id: string): Promise<void> {
    const a = this.#account(id);
    if (!a || !this.#isUsable(a) || this.#clock.now() - a.updatedAt < this.#renewalIntervalMs)
      return;
    let running = this.#renewals.get(id);
    if (!running) {
      running = this.#renew(a).finally(() => this.#renewals.delete(id));
      this.#renewals.set(id, running);
    }
    await running;
  }

  /** PRT renewal (§6.1 "PRT renewal payload"): a new PRT, the same session key. */
  async #renew(a: AccountRecord): Promise<void> {
    const prt = await this.#prtOf(a);
    const { json } = await this.#prtSigned(
      a,
      (nonce) => ({
        client_id: WINDOWS_BROKER_CLIENT_ID,
        scope: PRT_SCOPE,
        iss: BROKER_PLUGIN_ISSUER,
        grant_type: 'refresh_token',
        refresh_token: prt,
        previous_refresh_token: prt,
        request_nonce: nonce,
        group_sids: [],
        win_ver: this.#record.osVersion,
      }),
      true,
      'the PRT renewal',
    );
    const next = json.refresh_token;
    const lifetime = positiveSeconds(json.refresh_token_expires_in);
    if (typeof next !== 'string' || lifetime === undefined) {
      throw new AgentDeviceError("the cloud's renewal answer has no new PRT and lifetime");
    }
    const now = this.#clock.now();
    const sealed = await this.#sealPrt(a.id, next);
    await this.#setAccount(a.id, (cur) => {
      const { lastError: _dropped, ...rest } = cur;
      return { ...rest, prt: sealed, updatedAt: now, expiresAt: now + lifetime * 1000 };
    });
  }

  /** The renewal check over every account; failures are recorded (refusals) or left for later. */
  async #renewDue(): Promise<void> {
    if (this.#closed || this.#record.state !== 'registered') return;
    for (const a of this.#accounts.accounts) {
      await this.#renewIfDue(a.id).catch(() => {});
    }
  }

  // ---- BrokerAgent ----------------------------------------------------------------------------

  async accounts(): Promise<AgentAccount[]> {
    this.#open();
    await this.#renewDue();
    return this.#accounts.accounts
      .filter((a) => this.#isUsable(a))
      .map((a) => ({ id: a.id, upn: a.upn, tenantId: a.tenantId }));
  }

  /**
   * The PRT request (§4): a fresh nonce, a JWT with the password grant signed RS256 by the device
   * key in the TPM with `kdf_ver: 2` in its header, and from the answer the PRT (sealed at once)
   * and the session key (decrypted by the transport key and imported into the TPM in one step).
   */
  async signIn(upn: string, password: string): Promise<AgentAccount> {
    this.#registered();
    if (typeof upn !== 'string' || !upn.includes('@') || upn.length > 256) {
      throw new AgentDeviceError('sign-in needs a UPN (name@domain)');
    }
    if (typeof password !== 'string' || password.length === 0) {
      throw new AgentDeviceError('sign-in needs a password');
    }
    // A nonce of its own, not the shared one: the PRT request has no per-request value besides
    // the nonce (no ctx, iat or jti; prt-protocol §4), so a second sign-in of the same user on the
    // shared nonce would be the same bytes, and the cloud accepts a signed request once.
    const json = await this.#withOwnNonce(async (nonce) => {
      const request = await signRs256With(
        (input) => this.#keys.signWithDeviceKey(input),
        { typ: 'JWT', x5c: [this.#record.certificate!], kdf_ver: 2 },
        {
          client_id: WINDOWS_BROKER_CLIENT_ID,
          request_nonce: nonce,
          scope: PRT_SCOPE,
          group_sids: [],
          win_ver: this.#record.osVersion,
          grant_type: 'password',
          username: upn,
          password,
        },
      );
      const reply = await postSignedRequest(this.#cloud, this.#record.tenantId, request);
      if (reply.status !== 200) {
        const refusal = refusalOf(reply);
        if (refusal && DEVICE_REFUSALS.has(refusal.aadsts)) {
          const stored = storedRefusal(refusal, this.#clock.now());
          await this.#update((s) => ({ ...s, deviceAuth: { status: 'FAILED', ...stored } }));
        }
      }
      return jsonOf(reply, 'the PRT request');
    });
    const prt = json.refresh_token;
    const lifetime = positiveSeconds(json.refresh_token_expires_in);
    if (
      typeof prt !== 'string' ||
      typeof json.session_key_jwe !== 'string' ||
      lifetime === undefined
    ) {
      throw new AgentDeviceError(
        "the cloud's PRT answer lacks refresh_token, session_key_jwe or its lifetime",
      );
    }
    const claims = idTokenClaims(json.id_token);
    const oid = typeof claims.oid === 'string' ? claims.oid.toLowerCase() : undefined;
    const tid = claims.tid;
    const who = typeof claims.upn === 'string' ? claims.upn : upn;
    if (!isGuid(oid) || tid !== this.#record.tenantId) {
      throw new AgentDeviceError("the cloud's PRT id_token names no user of this device's tenant");
    }
    const parsed = parseSessionKeyJwe(json.session_key_jwe);
    // The GCM payload is checked with the key inside the import step (optional per §4.4; a
    // failure means the transport key did not recover the right key).
    const sessionKey = await this.#keys.importSessionKey(parsed.encryptedKey, (key) => {
      openSessionKeyJwePayload(parsed, key);
    });
    const sealed = await this.#sealPrt(oid, prt);
    const now = this.#clock.now();
    const account: AccountRecord = {
      id: oid,
      upn: who,
      tenantId: this.#record.tenantId,
      sessionKey,
      prt: sealed,
      kdfVersion: 2,
      updatedAt: now,
      expiresAt: now + lifetime * 1000,
      state: 'valid',
    };
    await this.#update((s) => ({
      ...s,
      deviceAuth: { status: 'SUCCESS' },
      accounts: [...s.accounts.filter((a) => a.id !== account.id), account],
    }));
    return { id: account.id, upn: account.upn, tenantId: account.tenantId };
  }

  async signOut(accountId: string): Promise<void> {
    this.#open();
    if (!this.#account(accountId))
      throw new AgentNoPrtError('none', `no account ${accountId} on this device`);
    // The session key is a TPM blob in accounts.json: dropping the record drops the key.
    await this.#update((s) => ({ ...s, accounts: s.accounts.filter((a) => a.id !== accountId) }));
  }

  #checkTokenRequest(req: AgentTokenRequest): void {
    if (typeof req !== 'object' || req === null) throw new TypeError('request must be an object');
    if (typeof req.accountId !== 'string') throw new TypeError('accountId must be a string');
    if (typeof req.clientId !== 'string' || req.clientId.length === 0) {
      throw new TypeError('clientId must be a non-empty string');
    }
    const hasResource = req.resource !== undefined;
    const hasScopes = req.scopes !== undefined;
    if (hasResource === hasScopes) throw new TypeError('give exactly one of resource and scopes');
    if (
      hasScopes &&
      (!Array.isArray(req.scopes) || req.scopes.some((s) => typeof s !== 'string'))
    ) {
      throw new TypeError('scopes must be a list of strings');
    }
    if (req.correlationId !== undefined && !isGuid(req.correlationId)) {
      throw new TypeError('correlationId must be a GUID');
    }
  }

  /** The members an app-token request and a bound-RT redemption share (§6.1). */
  #appPayload(req: AgentTokenRequest, refreshToken: string, nonce: string): JsonObject {
    const now = Math.floor(this.#clock.now() / 1000);
    return {
      client_id: req.clientId,
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      request_nonce: nonce,
      scope: req.scopes ? ['openid', ...req.scopes].join(' ') : 'openid',
      ...(req.resource !== undefined ? { resource: req.resource } : {}),
      redirect_uri: brokerRedirectUri(req.clientId),
      iss: BROKER_PLUGIN_ISSUER,
      aud: ESTS_AUDIENCE,
      win_ver: this.#record.osVersion,
      // The lab's way for a client to state its version in a signed request (cloud README).
      ...(req.clientVersion !== undefined ? { app_ver: req.clientVersion } : {}),
      // ROADtools sends iat and exp as strings (§6.1).
      iat: String(now),
      exp: String(now + REQUEST_LIFETIME_S),
    };
  }

  #tokenResponse(
    answer: { json: JsonObject; correlationId: string; sentAt: number },
    a: AccountRecord,
  ): AgentTokenResponse {
    const { json } = answer;
    const accessToken = json.access_token;
    const expiresOn = Number(json.expires_on);
    if (typeof accessToken !== 'string' || !Number.isFinite(expiresOn)) {
      throw new AgentDeviceError("the cloud's token answer has no access_token or expires_on");
    }
    const refreshToken = typeof json.refresh_token === 'string' ? json.refresh_token : undefined;
    // refresh_token_expires_in counts from the cloud's answer; counted from before the request,
    // the broker drops the token a moment early rather than send an expired one.
    const rtLifetime = positiveSeconds(json.refresh_token_expires_in);
    return {
      accessToken,
      tokenType: typeof json.token_type === 'string' ? json.token_type : 'Bearer',
      expiresOn,
      ...(refreshToken !== undefined ? { refreshToken } : {}),
      ...(refreshToken !== undefined && rtLifetime !== undefined
        ? { refreshTokenExpiresOn: Math.floor(answer.sentAt / 1000) + rtLifetime }
        : {}),
      correlationId: answer.correlationId,
      account: { id: a.id, upn: a.upn, tenantId: a.tenantId },
    };
  }

  async acquireToken(request: AgentTokenRequest): Promise<AgentTokenResponse> {
    this.#registered();
    this.#checkTokenRequest(request);
    this.#usable(request.accountId);
    await this.#renewIfDue(request.accountId);
    const a = this.#usable(request.accountId);
    const prt = await this.#prtOf(a);
    const answer = await this.#prtSigned(
      a,
      (nonce) => this.#appPayload(request, prt, nonce),
      true,
      'the token request',
      request.correlationId,
    );
    return this.#tokenResponse(answer, a);
  }

  async redeemRefreshToken(
    request: AgentTokenRequest & { readonly refreshToken: string },
  ): Promise<AgentTokenResponse> {
    this.#registered();
    this.#checkTokenRequest(request);
    if (typeof request.refreshToken !== 'string' || request.refreshToken.length === 0) {
      throw new TypeError('refreshToken must be a non-empty string');
    }
    this.#usable(request.accountId);
    await this.#renewIfDue(request.accountId);
    const a = this.#usable(request.accountId);
    const answer = await this.#prtSigned(
      a,
      (nonce) => this.#appPayload(request, request.refreshToken, nonce),
      false,
      'the refresh token redemption',
      request.correlationId,
    );
    return this.#tokenResponse(answer, a);
  }

  /**
   * `x-ms-RefreshTokenCredential` for each account with a usable PRT (§6.3), only for URIs of the
   * cloud this device is registered with: BrowserCore answers only for Entra's login URLs, and a
   * PRT cookie handed to another site would let that site sign in as the user.
   */
  async cookiesFor(uri: string): Promise<AgentCookie[]> {
    this.#registered();
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new TypeError('uri must be an absolute URL');
    }
    if (url.origin !== this.#cloud.url) return [];
    await this.#renewDue();
    const usable = this.#accounts.accounts.filter((a) => this.#isUsable(a));
    if (usable.length === 0) return [];
    // The nonce the login page handed out (`sso_nonce`), else a fresh one (§3 "Browser variant"),
    // not the shared one: the browser presents the cookie later, and a fresh nonce gives it the
    // whole nonce lifetime.
    const nonce =
      url.searchParams.get('sso_nonce') ?? (await fetchNonce(this.#cloud, this.#record.tenantId));
    const cookies: AgentCookie[] = [];
    for (const a of usable) {
      const deriver = tpmDeriver(this.#keys, a.sessionKey);
      try {
        const data = await signWithSessionKeyDerive(
          deriver.derive,
          {
            refresh_token: await this.#prtOf(a),
            is_primary: 'true',
            request_nonce: nonce,
            x_client_platform: 'windows',
            win_ver: this.#record.osVersion,
            windows_api_version: '2.0.1',
          },
          { kdfVersion: 2 },
        );
        cookies.push({ name: PRT_COOKIE_NAME, data, p3pHeader: COOKIE_P3P, flags: COOKIE_FLAGS });
      } finally {
        deriver.wipe();
      }
    }
    return cookies;
  }

  /** dsregcmd-like facts (agent/status.ts); observes only, never renews. */
  async status(): Promise<Record<string, unknown>> {
    return { ...(await this.deviceStatus()) };
  }

  async deviceStatus(): Promise<DeviceStatus> {
    this.#open();
    const r = this.#record;
    const now = this.#clock.now();
    const cert = r.certificate
      ? new X509Certificate(Buffer.from(r.certificate, 'base64'))
      : undefined;
    const challenge = randomBytes(32);
    let keySignTest: 'PASSED' | 'FAILED' = 'FAILED';
    try {
      const sig = await this.#keys.signWithDeviceKey(challenge);
      const key = cert?.publicKey ?? this.#keys.devicePublicKey;
      keySignTest = verify('sha256', challenge, { key, padding: constants.RSA_PKCS1_PADDING }, sig)
        ? 'PASSED'
        : 'FAILED';
    } catch {
      keySignTest = 'FAILED';
    }
    const auth = this.#accounts.deviceAuth;
    const deviceAuth =
      r.state !== 'registered'
        ? 'FAILED. The device is waiting for its computer object to be synced (pre-created) in the cloud.'
        : auth.status === 'SUCCESS'
          ? 'SUCCESS'
          : `FAILED. Device is either disabled or deleted (AADSTS${auth.aadsts} at ${dsregTime(auth.at)})`;
    const accounts: AccountStatus[] = [...this.#accounts.accounts]
      .sort((x, y) => y.updatedAt - x.updatedAt)
      .map((a) => {
        const expired = now >= a.expiresAt;
        const state = a.state === 'revoked' ? 'REVOKED' : expired ? 'EXPIRED' : 'VALID';
        return {
          Upn: a.upn,
          AccountId: a.id,
          AzureAdPrt: state === 'VALID' ? 'YES' : 'NO',
          AzureAdPrtUpdateTime: dsregTime(a.updatedAt),
          AzureAdPrtExpiryTime: dsregTime(a.expiresAt),
          AzureAdPrtState: state,
          AzureAdPrtRenewalDue:
            state === 'VALID' ? dsregTime(a.updatedAt + this.#renewalIntervalMs) : '-',
          ...(a.lastError
            ? {
                AzureAdPrtError: `AADSTS${a.lastError.aadsts} ${a.lastError.error} at ${dsregTime(a.lastError.at)} (correlation id ${a.lastError.correlationId})`,
              }
            : {}),
        };
      });
    const current = accounts[0];
    return {
      DeviceName: r.name,
      AzureAdJoined: r.state === 'registered' && r.joinType !== 'registered' ? 'YES' : 'NO',
      EnterpriseJoined: 'NO',
      DomainJoined: r.joinType === 'hybrid' ? 'YES' : 'NO',
      WorkplaceJoined: r.state === 'registered' && r.joinType === 'registered' ? 'YES' : 'NO',
      DeviceType: r.deviceType,
      OsVersion: r.osVersion,
      DeviceId: r.deviceId,
      Thumbprint: cert ? cert.fingerprint.replaceAll(':', '') : '-',
      DeviceCertificateValidity: cert
        ? `[ ${dsregTime(Date.parse(cert.validFrom))} -- ${dsregTime(Date.parse(cert.validTo))} ]`
        : '-',
      KeyProvider: this.#keys.facts.keyProvider,
      TpmProtected: this.#keys.facts.tpmProtected ? 'YES' : 'NO',
      Tpm: this.#keys.facts.tpm,
      KeySignTest: keySignTest,
      ...attestationStatus(r.attestation),
      DeviceAuthStatus: deviceAuth,
      TenantId: r.tenantId,
      TenantName: r.tenantDomain,
      CloudUrl: r.cloudUrl,
      AzureAdPrt: current?.AzureAdPrt ?? 'NO',
      AzureAdPrtUpdateTime: current?.AzureAdPrtUpdateTime ?? '-',
      AzureAdPrtExpiryTime: current?.AzureAdPrtExpiryTime ?? '-',
      AzureAdPrtAuthority: `${r.cloudUrl}/${r.tenantId}`,
      Accounts: accounts,
    };
  }

  /**
   * Deletes the device object in the cloud (DELETE /EnrollmentServer/device/{id}), proven with a
   * JWT the device key signs over a DRS nonce (cloud/registration/device-auth.ts: `x5c` = the
   * device certificate, `aud` = the DRS resource). False when the device never registered.
   */
  async leave(): Promise<boolean> {
    this.#open();
    if (this.#record.state !== 'registered' || !this.#record.certificate) return false;
    const nonce = await fetchDrsNonce(this.#cloud, this.#record.tenantId);
    const proof = await signRs256With(
      (input) => this.#keys.signWithDeviceKey(input),
      { typ: 'JWT', x5c: [this.#record.certificate] },
      { request_nonce: nonce, aud: DRS_RESOURCE },
    );
    await deleteDevice(this.#cloud, this.#record.deviceId, proof);
    return true;
  }

  seal(plain: Buffer, label: string): Promise<Buffer> {
    this.#open();
    return seal((d) => this.#keys.sealingHmac(d), 'broker', plain, label);
  }

  unseal(sealed: Buffer, label: string): Promise<Buffer> {
    this.#open();
    return unseal((d) => this.#keys.sealingHmac(d), 'broker', sealed, label);
  }
}
