/**
 * Authenticated encryption under a key that never leaves the device's TPM (or keystore): each
 * sealed blob gets its own AES-256-GCM key, the TPM's HMAC (sealing key) over a fresh salt and the
 * blob's domain and label. The HMAC key is a TPM object made by TPM2_Create (fixedTPM,
 * sensitiveDataOrigin), so without this TPM no blob opens; the per-blob key exists in memory for
 * one encryption or decryption only.
 *
 *   blob = "PSL1" || salt (32) || iv (12) || ciphertext || tag (16)
 *   key  = HMAC(sealing key, "prtlab seal v1" 0x00 || domain 0x00 || label 0x00 || salt)
 *   AAD  = "PSL1" || domain 0x00 || label
 *
 * The domain separates the agent's own blobs (the PRT) from the ones the broker asks for, so no
 * label the broker picks can open an agent blob.
 */
import { randomBytes } from 'node:crypto';
import { gcmOpen, gcmSeal } from './aead.ts';
import { AgentDeviceError } from './errors.ts';

const MAGIC = Buffer.from('PSL1', 'ascii');
const SALT_BYTES = 32;
const MAX_LABEL = 256;
/** Large enough for a broker's token cache; the TPM only ever sees the salt and label. */
export const MAX_SEAL_BYTES = 16 * 1024 * 1024;

export type SealDomain = 'agent' | 'broker';

/** HMAC-SHA256 under the sealing key (KeyProvider.sealingHmac). */
export type SealingHmac = (data: Buffer) => Promise<Buffer>;

function checkLabel(label: string): Buffer {
  if (
    typeof label !== 'string' ||
    label.length === 0 ||
    label.length > MAX_LABEL ||
    label.includes('\0')
  ) {
    throw new TypeError(`label must be 1..${MAX_LABEL} characters without NUL`);
  }
  return Buffer.from(label, 'utf8');
}

async function blobKey(
  hmac: SealingHmac,
  domain: SealDomain,
  label: Buffer,
  salt: Buffer,
): Promise<Buffer> {
  return hmac(
    Buffer.concat([Buffer.from(`prtlab seal v1\0${domain}\0`, 'ascii'), label, Buffer.of(0), salt]),
  );
}

function aad(domain: SealDomain, label: Buffer): Buffer {
  return Buffer.concat([MAGIC, Buffer.from(`${domain}\0`, 'ascii'), label]);
}

export async function seal(
  hmac: SealingHmac,
  domain: SealDomain,
  plain: Buffer,
  label: string,
): Promise<Buffer> {
  if (!Buffer.isBuffer(plain)) throw new TypeError('plain must be a Buffer');
  if (plain.length > MAX_SEAL_BYTES)
    throw new RangeError(`at most ${MAX_SEAL_BYTES} bytes can be sealed`);
  const labelBytes = checkLabel(label);
  const salt = randomBytes(SALT_BYTES);
  const key = await blobKey(hmac, domain, labelBytes, salt);
  try {
    return Buffer.concat([MAGIC, salt, gcmSeal(key, plain, aad(domain, labelBytes))]);
  } finally {
    key.fill(0);
  }
}

/** The plaintext; ERR_AGENT_DEVICE (one message for every cause) if the blob does not open. */
export async function unseal(
  hmac: SealingHmac,
  domain: SealDomain,
  sealed: Buffer,
  label: string,
): Promise<Buffer> {
  if (!Buffer.isBuffer(sealed)) throw new TypeError('sealed must be a Buffer');
  const labelBytes = checkLabel(label);
  const failed = () =>
    new AgentDeviceError(
      'the sealed blob does not open (tampered, another label or another device)',
    );
  if (sealed.length < MAGIC.length + SALT_BYTES || !sealed.subarray(0, 4).equals(MAGIC))
    throw failed();
  const salt = sealed.subarray(MAGIC.length, MAGIC.length + SALT_BYTES);
  const key = await blobKey(hmac, domain, labelBytes, Buffer.from(salt));
  try {
    const plain = gcmOpen(key, sealed.subarray(MAGIC.length + SALT_BYTES), aad(domain, labelBytes));
    if (!plain) throw failed();
    return plain;
  } finally {
    key.fill(0);
  }
}
