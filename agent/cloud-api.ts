/**
 * The requests the device sends to the cloud, on the wire as prt-protocol describes them. The
 * signing and decryption are the caller's (the agent's, through the TPM); this module only shapes
 * and sends requests and reads answers.
 */
import { BROKER_PLUGIN_CLIENT_ID, DRS_RESOURCE, GRANT_TYPE } from '../protocol/index.ts';
import { AgentDeviceError } from './errors.ts';
import { type CloudEndpoint, type HttpReply, jsonOf, postForm, refuse, send } from './http.ts';

/** The DRS API version Windows and ROADtools send (§2). */
const DRS_API_VERSION = '2.0';

function userAgent(osVersion: string): string {
  return `Dsreg/10.0 (Windows ${osVersion})`;
}

/** `srv_challenge` (§3): a nonce for the next signed request. */
export async function fetchNonce(cloud: CloudEndpoint, tenant: string): Promise<string> {
  const reply = await postForm(cloud, `/${tenant}/oauth2/token`, {
    grant_type: GRANT_TYPE.srvChallenge,
  });
  const nonce = jsonOf(reply, 'the nonce request').Nonce;
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > 4096) {
    throw new AgentDeviceError("the cloud's nonce answer has no Nonce");
  }
  return nonce;
}

/**
 * The tenant id behind a domain or tenant id, from the v2 OpenID discovery document's issuer
 * (`https://login.microsoftonline.com/<tid>/v2.0`).
 */
export async function discoverTenantId(cloud: CloudEndpoint, tenant: string): Promise<string> {
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(tenant)) throw new AgentDeviceError(`bad tenant '${tenant}'`);
  const reply = await send(cloud, 'GET', `/${tenant}/v2.0/.well-known/openid-configuration`);
  const issuer = jsonOf(reply, 'the discovery request').issuer;
  const tid =
    typeof issuer === 'string' ? /\/([0-9a-f-]{36})\/v2\.0$/i.exec(issuer)?.[1] : undefined;
  if (!tid)
    throw new AgentDeviceError(`the cloud's discovery document for '${tenant}' names no tenant id`);
  return tid.toLowerCase();
}

/**
 * A DRS access token for the user (§2: the join's bearer token, audience
 * urn:ms-drs:enterpriseregistration.windows.net, from the broker plugin client [HB-spec]).
 * The password goes in the form body only.
 */
export async function drsAccessToken(
  cloud: CloudEndpoint,
  upn: string,
  password: string,
): Promise<string> {
  const reply = await postForm(cloud, '/common/oauth2/token', {
    grant_type: GRANT_TYPE.password,
    client_id: BROKER_PLUGIN_CLIENT_ID,
    resource: DRS_RESOURCE,
    username: upn,
    password,
  });
  const token = jsonOf(reply, 'the sign-in for device registration').access_token;
  if (typeof token !== 'string')
    throw new AgentDeviceError("the cloud's token answer has no access_token");
  return token;
}

/** What DRS answers a join with (§2): the certificate as base64 DER, and the whole answer. */
interface JoinAnswer {
  readonly der: Buffer;
  readonly answer: Record<string, unknown>;
}

function certificateOf(reply: HttpReply, what: string): JoinAnswer {
  const answer = jsonOf(reply, what);
  const cert = answer.Certificate as { RawBody?: unknown } | undefined;
  if (typeof cert?.RawBody !== 'string')
    throw new AgentDeviceError(`the cloud's answer to ${what} has no certificate`);
  return { der: Buffer.from(cert.RawBody, 'base64'), answer };
}

/** `POST /EnrollmentServer/device/` (JoinType 0 or 4) with the user's DRS token. */
export async function joinDevice(
  cloud: CloudEndpoint,
  bearer: string,
  body: Record<string, unknown>,
  osVersion: string,
): Promise<JoinAnswer> {
  const reply = await send(
    cloud,
    'POST',
    `/EnrollmentServer/device/?api-version=${DRS_API_VERSION}`,
    {
      headers: {
        authorization: `Bearer ${bearer}`,
        'content-type': 'application/json',
        'user-agent': userAgent(osVersion),
      },
      body: JSON.stringify(body),
    },
  );
  return certificateOf(reply, 'the device registration');
}

/** `PUT /EnrollmentServer/device/{id}` (JoinType 6), proven by ClientIdentity, no bearer token. */
export async function hybridJoinDevice(
  cloud: CloudEndpoint,
  deviceId: string,
  body: Record<string, unknown>,
  osVersion: string,
): Promise<Buffer> {
  const reply = await send(
    cloud,
    'PUT',
    `/EnrollmentServer/device/${deviceId}?api-version=${DRS_API_VERSION}`,
    {
      headers: { 'content-type': 'application/json', 'user-agent': userAgent(osVersion) },
      body: JSON.stringify(body),
    },
  );
  return certificateOf(reply, 'the hybrid join').der;
}

/** The DRS nonce service (§2 "Discovery"): `{"ReponseStatus":{...},"Value":"<nonce>"}`. */
export async function fetchDrsNonce(cloud: CloudEndpoint, tenantId: string): Promise<string> {
  const reply = await send(cloud, 'GET', `/EnrollmentServer/nonce/${tenantId}/?api-version=1.0`);
  const value = jsonOf(reply, 'the DRS nonce request').Value;
  if (typeof value !== 'string' || value.length === 0)
    throw new AgentDeviceError('the DRS nonce answer has no Value');
  return value;
}

/** `DELETE /EnrollmentServer/device/{id}`, proven by a device-signed JWT (cloud/registration). */
export async function deleteDevice(
  cloud: CloudEndpoint,
  deviceId: string,
  proof: string,
): Promise<void> {
  const reply = await send(cloud, 'DELETE', `/EnrollmentServer/device/${deviceId}`, {
    headers: { authorization: `Bearer ${proof}` },
  });
  if (reply.status !== 200) refuse(reply, 'the device deletion');
}

/**
 * A signed request at the v1 token endpoint (§4.1, §6.1): `grant_type=jwt-bearer`, the JWT in
 * `request`, `windows_api_version=2.0` and `client_info=1`; `correlationId` (a GUID) is sent as
 * the `client-request-id`, a fresh one when absent.
 */
export function postSignedRequest(
  cloud: CloudEndpoint,
  tenant: string,
  request: string,
  correlationId?: string,
): Promise<HttpReply> {
  return postForm(
    cloud,
    `/${tenant}/oauth2/token`,
    {
      grant_type: GRANT_TYPE.jwtBearer,
      request,
      windows_api_version: '2.0',
      client_info: '1',
    },
    correlationId !== undefined ? { correlationId } : {},
  );
}
