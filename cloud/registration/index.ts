/**
 * The device registration service (DRS) of the simulated Entra ID (docs/prt-protocol.md §1.4,
 * §1.5, §2):
 *
 *   POST   /EnrollmentServer/device/?api-version=2.0     join (JoinType 0) or register (4), user bearer token
 *   PUT    /EnrollmentServer/device/{id}?api-version=2.0  hybrid join (JoinType 6), ClientIdentity proof
 *   DELETE /EnrollmentServer/device/{id}                 the device removes itself (device-auth.ts)
 *   GET    /EnrollmentServer/nonce/{tenant}/             DRS nonce service ([HB-spec] 3.2)
 *
 * Each join answers 200 with { Certificate: { Thumbprint, RawBody }, User: { Upn },
 * MembershipChanges } ([HB-spec] 2.1.1.1.2). State kept in the process (nonce MAC key, replay
 * caches) belongs to the route list, so one `registrationRoutes()` call is one DRS.
 */

import { DRS_JOIN_TYPE } from '../../protocol/index.ts';
import { APP_IDS, DRS_RESOURCE_URI } from '../directory/seed.ts';
import type { Device, DeviceAttestation, User } from '../directory/types.ts';
import { CloudRequestError, echo } from '../errors.ts';
import type { CloudRequest, CloudResponse } from '../http/server.ts';
import { isGuid, newGuid } from '../ids.ts';
import type { IssuedDeviceCertificate, JoinType } from '../pki/device-cert.ts';
import { parseOnPremDeviceCertificate } from '../pki/device-cert.ts';
import { bearerChallenge, requireAccessToken } from '../resources/bearer.ts';
import type { CloudRoute, CloudServices } from '../services.ts';
import { verifyJoinAttestation } from './attestation.ts';
import { ClientIdentityVerifier } from './client-identity.ts';
import { authenticateDevice, DrsNonces } from './device-auth.ts';
import { badField } from './fields.ts';
import { membershipChanges } from './membership.ts';
import {
  type DeviceFacts,
  type JoinAttributes,
  readHybridJoinRequest,
  readJoinRequest,
} from './request.ts';
import { trustedManufacturers } from './trusted-manufacturers.ts';

export { CLIENT_IDENTITY_MAX_AGE_MS, CLIENT_IDENTITY_MAX_FUTURE_MS } from './client-identity.ts';
export { DRS_NONCE_LIFETIME_MS, peerCertificate } from './device-auth.ts';
export { LOCAL_ADMINISTRATORS_SID, objectIdToSid } from './membership.ts';
export { LAB_SYSTEM_LABELS } from './request.ts';
export {
  addTrustedManufacturer,
  TRUSTED_TPM_MANUFACTURERS_DIR,
  trustedManufacturers,
} from './trusted-manufacturers.ts';

/** api-version values the join endpoints take: 2.0 (Windows, ROADtools) and 1.0 (AADInternals). */
const JOIN_API_VERSIONS = ['1.0', '2.0'];
/** A join body is a CSR (about 1 KiB of base64), an RSA1 blob and a few names. */
const JOIN_BODY_LIMIT = 64 * 1024;
/** The audiences a DRS token may carry: the resource URI (§2) or the DRS app id. */
const DRS_AUDIENCES = [DRS_RESOURCE_URI, APP_IDS.deviceRegistrationService];

function checkApiVersion(req: CloudRequest, required: boolean): void {
  const v = req.query.get('api-version');
  if (v === null && !required) return;
  if (v === null || !JOIN_API_VERSIONS.includes(v)) {
    throw badField(
      `api-version must be one of ${JOIN_API_VERSIONS.join(', ')}` +
        (v === null ? '.' : `; got '${echo(v)}'.`),
    );
  }
}

/** The device id in the path, lowercased; AADSTS9990205 if it is not a GUID. */
function pathDeviceId(req: CloudRequest): string {
  const id = req.params.deviceId ?? '';
  if (!isGuid(id)) throw badField('The device id in the path must be a GUID.');
  return id.toLowerCase();
}

/**
 * The lab member of a join answer that tells the device how DRS judged its attestation
 * (`LabAttestation`: Status "verified" | "absent", HardwareBacked, Reason). Entra's answer has no
 * such member (§2); clients that do not know it ignore it, as they must unknown members.
 */
function labAttestation(a: DeviceAttestation) {
  return { Status: a.status, HardwareBacked: a.status === 'verified', Reason: a.reason };
}

async function joinResponse(
  cloud: CloudServices,
  cert: IssuedDeviceCertificate,
  user: User | undefined,
  attributes: JoinAttributes,
  attestation: DeviceAttestation,
): Promise<CloudResponse> {
  return {
    status: 200,
    json: {
      Certificate: { Thumbprint: cert.thumbprint, RawBody: cert.der.toString('base64') },
      LabAttestation: labAttestation(attestation),
      // A hybrid join has no signed-in user; it authenticated as the computer (README, "DRS").
      ...(user ? { User: { Upn: user.upn } } : {}),
      // [HB-spec]: ReturnClientSid asks for MembershipChanges; clients MUST ignore them.
      ...(attributes.returnClientSid
        ? { MembershipChanges: await membershipChanges(cloud.directory) }
        : {}),
    },
  };
}

/** What a join (any JoinType) writes to the device object from the body and its certificate. */
function joinedDeviceFields(facts: DeviceFacts, cert: IssuedDeviceCertificate) {
  return {
    displayName: facts.displayName,
    operatingSystem: facts.deviceType,
    operatingSystemVersion: facts.osVersion,
    deviceType: facts.deviceType,
    transportKey: facts.transportKeyBlob,
    certThumbprint: cert.thumbprint,
  };
}

function logJoin(cloud: CloudServices, device: Device, joinType: JoinType, by: string): void {
  cloud.log(
    `drs: device ${device.id} joinType=${joinType} certificate ${device.certThumbprint} (${by})`,
  );
}

/**
 * POST /EnrollmentServer/device/: the bearer token is checked first (no body work for an
 * anonymous caller), then the body; then a new device object gets its certificate.
 */
function join(nonces: DrsNonces) {
  return async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    checkApiVersion(req, true);
    const claims = await requireAccessToken(req, cloud, DRS_AUDIENCES);
    if (!isGuid(claims.oid)) {
      throw new CloudRequestError(9990301, {
        description: 'The access token does not name a user.',
        headers: { 'www-authenticate': bearerChallenge(req.baseUrl) },
      });
    }
    const user = await cloud.directory.users.get(claims.oid);
    if (!user) throw new CloudRequestError(50034);
    if (!user.enabled) throw new CloudRequestError(50057);

    const body = await readJoinRequest(await req.json());
    // Tenant setting (off by default): refuse a registration that is not TPM-attested. Checked
    // before the attestation itself, which then must verify (or the join is refused anyway).
    if (!body.attestation && (await cloud.directory.policies.requireHardwareBackedRegistration())) {
      throw new CloudRequestError(9990220);
    }
    const attestation = verifyJoinAttestation({
      members: body.attestation,
      deviceKey: body.csr.publicKey,
      transportKey: body.device.transportKey,
      anchors: body.attestation ? await trustedManufacturers(cloud.paths.root, cloud.log) : [],
      nonces,
      now: cloud.now(),
    });
    // ReuseDevice is read but never reuses: the body names no earlier device (the CSR key is
    // fresh, there is no device id), and matching on display name would let one registration take
    // over another device's record. Every join creates a new device id (README, "DRS").
    const deviceId = newGuid();
    const cert = await cloud.issueDeviceCertificate({
      publicKey: body.csr.publicKey,
      deviceId,
      userObjectId: user.id,
      joinType: body.joinType,
    });
    const device = await cloud.directory.devices.create({
      id: deviceId,
      joinType: body.joinType,
      ...joinedDeviceFields(body.device, cert),
      registeringUserId: user.id,
      systemLabels: body.systemLabels,
      attestation,
    });
    logJoin(cloud, device, body.joinType, `user ${user.id}, attestation ${attestation.status}`);
    return joinResponse(cloud, cert, user, body.attributes, attestation);
  };
}

/**
 * The lab's hybrid join body takes no AikCertificate (README, "DRS"): a hybrid device is recorded
 * as not attested. The tenant setting requireHardwareBackedRegistration applies to POST joins
 * (users' registrations, §8's attack path); the hybrid join is proven by the on-premises key.
 */
const HYBRID_ATTESTATION: DeviceAttestation = Object.freeze({
  status: 'absent',
  reason: 'hybrid join: the lab hybrid join carries no TPM attestation',
});

/**
 * PUT /EnrollmentServer/device/{id}: hybrid join. The device must have been pre-created (its
 * on-premises certificate synced, `prtlab cloud device precreate`), that certificate's CN must be
 * the id in the path, and ClientIdentity must verify with its key. A device already joined may
 * join again (Windows does after `dsregcmd /leave`): the proof is the same on-premises key, the new
 * certificate replaces the old one and the device's tokens are revoked.
 */
function hybridJoin(verifier: ClientIdentityVerifier) {
  return async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    checkApiVersion(req, true);
    const id = pathDeviceId(req);
    const body = await readHybridJoinRequest(await req.json());
    if (body.targetDomainId.toLowerCase() !== cloud.tenant.id) {
      throw new CloudRequestError(90002, {
        description: `Tenant '${echo(body.targetDomainId)}' not found (ServerAdJoinData.TargetDomainId).`,
      });
    }
    const device = await cloud.directory.devices.get(id);
    if (!device) {
      throw new CloudRequestError(700003, {
        description: `Device '${id}' was not found; a hybrid device must be pre-created (synced) first.`,
      });
    }
    if (device.joinType !== DRS_JOIN_TYPE.hybrid || device.onPremCertificate === null) {
      throw new CloudRequestError(9990207);
    }
    const onPrem = parseOnPremDeviceCertificate(device.onPremCertificate);
    if (onPrem.deviceId !== id) {
      throw new CloudRequestError(9990207, {
        description: "The on-premises certificate's subject does not name the device in the path.",
      });
    }
    if (!device.enabled) throw new CloudRequestError(135011);
    verifier.verify(body.clientIdentity, id, onPrem.publicKey, cloud.now().getTime());

    const rejoin = device.state === 'registered';
    // No user signed in: the computer authenticated itself, so the certificate's
    // AuthUserObjectId (.284.3) is the device object's own id (README, "DRS").
    const cert = await cloud.issueDeviceCertificate({
      publicKey: body.csr.publicKey,
      deviceId: id,
      userObjectId: device.objectId,
      joinType: DRS_JOIN_TYPE.hybrid,
    });
    const updated = await cloud.directory.devices.update(id, {
      state: 'registered',
      ...joinedDeviceFields(body.device, cert),
      registeringUserId: null,
      // A hybrid (re-)join states the device's labels afresh, like its other facts.
      systemLabels: body.systemLabels,
      attestation: HYBRID_ATTESTATION,
    });
    if (rejoin) await cloud.directory.tokens.revokeForDevice(id);
    logJoin(cloud, updated, DRS_JOIN_TYPE.hybrid, rejoin ? 'hybrid re-join' : 'hybrid join');
    return joinResponse(cloud, cert, undefined, body.attributes, HYBRID_ATTESTATION);
  };
}

/** DELETE /EnrollmentServer/device/{id}: only the device itself, proven as device-auth.ts says. */
function remove(nonces: DrsNonces) {
  return async (req: CloudRequest, cloud: CloudServices): Promise<CloudResponse> => {
    checkApiVersion(req, false);
    const id = pathDeviceId(req);
    const device = await authenticateDevice(req, cloud, nonces);
    if (device.id !== id) throw new CloudRequestError(9990213);
    // Deleting revokes every token issued on the device (directory.devices.delete).
    await cloud.directory.devices.delete(id);
    cloud.log(`drs: device ${id} deleted itself`);
    return { status: 200 };
  };
}

/**
 * GET /EnrollmentServer/nonce/{tenant}/: `{"ReponseStatus":{...},"Value":"<nonce>"}`, with
 * [HB-spec]'s spelling "Reponse" and its US-style time.
 */
function nonce(nonces: DrsNonces) {
  return (req: CloudRequest, cloud: CloudServices): CloudResponse => {
    const now = cloud.now();
    return {
      status: 200,
      json: {
        ReponseStatus: {
          message: 'Successfully created a nonce',
          traceId: req.ids.traceId,
          time: usTime(now),
        },
        Value: nonces.issue(now.getTime()),
      },
    };
  };
}

/** "10/12/2023 3:05:30 PM" (UTC), the time format of [HB-spec]'s nonce example. */
function usTime(d: Date): string {
  const h = d.getUTCHours();
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ` +
    `${h % 12 === 0 ? 12 : h % 12}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ${h < 12 ? 'AM' : 'PM'}`
  );
}

/** The DRS routes, with their own nonce key and replay caches. */
export function registrationRoutes(): CloudRoute[] {
  const nonces = new DrsNonces();
  const verifier = new ClientIdentityVerifier();
  return [
    {
      method: 'POST',
      path: '/EnrollmentServer/device',
      handler: join(nonces),
      options: { bodyLimit: JOIN_BODY_LIMIT },
    },
    {
      method: 'PUT',
      path: '/EnrollmentServer/device/{deviceId}',
      handler: hybridJoin(verifier),
      options: { bodyLimit: JOIN_BODY_LIMIT },
    },
    {
      method: 'DELETE',
      path: '/EnrollmentServer/device/{deviceId}',
      handler: remove(nonces),
      options: { bodyLimit: 0 },
    },
    {
      method: 'GET',
      path: '/EnrollmentServer/nonce/{tenant}',
      handler: nonce(nonces),
      options: { bodyLimit: 0 },
    },
  ];
}
