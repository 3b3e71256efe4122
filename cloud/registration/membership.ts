/**
 * `MembershipChanges` in the DRS join response (docs/prt-protocol.md §2, [HB-spec] 2.1.1.1.2):
 * cloud SIDs that Windows adds to a local group, here the local Administrators group
 * `S-1-5-32-544`. Clients MUST ignore the field [HB-spec][AADI-PRT]; the lab fills it so the shape
 * matches what Windows receives.
 *
 * Which SIDs: Microsoft documents that an Entra join adds the Global Administrator role and the
 * "Microsoft Entra Joined Device Local Administrator" role (formerly "Azure AD Joined Device Local
 * Administrator") to the device's local Administrators group (Microsoft Learn, "Manage the local
 * administrators on Microsoft Entra joined devices"). Entra writes a cloud object as the SID
 * `S-1-12-1-<a>-<b>-<c>-<d>`, where a..d are the object id's 16 bytes in .NET GUID order read as
 * four little-endian u32 values. In a real tenant the object is the activated directoryRole, whose
 * object id differs from its role template id; the lab's directory has one id per role (the
 * template id, directory/seed.ts), so that id is the one converted.
 */
import { guidToBytes } from '../../protocol/index.ts';
import type { Directory } from '../directory/types.ts';

/** BUILTIN\Administrators. */
export const LOCAL_ADMINISTRATORS_SID = 'S-1-5-32-544';

/** Role template ids (Entra's, the same in every tenant) whose members administer joined devices. */
export const DEVICE_ADMIN_ROLE_IDS: readonly string[] = Object.freeze([
  // Global Administrator
  '62e90394-69f5-4237-9190-012177145e10',
  // (Microsoft Entra | Azure AD) Joined Device Local Administrator
  '9f06204d-73c1-4d4c-880a-6edb90606fd8',
]);

/** The SID Entra gives a cloud object id: S-1-12-1 plus the GUID bytes as four LE u32 values. */
export function objectIdToSid(objectId: string): string {
  const b = guidToBytes(objectId);
  const parts = [0, 4, 8, 12].map((offset) => b.readUInt32LE(offset));
  return `S-1-12-1-${parts.join('-')}`;
}

export interface MembershipChange {
  readonly LocalSID: string;
  readonly AddSIDs: readonly string[];
}

/** The MembershipChanges list: the device-administrator roles the directory has, as SIDs. */
export async function membershipChanges(directory: Directory): Promise<MembershipChange[]> {
  const sids: string[] = [];
  for (const id of DEVICE_ADMIN_ROLE_IDS) {
    const role = await directory.roles.find(id);
    if (role) sids.push(objectIdToSid(role.id));
  }
  return [{ LocalSID: LOCAL_ADMINISTRATORS_SID, AddSIDs: sids }];
}
