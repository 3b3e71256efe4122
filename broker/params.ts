/**
 * The broker's methods and their by-name parameters (JSON-RPC 2.0 §4.2), checked strictly: a
 * missing, mistyped, oversized or unknown member is -32602 whose message and `data.field` name it
 * (`params.resource`, `params.scopes[2]`). Bounds keep every value far below what the cloud
 * accepts, so a hostile client cannot make the broker forward megabytes.
 */

export const METHODS = [
  'getAccounts',
  'acquireTokenSilent',
  'acquireTokenInteractive',
  'signOut',
  'getCookieInfoForUri',
  'getDeviceStatus',
] as const;
export type MethodName = (typeof METHODS)[number];

export function isMethod(name: string): name is MethodName {
  return (METHODS as readonly string[]).includes(name);
}

/** What a token is for: exactly one of a v1 resource and v2 scopes. */
export type TokenTarget =
  | { readonly resource: string; readonly scopes?: undefined }
  | { readonly scopes: readonly string[]; readonly resource?: undefined };

export type SilentParams = TokenTarget & {
  readonly clientId: string;
  readonly accountId?: string;
  readonly clientVersion?: string;
  /** The app's correlation id for this request (MSAL's correlationId), passed to the cloud. */
  readonly correlationId?: string;
  /** Skip the cached access token and ask the cloud through the PRT (MSAL's forceRefresh). */
  readonly forceRefresh: boolean;
};

export type InteractiveParams = TokenTarget & {
  readonly clientId: string;
  readonly username: string;
  readonly password: string;
  readonly clientVersion?: string;
  readonly correlationId?: string;
};

export class InvalidParams extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`Invalid params: ${field} ${message}`);
    this.field = field;
  }
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Dotted versions and build tags as clients report them (`22.217.1016.0002`, `2.0.0-preview`). */
const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/;
/** No whitespace or control characters: resources and scopes are single tokens on the wire. */
const TOKEN_RE = /^[\x21-\x7e]+$/;
/** UPNs and passwords: printable, no control characters (C0, DEL, C1). */
const CONTROL_RE = /\p{Cc}/u;

const MAX_RESOURCE_CHARS = 2048;
const MAX_SCOPES = 32;
const MAX_SCOPE_CHARS = 512;
const MAX_USERNAME_CHARS = 256;
/** The directory takes passwords of 8 to 256 characters (README "Directory"). */
const MAX_PASSWORD_CHARS = 256;
const MAX_URI_CHARS = 4096;

/** Reads the members of one method's params and refuses any it did not read. */
class ParamReader {
  private readonly seen = new Set<string>();
  private readonly params: Readonly<Record<string, unknown>>;
  constructor(params: Readonly<Record<string, unknown>>) {
    this.params = params;
  }

  private take(name: string): unknown {
    this.seen.add(name);
    return Object.hasOwn(this.params, name) ? this.params[name] : undefined;
  }

  string(
    name: string,
    check: { max: number; pattern?: RegExp; what?: string; forbid?: RegExp },
  ): string | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    const field = `params.${name}`;
    if (typeof v !== 'string') throw new InvalidParams(field, 'must be a string');
    if (v.length === 0) throw new InvalidParams(field, 'must not be empty');
    if (v.length > check.max)
      throw new InvalidParams(field, `must be at most ${check.max} characters`);
    if (check.pattern && !check.pattern.test(v))
      throw new InvalidParams(field, `must be ${check.what ?? 'well-formed'}`);
    if (check.forbid?.test(v))
      throw new InvalidParams(field, 'must not contain control characters');
    return v;
  }

  required<T>(name: string, value: T | undefined): T {
    if (value === undefined) throw new InvalidParams(`params.${name}`, 'is required');
    return value;
  }

  boolean(name: string): boolean | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new InvalidParams(`params.${name}`, 'must be true or false');
    return v;
  }

  scopes(name: string): string[] | undefined {
    const v = this.take(name);
    if (v === undefined) return undefined;
    const field = `params.${name}`;
    if (!Array.isArray(v)) throw new InvalidParams(field, 'must be an array of strings');
    if (v.length === 0) throw new InvalidParams(field, 'must name at least one scope');
    if (v.length > MAX_SCOPES) throw new InvalidParams(field, `must have at most ${MAX_SCOPES}`);
    return v.map((s, i) => {
      if (
        typeof s !== 'string' ||
        s.length === 0 ||
        s.length > MAX_SCOPE_CHARS ||
        !TOKEN_RE.test(s)
      )
        throw new InvalidParams(
          `${field}[${i}]`,
          `must be a scope of 1 to ${MAX_SCOPE_CHARS} printable characters without spaces`,
        );
      return s;
    });
  }

  /** Exactly one of `resource` and `scopes`. */
  target(): TokenTarget {
    const resource = this.string('resource', {
      max: MAX_RESOURCE_CHARS,
      pattern: TOKEN_RE,
      what: 'a resource URI or app id without spaces',
    });
    const scopes = this.scopes('scopes');
    if (resource !== undefined && scopes !== undefined)
      throw new InvalidParams('params.scopes', 'cannot be given with params.resource');
    if (resource !== undefined) return { resource };
    if (scopes !== undefined) return { scopes };
    throw new InvalidParams('params.resource', 'or params.scopes is required');
  }

  clientId(): string {
    return this.required(
      'clientId',
      this.string('clientId', { max: 36, pattern: GUID_RE, what: 'an application id (GUID)' }),
    );
  }

  accountId(): string | undefined {
    return this.string('accountId', { max: 36, pattern: GUID_RE, what: 'an account id (GUID)' });
  }

  /** A GUID, as Entra's client-request-id (the cloud takes nothing else as a correlation id). */
  correlationId(): string | undefined {
    return this.string('correlationId', {
      max: 36,
      pattern: GUID_RE,
      what: 'a correlation id (GUID)',
    });
  }

  clientVersion(): string | undefined {
    return this.string('clientVersion', {
      max: 64,
      pattern: VERSION_RE,
      what: 'a version such as 22.217.1016.0002',
    });
  }

  /** Refuses members no reader asked for. */
  done(method: string): void {
    for (const key of Object.keys(this.params)) {
      if (!this.seen.has(key))
        throw new InvalidParams(`params.${key.slice(0, 64)}`, `is not a parameter of ${method}`);
    }
  }
}

function reader(params: Readonly<Record<string, unknown>> | undefined): ParamReader {
  return new ParamReader(params ?? {});
}

export function noParams(method: string, params: Readonly<Record<string, unknown>> | undefined) {
  reader(params).done(method);
}

export function silentParams(params: Readonly<Record<string, unknown>> | undefined): SilentParams {
  const r = reader(params);
  const clientId = r.clientId();
  const target = r.target();
  const accountId = r.accountId();
  const clientVersion = r.clientVersion();
  const correlationId = r.correlationId();
  const forceRefresh = r.boolean('forceRefresh') ?? false;
  r.done('acquireTokenSilent');
  return {
    ...target,
    clientId,
    forceRefresh,
    ...(accountId !== undefined ? { accountId } : {}),
    ...(clientVersion !== undefined ? { clientVersion } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
  };
}

export function interactiveParams(
  params: Readonly<Record<string, unknown>> | undefined,
): InteractiveParams {
  const r = reader(params);
  const clientId = r.clientId();
  const target = r.target();
  const username = r.required(
    'username',
    r.string('username', { max: MAX_USERNAME_CHARS, forbid: CONTROL_RE }),
  );
  const password = r.required(
    'password',
    r.string('password', { max: MAX_PASSWORD_CHARS, forbid: CONTROL_RE }),
  );
  const clientVersion = r.clientVersion();
  const correlationId = r.correlationId();
  r.done('acquireTokenInteractive');
  return {
    ...target,
    clientId,
    username,
    password,
    ...(clientVersion !== undefined ? { clientVersion } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
  };
}

export function signOutParams(params: Readonly<Record<string, unknown>> | undefined): {
  accountId: string;
} {
  const r = reader(params);
  const accountId = r.required('accountId', r.accountId());
  r.done('signOut');
  return { accountId };
}

/** An absolute http(s) URI, as IProofOfPossessionCookieInfoManager::GetCookieInfoForUri takes. */
export function cookieParams(params: Readonly<Record<string, unknown>> | undefined): {
  uri: string;
} {
  const r = reader(params);
  const uri = r.required('uri', r.string('uri', { max: MAX_URI_CHARS, pattern: TOKEN_RE }));
  r.done('getCookieInfoForUri');
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    throw new InvalidParams('params.uri', 'must be an absolute URI');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    throw new InvalidParams('params.uri', 'must be an http or https URI');
  return { uri };
}
