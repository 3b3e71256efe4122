/**
 * Who this TPM says it is: the fixed properties GetCapability reports (Part 2 §6.13 TPM_PT) and
 * that attestations (TPMS_ATTEST.firmwareVersion) and the EK certificate's subjectAltName (TCG
 * EK Credential Profile: TPM manufacturer, model, version) repeat.
 */

/** TPM_PT_MANUFACTURER: four ASCII characters (the TCG vendor ID registry is for real vendors). */
export const TPM_MANUFACTURER = 'PRTL';
/** TPM_PT_VENDOR_STRING_1..4, 4 characters each: together the model name. */
export const TPM_VENDOR_STRINGS = ['prtl', 'ab s', 'im', ''] as const;
/** TPM_PT_FIRMWARE_VERSION_1 and _2. */
export const FIRMWARE_VERSION_1 = 0x00000001;
export const FIRMWARE_VERSION_2 = 0x00000000;

/** Four ASCII characters as a UINT32, the form of TPM_PT_MANUFACTURER and the vendor strings. */
export function chars4(s: string): number {
  return Buffer.from(s.padEnd(4, '\0').slice(0, 4), 'latin1').readUInt32BE(0);
}

/** TPMS_ATTEST.firmwareVersion (Part 2 §10.12.12): FIRMWARE_VERSION_1 || FIRMWARE_VERSION_2. */
export const FIRMWARE_VERSION = (BigInt(FIRMWARE_VERSION_1) << 32n) | BigInt(FIRMWARE_VERSION_2);

/** The model name the vendor strings spell: "prtlab sim". */
export function tpmModel(): string {
  return TPM_VENDOR_STRINGS.join('').replace(/\0+$/, '');
}
