/**
 * What the broker needs from the device agent, and nothing more. The broker never touches a TPM
 * or a key: every signature, decryption and seal happens behind this interface (agent/ implements
 * it; DESIGN.md "Boundaries"). Methods throw PrtlabError subclasses with stable codes; a cloud
 * refusal (for instance a Conditional Access block) is an AgentCloudError-like error carrying the
 * Entra error fields (see CloudRefusal).
 */

/** A user of the device with a PRT (or who had one). */
export interface AgentAccount {
  /** Stable id of the account on this device: the user's object id (`oid`). */
  readonly id: string;
  readonly upn: string;
  readonly tenantId: string;
}

/** The Entra error fields of a refused token request, as the broker reports them. */
export interface CloudRefusal {
  /** OAuth `error`, e.g. `invalid_grant`. */
  readonly error: string;
  /** The AADSTS number, e.g. 53003. */
  readonly aadsts: number;
  readonly description: string;
  readonly correlationId: string;
  /** `suberror` when the cloud sent one. */
  readonly subError?: string;
}

/** What one token request asks for. Exactly one of `resource` and `scopes` is set. */
export interface AgentTokenRequest {
  readonly accountId: string;
  readonly clientId: string;
  readonly resource?: string;
  readonly scopes?: readonly string[];
  /** The calling app's version, sent to the cloud (Conditional Access client minimums). */
  readonly clientVersion?: string;
  /**
   * The app's correlation id (a GUID), sent to the cloud as the request's `client-request-id`, so
   * that the cloud's sign-in log entry carries it; a fresh one when absent.
   */
  readonly correlationId?: string;
}

/** What the cloud answered to a PRT-signed request or a bound refresh-token redemption. */
export interface AgentTokenResponse {
  readonly accessToken: string;
  readonly tokenType: string;
  /** Unix seconds. */
  readonly expiresOn: number;
  /** The device-bound app refresh token; stays in the broker's sealed cache. */
  readonly refreshToken?: string;
  /**
   * When the refresh token expires, Unix seconds (from the cloud's `refresh_token_expires_in`,
   * when it sent one): the broker never sends it after that.
   */
  readonly refreshTokenExpiresOn?: number;
  /** The cloud's correlation id for the request (the app's own when it gave one). */
  readonly correlationId: string;
  readonly account: AgentAccount;
}

/** One `x-ms-RefreshTokenCredential` record (prt-protocol §6.3). */
export interface AgentCookie {
  readonly name: string;
  readonly data: string;
  readonly p3pHeader: string;
  readonly flags: number;
}

export interface BrokerAgent {
  /** Accounts with a PRT on this device. */
  accounts(): Promise<AgentAccount[]>;
  /** Password sign-in (stands in for the sign-in UI): gets a PRT; returns the account. */
  signIn(upn: string, password: string): Promise<AgentAccount>;
  /** Drops the account's PRT and session key. */
  signOut(accountId: string): Promise<void>;
  /** An app token through a PRT-signed request (KDFv2, fresh nonce). */
  acquireToken(request: AgentTokenRequest): Promise<AgentTokenResponse>;
  /** Redeems a bound app refresh token with a PRT-signed request. */
  redeemRefreshToken(
    request: AgentTokenRequest & { readonly refreshToken: string },
  ): Promise<AgentTokenResponse>;
  /** Signed SSO cookies for `uri`, one per account with a PRT. */
  cookiesFor(uri: string): Promise<AgentCookie[]>;
  /** `dsregcmd /status`-like facts (AzureAdJoined, AzureAdPrt, TpmProtected, ...). */
  status(): Promise<Record<string, unknown>>;
  /** Authenticated encryption under a key that never leaves the device's TPM (or keystore). */
  seal(plain: Buffer, label: string): Promise<Buffer>;
  /** Inverse of seal; throws on a tampered blob or a wrong label. */
  unseal(sealed: Buffer, label: string): Promise<Buffer>;
}
