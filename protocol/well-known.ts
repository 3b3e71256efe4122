/**
 * Fixed identifiers of the PRT protocol that both the device and the cloud must agree on: client
 * ids, the DRS resource, issuers, grant types and header names.
 */

/** Windows' broker client ("Windows Sign In"), the client_id of PRT requests [OAPXBC note <4>] (§4.2). */
export const WINDOWS_BROKER_CLIENT_ID = '38aa3b87-a06d-4817-b275-7a316988d93b';

/**
 * Microsoft Authentication Broker, the broker plugin's client: DRS tokens come from it [HB-spec]
 * and tools request PRTs with its refresh tokens [RT-dev][AADI-PRT] (§2, §4.2).
 */
export const BROKER_PLUGIN_CLIENT_ID = '29d9ed98-a469-4536-ade2-f981bc1d605e';

/** The DRS resource: the `aud` a registration bearer token must carry [RT-dev] (§2). */
export const DRS_RESOURCE = 'urn:ms-drs:enterpriseregistration.windows.net';

/** The application id of the DRS resource (§2). */
export const DRS_APP_ID = '01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9';

/** `iss` of session-key-signed requests and of x-ms-DeviceCredential (§6.1, §6.3). */
export const BROKER_PLUGIN_ISSUER = 'aad:brokerplugin';

/** `aud` of session-key-signed token requests (§6.1). */
export const ESTS_AUDIENCE = 'login.microsoftonline.com';

/** Scope of PRT requests and renewals [RT-dev][AADI-PRT][HB] (§4.2, §6.1). */
export const PRT_SCOPE = 'openid aza ugs';

/** The broker plugin redirect URI for an app served through the PRT (§6.1). */
export function brokerRedirectUri(clientId: string): string {
  if (typeof clientId !== 'string' || clientId.length === 0) {
    throw new TypeError('clientId must be a non-empty string');
  }
  return `ms-appx-web://Microsoft.AAD.BrokerPlugin/${clientId}`;
}

/** Form `grant_type` values at /oauth2/token and inside request JWTs (§3, §4, §6). */
export const GRANT_TYPE = {
  /** Nonce request [OAPXBC 3.2.5.1.1.1]. */
  srvChallenge: 'srv_challenge',
  /** Outer grant of PRT and session-key-signed requests, and the WHfB assertion grant. */
  jwtBearer: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
  password: 'password',
  refreshToken: 'refresh_token',
  saml11Bearer: 'urn:ietf:params:oauth:grant-type:saml1_1-bearer',
  /** Inside x-ms-DeviceCredential [OAPXBC 3.2.5.2.1.1.2]. */
  deviceAuth: 'device_auth',
} as const;

/** Browser SSO header or cookie carrying the session-key-signed PRT JWT (§6.3). */
export const PRT_COOKIE_NAME = 'x-ms-RefreshTokenCredential';

/** Browser SSO companion header carrying the device-key-signed JWT (§6.3). */
export const DEVICE_CREDENTIAL_HEADER = 'x-ms-DeviceCredential';
