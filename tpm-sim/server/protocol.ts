/**
 * Wire constants for the two TCP protocols a TPM simulator speaks, and the few TPM 2.0 header
 * facts the server and the transports need. All integers on the wire are big-endian.
 *
 * Sources: ms-tpm-20-ref TPMCmd/Simulator/include/TpmTcpProtocol.h and src/TcpServer.c (the MS
 * simulator protocol), swtpm include/swtpm/tpm_ioctl.h (swtpm's control channel), TPM 2.0 Part 2
 * (TPM_ST, TPM_RC). See also docs/tpm.md part B.
 */

/** TPM_ST_NO_SESSIONS: the tag of a command or response without an authorization area. */
export const TPM_ST_NO_SESSIONS = 0x8001;
/** TPM_ST_SESSIONS: the tag of a command or response with an authorization area. */
export const TPM_ST_SESSIONS = 0x8002;
/** tag (u16) + size (u32) + command code or response code (u32). */
export const TPM_HEADER_SIZE = 10;

/** TPM_RC_FAILURE: the TPM is in failure mode; used when the device itself broke. */
export const TPM_RC_FAILURE = 0x101;
/** TPM_RC_COMMAND_SIZE: the command size is inconsistent with the bytes received. */
export const TPM_RC_COMMAND_SIZE = 0x142;

/** Codes of the MS simulator's TPM data port (TpmTcpProtocol.h). */
export const MsDataCode = {
  HASH_START: 5,
  HASH_DATA: 6,
  HASH_END: 7,
  SEND_COMMAND: 8,
  REMOTE_HANDSHAKE: 15,
  SET_ALTERNATIVE_RESULT: 16,
  SESSION_END: 20,
  STOP: 21,
} as const;

/** Codes of the MS simulator's platform port (TpmTcpProtocol.h). */
export const MsPlatformCode = {
  POWER_ON: 1,
  POWER_OFF: 2,
  PHYS_PRES_ON: 3,
  PHYS_PRES_OFF: 4,
  CANCEL_ON: 9,
  CANCEL_OFF: 10,
  NV_ON: 11,
  NV_OFF: 12,
  KEY_CACHE_ON: 13,
  KEY_CACHE_OFF: 14,
  RESET: 17,
  RESTART: 18,
  SESSION_END: 20,
  STOP: 21,
  GET_COMMAND_RESPONSE_SIZES: 25,
} as const;

/** The swtpm control-channel codes that this project's server understands (tpm_ioctl.h). */
export const SwtpmCtrlCode = {
  /** CMD_INIT + u32 flags; the reply is u32 result. Collides with MS POWER_OFF. */
  INIT: 2,
  /** CMD_SET_LOCALITY + u8 locality; the reply is u32 result. No MS platform code uses 5. */
  SET_LOCALITY: 5,
} as const;

/** TPM_BAD_LOCALITY (TPM 1.2 TPM_BASE + 61): what swtpm answers to SET_LOCALITY above 4. */
export const SWTPM_BAD_LOCALITY = 0x3d;

/**
 * TPM_REMOTE_HANDSHAKE endpoint flags (TpmEndPointInfo in TpmTcpProtocol.h): tpmPlatformAvailable
 * 0x01, tpmUsesTbs 0x02, tpmInRawMode 0x04, tpmSupportsPP 0x08.
 */
export const MS_ENDPOINT_PLATFORM_AVAILABLE = 0x01;
export const MS_ENDPOINT_IN_RAW_MODE = 0x04;
export const MS_ENDPOINT_SUPPORTS_PP = 0x08;
/** TcpServer.c's ServerVersion. */
export const MS_SERVER_VERSION = 1;

/** A 10-byte TPM response carrying only a response code, tag TPM_ST_NO_SESSIONS. */
export function tpmErrorResponse(rc: number): Buffer {
  const out = Buffer.alloc(TPM_HEADER_SIZE);
  out.writeUInt16BE(TPM_ST_NO_SESSIONS, 0);
  out.writeUInt32BE(TPM_HEADER_SIZE, 2);
  out.writeUInt32BE(rc >>> 0, 6);
  return out;
}

/** True for the two tags a TPM 2.0 command or response may carry. */
export function isTpm2Tag(tag: number): boolean {
  return tag === TPM_ST_NO_SESSIONS || tag === TPM_ST_SESSIONS;
}

/** One big-endian u32 as 4 bytes. */
export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}
