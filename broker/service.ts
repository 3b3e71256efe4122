/**
 * The broker's methods, independent of the transport: what WAM does for an app (DESIGN "How data
 * flows", step 3). Token requests are served from the cache while the access token has more than
 * five minutes left (MSAL's refresh offset); otherwise the bound app refresh token is redeemed in
 * a PRT-signed request (prt-protocol §7, "WAM app refresh tokens"), and without one (or when the
 * cloud refuses it) the agent asks for a new token through the PRT (§6.1). The client gets the
 * access token only; the refresh token stays in the sealed cache (§6.2).
 *
 * Every failure becomes a JSON-RPC error whose `data` is {error, aadsts, correlationId, subError}
 * (README "Broker"); a Conditional Access block is a cloud refusal like any other (-32000 with
 * its AADSTS number).
 *
 * Correlation ids: an app may give acquireToken* a `correlationId` (a GUID, as MSAL sends one per
 * call). The agent sends it to the cloud as the request's client-request-id, so the cloud's sign-in
 * log entry and its answer carry it, and the broker's own answers (a cache hit, its own errors)
 * carry it too. A request that joins another's round trip in flight (one entry, one round trip)
 * gets that round trip's id: the one the cloud logged the token under.
 */
import { randomUUID } from 'node:crypto';
import { isPrtlabError } from '../lib/errors.ts';
import type {
  AgentAccount,
  AgentTokenRequest,
  AgentTokenResponse,
  BrokerAgent,
  CloudRefusal,
} from './agent-port.ts';
import { type CachedTokens, type CacheKey, cacheTarget, type TokenCache } from './cache.ts';
import type { BrokerErrorData } from './errors.ts';
import {
  cookieParams,
  type InteractiveParams,
  InvalidParams,
  interactiveParams,
  isMethod,
  noParams,
  type SilentParams,
  signOutParams,
  silentParams,
} from './params.ts';
import { RPC_ERRORS } from './rpc.ts';

/** An access token with less than this left is renewed rather than served (MSAL's default). */
export const REFRESH_OFFSET_S = 300;

/** Conditional Access blocks (token-protection.md §3.4): about the request, not the grant. */
const CA_BLOCKS = new Set([53003, 530084]);

/** What acquireToken* answer (README "Broker"). */
export interface TokenResult {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Unix seconds. */
  readonly expiresOn: number;
  readonly account: { readonly id: string; readonly upn: string };
  /**
   * The cloud's correlation id for the request that issued the token; on a cache hit the caller's
   * correlationId, or a new id.
   */
  readonly correlationId: string;
  /** True when the token came from the cache without asking the cloud. */
  readonly fromCache: boolean;
}

/** A JSON-RPC error to answer; never leaves the broker as an exception. */
export class RpcFailure extends Error {
  readonly rpcCode: number;
  readonly data: BrokerErrorData;
  constructor(rpcCode: number, message: string, data: BrokerErrorData) {
    super(message);
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

function brokerData(
  error: string,
  correlationId: string,
  extra: { subError?: string; field?: string } = {},
): BrokerErrorData {
  return {
    error,
    aadsts: null,
    correlationId,
    subError: extra.subError ?? null,
    ...(extra.field !== undefined ? { field: extra.field } : {}),
  };
}

function interactionRequired(correlationId: string, subError: string, message: string) {
  return new RpcFailure(
    RPC_ERRORS.interactionRequired,
    message,
    brokerData('interaction_required', correlationId, { subError }),
  );
}

function refusalOf(err: unknown): CloudRefusal | undefined {
  if (!isPrtlabError(err, 'ERR_AGENT_CLOUD')) return undefined;
  const r = (err as { refusal?: Partial<CloudRefusal> }).refusal;
  if (
    !r ||
    typeof r.error !== 'string' ||
    typeof r.aadsts !== 'number' ||
    typeof r.correlationId !== 'string'
  )
    return undefined;
  return r as CloudRefusal;
}

/** Who is calling, as the transport sees it. */
export interface Caller {
  /** False when this caller may not send another request to the cloud now (rate limit). */
  mayAskCloud(): boolean;
}

const UNLIMITED: Caller = { mayAskCloud: () => true };

export interface BrokerServiceOptions {
  readonly agent: BrokerAgent;
  readonly cache: TokenCache;
  /** Milliseconds since the epoch (tests freeze it). */
  readonly clock?: () => number;
  /** Broker log lines; never given tokens, secrets or passwords. */
  readonly log?: (line: string) => void;
}

interface Issued {
  readonly tokens: CachedTokens;
  readonly accountId: string;
  readonly correlationId: string;
}

export class BrokerService {
  private readonly agent: BrokerAgent;
  private readonly cache: TokenCache;
  private readonly clock: () => number;
  private readonly log: (line: string) => void;
  /** Cache misses in progress, so concurrent requests for one entry share one round trip. */
  private readonly inFlight = new Map<string, Promise<Issued>>();
  /** Bumped at sign-out, so a round trip that started before it does not refill the cache. */
  private readonly epochs = new Map<string, number>();

  constructor(options: BrokerServiceOptions) {
    this.agent = options.agent;
    this.cache = options.cache;
    this.clock = options.clock ?? Date.now;
    this.log = options.log ?? (() => {});
  }

  /**
   * Runs one method; throws RpcFailure for every error the caller should see. `caller.mayAskCloud`
   * is asked before any work that sends a request to the cloud (a cache miss, a sign-in, a
   * cookie), so the transport can ration each connection's round trips.
   */
  async call(
    method: string,
    params: Readonly<Record<string, unknown>> | undefined,
    caller: Caller = UNLIMITED,
  ) {
    let correlationId: string = randomUUID();
    const ration = () => {
      if (!caller.mayAskCloud())
        throw new RpcFailure(
          RPC_ERRORS.rateLimited,
          'Rate limit exceeded: too many requests to the cloud from this connection',
          brokerData('rate_limited', correlationId, { subError: 'too_many_cloud_requests' }),
        );
    };
    try {
      if (!isMethod(method))
        throw new RpcFailure(
          RPC_ERRORS.methodNotFound,
          `Method not found: ${method}`,
          brokerData('method_not_found', correlationId),
        );
      switch (method) {
        case 'getAccounts':
          noParams(method, params);
          return { accounts: (await this.agent.accounts()).map(publicAccount) };
        case 'acquireTokenSilent': {
          const p = silentParams(params);
          correlationId = p.correlationId ?? correlationId;
          return await this.silent(p, correlationId, ration);
        }
        case 'acquireTokenInteractive': {
          const p = interactiveParams(params);
          correlationId = p.correlationId ?? correlationId;
          ration();
          return await this.interactive(p);
        }
        case 'signOut':
          return await this.signOut(signOutParams(params).accountId, correlationId);
        case 'getCookieInfoForUri': {
          const { uri } = cookieParams(params);
          ration();
          const cookies = await this.agent.cookiesFor(uri);
          return {
            cookies: cookies.map((c) => ({
              name: c.name,
              data: c.data,
              p3pHeader: c.p3pHeader,
              flags: c.flags,
            })),
          };
        }
        case 'getDeviceStatus':
          noParams(method, params);
          return await this.agent.status();
      }
    } catch (err) {
      throw this.failure(err, method, correlationId);
    }
  }

  private failure(err: unknown, method: string, correlationId: string): RpcFailure {
    if (err instanceof RpcFailure) return err;
    if (err instanceof InvalidParams)
      return new RpcFailure(
        RPC_ERRORS.invalidParams,
        err.message,
        brokerData('invalid_params', correlationId, { field: err.field }),
      );
    const refusal = refusalOf(err);
    if (refusal)
      return new RpcFailure(RPC_ERRORS.cloudRefused, refusal.description || refusal.error, {
        error: refusal.error,
        aadsts: refusal.aadsts,
        correlationId: refusal.correlationId,
        subError: refusal.subError ?? null,
      });
    if (isPrtlabError(err, 'ERR_AGENT_NO_PRT'))
      return interactionRequired(
        correlationId,
        'no_prt',
        'The account has no primary refresh token on this device; sign in again.',
      );
    if (isPrtlabError(err)) {
      // The agent's message may name files or devices; the caller gets the code only.
      this.log(`${method}: device agent failure [${err.code}]: ${err.message}`);
      return new RpcFailure(
        RPC_ERRORS.agentFailure,
        `The device agent failed [${err.code}].`,
        brokerData('agent_failure', correlationId, { subError: err.code }),
      );
    }
    this.log(
      `${method}: internal error (correlation ${correlationId}): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    return new RpcFailure(
      RPC_ERRORS.internalError,
      'Internal error',
      brokerData('internal_error', correlationId),
    );
  }

  private async resolveAccount(accountId: string | undefined, correlationId: string) {
    if (accountId !== undefined) return accountId;
    const accounts = await this.agent.accounts();
    if (accounts.length === 0)
      throw interactionRequired(
        correlationId,
        'no_account',
        'No account is signed in on this device.',
      );
    if (accounts.length > 1)
      throw interactionRequired(
        correlationId,
        'multiple_accounts',
        'Several accounts are signed in on this device; give accountId.',
      );
    return accounts[0]!.id;
  }

  private async silent(
    p: SilentParams,
    correlationId: string,
    ration: () => void,
  ): Promise<TokenResult> {
    const accountId = await this.resolveAccount(p.accountId, correlationId);
    const key: CacheKey = { accountId, clientId: p.clientId, target: cacheTarget(p) };
    const cached = this.cache.get(key);
    if (cached && !p.forceRefresh && this.fresh(cached)) {
      return result(cached, accountId, correlationId, true);
    }
    ration();
    const request = agentRequest(accountId, p);
    if (p.forceRefresh) {
      const issued = await this.viaPrt(key, request);
      return result(issued.tokens, issued.accountId, issued.correlationId, false);
    }
    const flightKey = `${key.accountId}\n${key.clientId}\n${key.target}`;
    let flight = this.inFlight.get(flightKey);
    if (!flight) {
      flight = this.renew(key, request, cached).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, flight);
    }
    const issued = await flight;
    return result(issued.tokens, issued.accountId, issued.correlationId, false);
  }

  /**
   * The cached refresh token first (a PRT-signed redemption), else a token through the PRT. A
   * refresh token past its expiry (refresh_token_expires_in) is dropped, not sent: the cloud would
   * only refuse it, and the PRT is the way to a new one.
   */
  private async renew(
    key: CacheKey,
    request: AgentTokenRequest,
    entry: CachedTokens | undefined,
  ): Promise<Issued> {
    let cached = entry;
    const rtExpiresOn = cached?.refreshTokenExpiresOn;
    if (
      cached?.refreshToken !== undefined &&
      rtExpiresOn !== undefined &&
      this.clock() / 1000 >= rtExpiresOn
    ) {
      this.cache.dropRefreshToken(key, cached.refreshToken);
      cached = undefined;
    }
    if (cached?.refreshToken !== undefined) {
      const epoch = this.epoch(key.accountId);
      try {
        const response = await this.agent.redeemRefreshToken({
          ...request,
          refreshToken: cached.refreshToken,
        });
        return this.store(key, response, epoch);
      } catch (err) {
        const refusal = refusalOf(err);
        // A revoked, expired or rotated refresh token is worth one try through the PRT; a
        // Conditional Access block would block that request too, so it is answered as is.
        if (!refusal || CA_BLOCKS.has(refusal.aadsts)) throw err;
        this.cache.delete(key);
      }
    }
    return this.viaPrt(key, request);
  }

  private async viaPrt(key: CacheKey, request: AgentTokenRequest): Promise<Issued> {
    const epoch = this.epoch(key.accountId);
    const response = await this.agent.acquireToken(request);
    return this.store(key, response, epoch);
  }

  private store(key: CacheKey, response: AgentTokenResponse, epoch: number): Issued {
    const tokens: CachedTokens = {
      accessToken: response.accessToken,
      tokenType: response.tokenType,
      expiresOn: response.expiresOn,
      ...(response.refreshToken !== undefined ? { refreshToken: response.refreshToken } : {}),
      ...(response.refreshToken !== undefined && response.refreshTokenExpiresOn !== undefined
        ? { refreshTokenExpiresOn: response.refreshTokenExpiresOn }
        : {}),
      upn: response.account.upn,
      tenantId: response.account.tenantId,
    };
    const stored: CacheKey = { ...key, accountId: response.account.id };
    if (this.epoch(stored.accountId) === epoch) this.cache.put(stored, tokens);
    return { tokens, accountId: stored.accountId, correlationId: response.correlationId };
  }

  private async interactive(p: InteractiveParams): Promise<TokenResult> {
    const account = await this.agent.signIn(p.username, p.password);
    const key: CacheKey = { accountId: account.id, clientId: p.clientId, target: cacheTarget(p) };
    const issued = await this.viaPrt(key, agentRequest(account.id, p));
    return result(issued.tokens, issued.accountId, issued.correlationId, false);
  }

  private async signOut(accountId: string, correlationId: string) {
    const known = (await this.agent.accounts()).some((a) => a.id === accountId);
    this.epochs.set(accountId, this.epoch(accountId) + 1);
    const removedTokens = this.cache.removeAccount(accountId);
    if (!known && removedTokens === 0)
      throw new RpcFailure(
        RPC_ERRORS.accountNotFound,
        'No such account on this device.',
        brokerData('account_not_found', correlationId),
      );
    if (known) await this.agent.signOut(accountId);
    return { accountId, removedTokens };
  }

  private epoch(accountId: string): number {
    return this.epochs.get(accountId) ?? 0;
  }

  private fresh(tokens: CachedTokens): boolean {
    return tokens.expiresOn - this.clock() / 1000 > REFRESH_OFFSET_S;
  }
}

function publicAccount(a: AgentAccount) {
  return { id: a.id, upn: a.upn, tenantId: a.tenantId };
}

function agentRequest(
  accountId: string,
  p: {
    clientId: string;
    resource?: string;
    scopes?: readonly string[];
    clientVersion?: string;
    correlationId?: string;
  },
): AgentTokenRequest {
  return {
    accountId,
    clientId: p.clientId,
    ...(p.resource !== undefined ? { resource: p.resource } : { scopes: p.scopes ?? [] }),
    ...(p.clientVersion !== undefined ? { clientVersion: p.clientVersion } : {}),
    ...(p.correlationId !== undefined ? { correlationId: p.correlationId } : {}),
  };
}

function result(
  tokens: CachedTokens,
  accountId: string,
  correlationId: string,
  fromCache: boolean,
): TokenResult {
  return {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType,
    expiresOn: tokens.expiresOn,
    account: { id: accountId, upn: tokens.upn },
    correlationId,
    fromCache,
  };
}
