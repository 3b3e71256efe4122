/**
 * The cloud's errors. Every failure the simulated Entra ID answers on the wire is a CloudError: it
 * carries the OAuth `error` string, the HTTP status, the AADSTS number and a public description
 * (sent), plus an optional private detail (server log only). The wire vocabulary is the code set:
 * AADSTS_CODES below is the one table of numbers the cloud uses, mirrored in README.md.
 *
 * Caller bugs (wrong argument types, impossible options) throw TypeError/RangeError instead.
 */
import { type ErrorCode, PrtlabError } from '../lib/errors.ts';

/** OAuth 2.0 `error` values the cloud sends (RFC 6749 §5.2 plus Entra's additions). */
export type OAuthError =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_resource'
  | 'invalid_tenant'
  | 'interaction_required'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable';

/** One AADSTS number: the OAuth error and HTTP status it is sent with, and what it means. */
export interface AadstsEntry {
  readonly code: number;
  readonly error: OAuthError;
  readonly status: number;
  /** The default public description (Entra's wording where one is public). */
  readonly meaning: string;
  /** 'entra': a public Entra code; 'lab': a number this lab chose where Entra has none public. */
  readonly source: 'entra' | 'lab';
}

/**
 * Every AADSTS number the cloud answers with. Entra numbers are used where a public one exists;
 * where none does, the lab picks a number in 999xxxx (no documented AADSTS code lives there) and
 * marks the row `source: 'lab'`. Add rows here (and to README.md) rather than inventing numbers
 * at the throw site.
 */
export const AADSTS_CODES = [
  // Sign-in service failure; the cloud's answer to any unexpected error (detail in the log only).
  {
    code: 50000,
    error: 'server_error',
    status: 500,
    meaning: 'There was an issue with the sign-in service.',
    source: 'entra',
  },
  {
    code: 50001,
    error: 'invalid_resource',
    status: 400,
    meaning: 'The resource is disabled or does not exist.',
    source: 'entra',
  },
  {
    code: 50034,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The user account does not exist in the directory.',
    source: 'entra',
  },
  {
    code: 50057,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The user account is disabled.',
    source: 'entra',
  },
  // Conditional Access blocks (token-protection.md §3.4); Entra answers them as invalid_grant.
  {
    code: 53003,
    error: 'invalid_grant',
    status: 400,
    meaning:
      'Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.',
    source: 'entra',
  },
  {
    code: 530084,
    error: 'invalid_grant',
    status: 400,
    meaning:
      'Access has been blocked by conditional access token protection policy configured by this organization. To learn more, see https://aka.ms/TBCADocs.',
    source: 'entra',
  },
  {
    code: 50126,
    error: 'invalid_grant',
    status: 400,
    meaning: 'Error validating credentials due to invalid username or password.',
    source: 'entra',
  },
  {
    code: 90002,
    error: 'invalid_tenant',
    status: 400,
    meaning: 'Tenant not found.',
    source: 'entra',
  },
  {
    code: 90014,
    error: 'invalid_request',
    status: 400,
    meaning: 'A required field is missing from the request.',
    source: 'entra',
  },
  {
    code: 135011,
    error: 'invalid_grant',
    status: 400,
    meaning: 'Device used during the authentication is disabled.',
    source: 'entra',
  },
  {
    code: 700003,
    error: 'invalid_grant',
    status: 400,
    meaning: 'Device object was not found in the tenant directory.',
    source: 'entra',
  },
  {
    code: 700016,
    error: 'unauthorized_client',
    status: 400,
    meaning: 'Application was not found in the directory.',
    source: 'entra',
  },
  {
    code: 900023,
    error: 'invalid_request',
    status: 400,
    meaning:
      'Specified tenant identifier is neither a valid DNS name, nor a valid external domain.',
    source: 'entra',
  },
  {
    code: 900144,
    error: 'invalid_request',
    status: 400,
    meaning: 'The request body must contain a required parameter.',
    source: 'entra',
  },
  {
    code: 900561,
    error: 'invalid_request',
    status: 405,
    meaning: 'The endpoint does not accept this HTTP method.',
    source: 'entra',
  },
  {
    code: 9002313,
    error: 'invalid_request',
    status: 400,
    meaning: 'Invalid request. Request is malformed or invalid.',
    source: 'entra',
  },
  // Token service (grants, PRT, PRT-signed requests).
  {
    code: 50155,
    error: 'invalid_grant',
    status: 400,
    meaning: 'Device authentication failed.',
    source: 'entra',
  },
  {
    code: 50173,
    error: 'invalid_grant',
    status: 400,
    meaning:
      'The provided grant has expired due to it being revoked, a fresh auth token is needed.',
    source: 'entra',
  },
  {
    code: 70000,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The provided grant is invalid or malformed.',
    source: 'entra',
  },
  {
    code: 70008,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The provided authorization code or refresh token has expired.',
    source: 'entra',
  },
  {
    code: 70011,
    error: 'invalid_scope',
    status: 400,
    meaning: 'The provided value for the input parameter scope is not valid.',
    source: 'entra',
  },
  {
    code: 76026,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The request has expired.',
    source: 'entra',
  },
  {
    code: 70003,
    error: 'unsupported_grant_type',
    status: 400,
    meaning: 'The app requested an unsupported grant type.',
    source: 'entra',
  },
  // Lab numbers for PRT checks whose Entra code is not public (docs/prt-protocol.md §10).
  {
    code: 9990101,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The request nonce is invalid.',
    source: 'lab',
  },
  {
    code: 9990102,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The signed request was already used.',
    source: 'lab',
  },
  {
    code: 9990103,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The request signature made with the session key is invalid.',
    source: 'lab',
  },
  {
    code: 9990104,
    error: 'invalid_grant',
    status: 400,
    meaning:
      'The key derivation function version does not match the one declared for this session.',
    source: 'lab',
  },
  {
    code: 9990105,
    error: 'invalid_grant',
    status: 400,
    meaning:
      'The refresh token is bound to a device session and must be redeemed in a request signed with its session key.',
    source: 'lab',
  },
  {
    code: 9990301,
    error: 'invalid_request',
    status: 401,
    meaning: 'The bearer access token is missing, invalid, expired or for another resource.',
    source: 'lab',
  },
  // Device registration (DRS, docs/prt-protocol.md §2). Real DRS answers with its own error
  // JSON, not AADSTS numbers, so these are lab numbers in one block (99902xx).
  {
    code: 9990201,
    error: 'invalid_request',
    status: 400,
    meaning: 'A field that must be base64 is not valid base64 (standard alphabet, with padding).',
    source: 'lab',
  },
  {
    code: 9990202,
    error: 'invalid_request',
    status: 400,
    meaning: 'The certificate signing request is malformed or its signature is invalid.',
    source: 'lab',
  },
  {
    code: 9990203,
    error: 'invalid_request',
    status: 400,
    meaning:
      'The certificate signing request subject must be CN=7E980AD9-B86D-4306-9425-9AC066FB014A.',
    source: 'lab',
  },
  {
    code: 9990204,
    error: 'invalid_request',
    status: 400,
    meaning: 'The transport key must be a BCRYPT_RSAKEY_BLOB (RSA1) of an RSA-2048 public key.',
    source: 'lab',
  },
  {
    code: 9990205,
    error: 'invalid_request',
    status: 400,
    meaning: 'A field of the request has the wrong type, size or value, or is not accepted.',
    source: 'lab',
  },
  {
    code: 9990206,
    error: 'invalid_request',
    status: 400,
    meaning: 'The JoinType is not accepted on this endpoint.',
    source: 'lab',
  },
  {
    code: 9990207,
    error: 'invalid_request',
    status: 400,
    meaning: 'The device is not a pre-created hybrid device.',
    source: 'lab',
  },
  {
    code: 9990208,
    error: 'invalid_grant',
    status: 400,
    meaning:
      "The hybrid join ClientIdentity signature does not verify with the device's on-premises certificate.",
    source: 'lab',
  },
  {
    code: 9990209,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The hybrid join ClientIdentity timestamp is outside the accepted window.',
    source: 'lab',
  },
  {
    code: 9990210,
    error: 'invalid_grant',
    status: 400,
    meaning: 'The hybrid join ClientIdentity was already used.',
    source: 'lab',
  },
  // TPM attestation of a join (AikCertificate, AttestationData; cloud/registration/attestation.ts).
  {
    code: 9990214,
    error: 'invalid_request',
    status: 400,
    meaning:
      'The TPM attestation (AikCertificate, AttestationData) is malformed, truncated or incomplete.',
    source: 'lab',
  },
  {
    code: 9990215,
    error: 'invalid_request',
    status: 400,
    meaning:
      'The attestation key certificate chain does not lead to a trusted TPM manufacturer CA.',
    source: 'lab',
  },
  {
    code: 9990216,
    error: 'invalid_request',
    status: 400,
    meaning:
      'The attestation nonce is not a registration service nonce, has expired or was already used.',
    source: 'lab',
  },
  {
    code: 9990217,
    error: 'invalid_request',
    status: 400,
    meaning:
      'A certified key name does not match the certificate request key or the transport key.',
    source: 'lab',
  },
  {
    code: 9990218,
    error: 'invalid_request',
    status: 400,
    meaning:
      'A certified key or the attestation key lacks a required attribute (fixedTPM, fixedParent, sensitiveDataOrigin; restricted signing for the attestation key).',
    source: 'lab',
  },
  {
    code: 9990219,
    error: 'invalid_request',
    status: 400,
    meaning: 'An attestation signature does not verify with the attestation key.',
    source: 'lab',
  },
  {
    code: 9990220,
    error: 'access_denied',
    status: 403,
    meaning:
      'The tenant requires hardware-backed (TPM-attested) device registration; this registration carries no attestation.',
    source: 'lab',
  },
  {
    code: 9990211,
    error: 'invalid_client',
    status: 401,
    meaning:
      'Device authentication is required: a TLS client certificate or a device-signed bearer token.',
    source: 'lab',
  },
  {
    code: 9990212,
    error: 'invalid_client',
    status: 401,
    meaning: 'Device authentication failed.',
    source: 'lab',
  },
  {
    code: 9990213,
    error: 'access_denied',
    status: 403,
    meaning: 'A device may only delete itself.',
    source: 'lab',
  },
  // Lab choices: Entra answers these at its front door (or never), with no public AADSTS code.
  {
    code: 9990001,
    error: 'invalid_request',
    status: 409,
    meaning: 'An object with this name or identifier already exists in the directory.',
    source: 'lab',
  },
  {
    code: 9990002,
    error: 'invalid_request',
    status: 404,
    meaning: 'The group or directory role was not found.',
    source: 'lab',
  },
  {
    code: 9990003,
    error: 'invalid_request',
    status: 400,
    meaning: 'An attribute value is not valid for this directory object.',
    source: 'lab',
  },
  {
    code: 9990404,
    error: 'invalid_request',
    status: 404,
    meaning: 'The endpoint does not exist.',
    source: 'lab',
  },
  {
    code: 9990408,
    error: 'invalid_request',
    status: 408,
    meaning: 'The request was not received in time.',
    source: 'lab',
  },
  {
    code: 9990413,
    error: 'invalid_request',
    status: 413,
    meaning: 'The request body is larger than this endpoint accepts.',
    source: 'lab',
  },
  {
    code: 9990431,
    error: 'invalid_request',
    status: 431,
    meaning: 'The request headers are too large.',
    source: 'lab',
  },
  {
    code: 9990503,
    error: 'temporarily_unavailable',
    status: 503,
    meaning: 'The service did not finish the request in time.',
    source: 'lab',
  },
] as const satisfies readonly AadstsEntry[];

/** An AADSTS number listed in AADSTS_CODES. */
export type AadstsCode = (typeof AADSTS_CODES)[number]['code'];

const BY_CODE: ReadonlyMap<number, AadstsEntry> = new Map(AADSTS_CODES.map((e) => [e.code, e]));

/** The table row for an AADSTS number, or undefined if the cloud does not use it. */
export function aadstsEntry(code: number): AadstsEntry | undefined {
  return BY_CODE.get(code);
}

/** The PrtlabError codes a CloudError can carry. */
export type CloudErrorCode = Extract<
  ErrorCode,
  | 'ERR_CLOUD_REQUEST'
  | 'ERR_CLOUD_CONFIG'
  | 'ERR_CLOUD_STATE'
  | 'ERR_CLOUD_INTERNAL'
  | 'ERR_DIRECTORY'
>;

export interface CloudErrorOptions {
  /** Public description (sent after `AADSTSnnnn: `); defaults to the table's meaning. */
  description?: string;
  /** Private detail for the server log; never sent to the client. */
  detail?: string;
  /** HTTP status, when the route needs another than the table's (e.g. 401 with a challenge). */
  status?: number;
  /** Extra response headers (Allow, WWW-Authenticate, ...). */
  headers?: Readonly<Record<string, string>>;
  cause?: unknown;
}

/** Longest user-supplied value echoed into a public description. */
const MAX_ECHO = 100;

/**
 * Quotes a client-supplied value for a public description: control characters replaced and the
 * length capped, so an error cannot be used to reflect a large or log-breaking payload.
 */
export function echo(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > MAX_ECHO ? `${clean.slice(0, MAX_ECHO)}...` : clean;
}

/**
 * Base class of every error the cloud raises on purpose. `message` is the public description;
 * 5xx errors are still sent with a generic description (the HTTP layer sees to it), so a
 * configuration or state error may name paths in its description without leaking them.
 */
export class CloudError extends PrtlabError {
  declare readonly code: CloudErrorCode;
  readonly aadsts: AadstsCode;
  readonly error: OAuthError;
  readonly status: number;
  readonly description: string;
  readonly detail: string | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: CloudErrorCode, aadsts: AadstsCode, options: CloudErrorOptions = {}) {
    const entry = BY_CODE.get(aadsts);
    if (entry === undefined) throw new RangeError(`AADSTS${aadsts} is not in AADSTS_CODES`);
    const description = options.description ?? entry.meaning;
    super(code, description, options.cause === undefined ? undefined : { cause: options.cause });
    this.aadsts = aadsts;
    this.error = entry.error;
    this.status = options.status ?? entry.status;
    this.description = description;
    this.detail = options.detail;
    this.headers = Object.freeze({ ...(options.headers ?? {}) });
  }
}

/** A request the cloud refuses (bad input, unknown tenant, bad credentials, ...). */
export class CloudRequestError extends CloudError {
  constructor(aadsts: AadstsCode, options?: CloudErrorOptions) {
    super('ERR_CLOUD_REQUEST', aadsts, options);
  }
}

/** The cloud refused its options (listen address, port). */
export class CloudConfigError extends CloudError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLOUD_CONFIG', 50000, { description: message, cause: options?.cause });
  }
}

/** The cloud's files are unsafe, malformed or unreadable. */
export class CloudStateError extends CloudError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLOUD_STATE', 50000, { description: message, cause: options?.cause });
  }
}

/** The directory refused an administrative change, or its database cannot be used. */
export class DirectoryError extends CloudError {
  constructor(aadsts: AadstsCode, description: string, options?: { cause?: unknown }) {
    super('ERR_DIRECTORY', aadsts, { description, cause: options?.cause });
  }
}

/** Wraps an unexpected failure; the HTTP layer answers it as a generic AADSTS50000. */
export class CloudInternalError extends CloudError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super('ERR_CLOUD_INTERNAL', 50000, { detail, cause: options?.cause });
  }
}

export function isCloudError(err: unknown, code?: CloudErrorCode): err is CloudError {
  return err instanceof CloudError && (code === undefined || err.code === code);
}
