/**
 * The token cache a non-broker client keeps for itself: a plain JSON file, as command-line tools
 * really keep one (Azure CLI's msal_token_cache.json, the PowerShell modules' caches). It holds
 * each account's refresh token and its access tokens per resource, unsealed: anyone who can read
 * the file can replay them, which is what the token-theft scenarios take from a device. The file
 * is `<device>/clients/<profile>-token-cache.json`, 0600 in a 0700 directory, written atomically.
 */
import { join } from 'node:path';
import { atomicWriteFile, ensurePrivateDir, readPrivateFile } from '../broker/files.ts';
import { PrtlabError } from '../lib/errors.ts';
import { ClientError } from './errors.ts';
import type { ProfileName } from './profiles.ts';

export const CLIENT_CACHE_DIR = 'clients';
const MAX_CACHE_FILE_BYTES = 4 * 1024 * 1024;

export interface CachedAccessToken {
  readonly accessToken: string;
  /** Unix seconds. */
  readonly expiresOn: number;
}

export interface CachedAccount {
  readonly upn: string;
  refreshToken?: string;
  /** By the `resource` the token was asked for. */
  accessTokens: Record<string, CachedAccessToken>;
}

interface CacheFile {
  v: 1;
  clientId: string;
  /** By lower-cased UPN. */
  accounts: Record<string, CachedAccount>;
}

export function clientCachePath(deviceDir: string, profile: ProfileName): string {
  return join(deviceDir, CLIENT_CACHE_DIR, `${profile}-token-cache.json`);
}

/** File problems are the client's: ERR_CLIENT, the original as `cause`. */
function wrap(err: unknown): unknown {
  if (err instanceof ClientError) return err;
  return err instanceof PrtlabError ? new ClientError(err.message, { cause: err }) : err;
}

export class ClientTokenCache {
  readonly path: string;
  private readonly data: CacheFile;

  private constructor(path: string, data: CacheFile) {
    this.path = path;
    this.data = data;
  }

  /** Opens the profile's cache file (empty if there is none). */
  static async open(
    deviceDir: string,
    profile: ProfileName,
    clientId: string,
  ): Promise<ClientTokenCache> {
    const path = clientCachePath(deviceDir, profile);
    let raw: Buffer | undefined;
    try {
      raw = await readPrivateFile(path, MAX_CACHE_FILE_BYTES);
    } catch (err) {
      throw wrap(err);
    }
    const empty: CacheFile = { v: 1, clientId, accounts: {} };
    if (raw === undefined) return new ClientTokenCache(path, empty);
    let json: Partial<CacheFile>;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ClientError(`${path} is not JSON; remove it to start over`);
    }
    if (json.v !== 1 || json.clientId !== clientId || typeof json.accounts !== 'object')
      throw new ClientError(`${path} is not this client's token cache; remove it to start over`);
    return new ClientTokenCache(path, { v: 1, clientId, accounts: json.accounts ?? {} });
  }

  /** The account for `upn`, or the only account when `upn` is not given. */
  account(upn: string | undefined): CachedAccount | undefined {
    if (upn !== undefined) return this.data.accounts[upn.toLowerCase()];
    const all = Object.values(this.data.accounts);
    return all.length === 1 ? all[0] : undefined;
  }

  get accountCount(): number {
    return Object.keys(this.data.accounts).length;
  }

  store(
    upn: string,
    resource: string,
    tokens: CachedAccessToken & { readonly refreshToken?: string },
  ): void {
    const key = upn.toLowerCase();
    const account = this.data.accounts[key] ?? { upn, accessTokens: {} };
    account.accessTokens[resource] = {
      accessToken: tokens.accessToken,
      expiresOn: tokens.expiresOn,
    };
    if (tokens.refreshToken !== undefined) account.refreshToken = tokens.refreshToken;
    this.data.accounts[key] = account;
  }

  forgetRefreshToken(upn: string): void {
    const account = this.data.accounts[upn.toLowerCase()];
    if (account) delete account.refreshToken;
  }

  async save(): Promise<void> {
    try {
      await ensurePrivateDir(join(this.path, '..'));
      await atomicWriteFile(this.path, Buffer.from(`${JSON.stringify(this.data, null, 2)}\n`), {
        mode: 0o600,
      });
    } catch (err) {
      throw wrap(err);
    }
  }
}
