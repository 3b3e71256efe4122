/**
 * `prtlab device status`, in the spirit of `dsregcmd /status`: the same section names and field
 * names (AzureAdJoined, DomainJoined, WorkplaceJoined, DeviceId, TpmProtected, KeySignTest,
 * DeviceAuthStatus, TenantId, AzureAdPrt, AzureAdPrtUpdateTime, AzureAdPrtExpiryTime,
 * AzureAdPrtAuthority), plus lab fields: the TPM in use, the device type, and one SSO block per
 * account with a PRT on the device.
 */

import type { DeviceAttestationRecord } from './store.ts';

/** One account's SSO state. */
export interface AccountStatus {
  readonly Upn: string;
  readonly AccountId: string;
  readonly AzureAdPrt: 'YES' | 'NO';
  readonly AzureAdPrtUpdateTime: string;
  readonly AzureAdPrtExpiryTime: string;
  /** Lab field: VALID, EXPIRED or REVOKED (with the refusal that revoked it). */
  readonly AzureAdPrtState: string;
  /** Lab field: the lab time the next renewal is due (every 4 h by default). */
  readonly AzureAdPrtRenewalDue: string;
  readonly AzureAdPrtError?: string;
}

/** The whole status as `status()` returns it and `--json` prints it. */
export interface DeviceStatus {
  readonly DeviceName: string;
  readonly AzureAdJoined: 'YES' | 'NO';
  readonly EnterpriseJoined: 'NO';
  readonly DomainJoined: 'YES' | 'NO';
  readonly WorkplaceJoined: 'YES' | 'NO';
  readonly DeviceType: string;
  readonly OsVersion: string;
  readonly DeviceId: string;
  readonly Thumbprint: string;
  readonly DeviceCertificateValidity: string;
  readonly KeyProvider: string;
  readonly TpmProtected: 'YES' | 'NO';
  readonly Tpm: string;
  readonly KeySignTest: 'PASSED' | 'FAILED';
  /**
   * Lab fields: how the cloud judged the registration's TPM attestation (the join answer's
   * `LabAttestation`, cloud/registration). VERIFIED or ABSENT; UNKNOWN for a device registered
   * before attestation existed or still awaiting its hybrid join.
   */
  readonly AttestationStatus: 'VERIFIED' | 'ABSENT' | 'UNKNOWN';
  readonly HardwareBacked: 'YES' | 'NO' | 'UNKNOWN';
  readonly AttestationReason: string;
  readonly DeviceAuthStatus: string;
  readonly TenantId: string;
  readonly TenantName: string;
  readonly CloudUrl: string;
  /** The SSO state of the most recently updated account (dsregcmd shows the signed-in user's). */
  readonly AzureAdPrt: 'YES' | 'NO';
  readonly AzureAdPrtUpdateTime: string;
  readonly AzureAdPrtExpiryTime: string;
  readonly AzureAdPrtAuthority: string;
  readonly Accounts: readonly AccountStatus[];
}

/** The attestation fields of DeviceStatus, from the device record's `attestation`. */
export function attestationStatus(
  attestation: DeviceAttestationRecord | undefined,
): Pick<DeviceStatus, 'AttestationStatus' | 'HardwareBacked' | 'AttestationReason'> {
  if (!attestation) {
    return { AttestationStatus: 'UNKNOWN', HardwareBacked: 'UNKNOWN', AttestationReason: '-' };
  }
  return {
    AttestationStatus: attestation.status === 'verified' ? 'VERIFIED' : 'ABSENT',
    HardwareBacked: attestation.hardwareBacked ? 'YES' : 'NO',
    AttestationReason: attestation.reason,
  };
}

/** dsregcmd's time format: `2024-05-08 09:12:33.000 UTC`. */
export function dsregTime(ms: number): string {
  return `${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')} UTC`;
}

function line(name: string, value: string): string {
  return `${name.padStart(30)} : ${value}`;
}

const RULE = `+${'-'.repeat(78)}+`;

function section(title: string, rows: [string, string][]): string[] {
  return [
    RULE,
    `| ${title.padEnd(77)}|`,
    RULE,
    '',
    ...rows.map(([k, v]) => (k === '' ? '' : line(k, v))),
    '',
  ];
}

/** The text `prtlab device status` prints. */
export function formatStatus(s: DeviceStatus): string {
  const out = [
    ...section('Device State', [
      ['AzureAdJoined', s.AzureAdJoined],
      ['EnterpriseJoined', s.EnterpriseJoined],
      ['DomainJoined', s.DomainJoined],
      ['WorkplaceJoined', s.WorkplaceJoined],
      ['DeviceName', s.DeviceName],
    ]),
    ...section('Device Details', [
      ['DeviceId', s.DeviceId],
      ['Thumbprint', s.Thumbprint],
      ['DeviceCertificateValidity', s.DeviceCertificateValidity],
      ['KeyProvider', s.KeyProvider],
      ['TpmProtected', s.TpmProtected],
      ['Tpm', s.Tpm],
      ['KeySignTest', s.KeySignTest],
      ['AttestationStatus', s.AttestationStatus],
      ['HardwareBacked', s.HardwareBacked],
      ['AttestationReason', s.AttestationReason],
      ['DeviceAuthStatus', s.DeviceAuthStatus],
      ['DeviceType', s.DeviceType],
      ['OsVersion', s.OsVersion],
    ]),
    ...section('Tenant Details', [
      ['TenantName', s.TenantName],
      ['TenantId', s.TenantId],
      ['CloudUrl', s.CloudUrl],
    ]),
  ];
  const sso: [string, string][] = [
    ['AzureAdPrt', s.AzureAdPrt],
    ['AzureAdPrtUpdateTime', s.AzureAdPrtUpdateTime],
    ['AzureAdPrtExpiryTime', s.AzureAdPrtExpiryTime],
    ['AzureAdPrtAuthority', s.AzureAdPrtAuthority],
  ];
  for (const a of s.Accounts) {
    sso.push(
      ['', ''],
      ['Account', a.Upn],
      ['AccountId', a.AccountId],
      ['AzureAdPrt', a.AzureAdPrt],
      ['AzureAdPrtState', a.AzureAdPrtState],
      ['AzureAdPrtUpdateTime', a.AzureAdPrtUpdateTime],
      ['AzureAdPrtExpiryTime', a.AzureAdPrtExpiryTime],
      ['AzureAdPrtRenewalDue', a.AzureAdPrtRenewalDue],
      ...(a.AzureAdPrtError
        ? ([['AzureAdPrtError', a.AzureAdPrtError]] as [string, string][])
        : []),
    );
  }
  out.push(...section('SSO State', sso));
  return `${out.join('\n')}\n`;
}
