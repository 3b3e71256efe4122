import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';
import { atomicWriteFile } from './atomic-write.ts';
import { StateError } from './errors.ts';
import { readNoFollow } from './fs-util.ts';
import { isKeySourceKind, KEY_BYTES, type KeySourceKind } from './key-source.ts';

/**
 * The at-rest format of TPM state: AES-256-GCM over the engine's opaque state blob.
 *
 *   offset  size  field
 *        0     8  magic "PRTLTPMS"
 *        8     1  format version (1)
 *        9     1  key-source kind (1 = key-file, 2 = secret-service)
 *       10     8  key id: HKDF-SHA256(key, info "prtlab tpm-state v1 key-id"), 8 bytes
 *       18    12  GCM nonce, random for every write
 *       30     4  ciphertext length n, big-endian
 *       34     n  ciphertext
 *     34+n    16  GCM tag
 *
 * The whole 34-byte header is the GCM additional data, so the version, kind and length are
 * authenticated along with the state: an attacker can neither downgrade the format nor relabel
 * which key source sealed it.
 *
 * The encryption key is derived from the stored key with HKDF rather than being the stored key
 * itself, so the same key material is never used both for AES and for the key id. The key id lets
 * a wrong key be reported as such, distinct from a damaged file; it is a one-way function of the key
 * and reveals nothing about it.
 *
 * Random 96-bit nonces are safe for far more writes (NIST SP 800-38D caps one key at 2^32 random
 * nonces) than a TPM state file will ever see.
 */

export const SEALED_MAGIC: Uint8Array = new TextEncoder().encode('PRTLTPMS');
export const SEALED_FORMAT_VERSION = 1;
/** Largest sealed file accepted. A TPM's persistent state is kilobytes; this only bounds reads. */
export const MAX_SEALED_FILE_BYTES = 16 * 1024 * 1024;

const KEY_ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const OFF_VERSION = 8;
const OFF_KIND = 9;
const OFF_KEY_ID = 10;
const OFF_NONCE = OFF_KEY_ID + KEY_ID_BYTES;
const OFF_LENGTH = OFF_NONCE + NONCE_BYTES;
export const SEALED_HEADER_BYTES = OFF_LENGTH + 4;
/** Bytes a sealed file adds to the state it carries (header and tag). */
export const SEALED_OVERHEAD_BYTES = SEALED_HEADER_BYTES + TAG_BYTES;
/** Largest state blob that seals into a file within MAX_SEALED_FILE_BYTES. */
export const MAX_STATE_BYTES = MAX_SEALED_FILE_BYTES - SEALED_OVERHEAD_BYTES;

// On-disk numbers are part of the format: never renumber, only add.
const KIND_CODES: Readonly<Record<KeySourceKind, number>> = { 'key-file': 1, 'secret-service': 2 };

const ENC_KEY_INFO = 'prtlab tpm-state v1 aes-256-gcm';
const KEY_ID_INFO = 'prtlab tpm-state v1 key-id';
const NO_SALT = new Uint8Array(0);

/** The fields of a sealed file's header, as read (unauthenticated until the file is unsealed). */
export interface SealedHeader {
  version: number;
  kind: KeySourceKind;
  keyId: string;
  ciphertextLength: number;
}

/** Hex key id of a sealing key, as stored in sealed headers; safe to print. */
export function sealingKeyId(key: Uint8Array): string {
  checkKey(key);
  return Buffer.from(deriveKeyId(key)).toString('hex');
}

/** Seals `state` under `key`, labelling it with the key-source kind. */
export function sealState(state: Uint8Array, key: Uint8Array, kind: KeySourceKind): Uint8Array {
  if (!(state instanceof Uint8Array)) throw new TypeError('state must be a Uint8Array');
  checkKey(key);
  if (!isKeySourceKind(kind)) throw new TypeError(`unknown key-source kind ${String(kind)}`);
  if (state.length > MAX_STATE_BYTES) {
    throw new RangeError(
      `state is ${state.length} bytes; at most ${MAX_STATE_BYTES} can be sealed`,
    );
  }
  const out = new Uint8Array(SEALED_OVERHEAD_BYTES + state.length);
  const header = out.subarray(0, SEALED_HEADER_BYTES);
  header.set(SEALED_MAGIC, 0);
  header[OFF_VERSION] = SEALED_FORMAT_VERSION;
  header[OFF_KIND] = KIND_CODES[kind];
  header.set(deriveKeyId(key), OFF_KEY_ID);
  const nonce = header.subarray(OFF_NONCE, OFF_NONCE + NONCE_BYTES);
  randomFillSync(nonce);
  new DataView(out.buffer, out.byteOffset).setUint32(OFF_LENGTH, state.length);

  const encKey = deriveEncKey(key);
  try {
    const cipher = createCipheriv('aes-256-gcm', encKey, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(header);
    const body = cipher.update(state);
    cipher.final();
    out.set(body, SEALED_HEADER_BYTES);
    out.set(cipher.getAuthTag(), SEALED_HEADER_BYTES + state.length);
  } finally {
    encKey.fill(0);
  }
  return out;
}

/**
 * Parses and checks a sealed file's header without a key: magic, version, kind and that the length
 * matches the file. Nothing here is authenticated yet; unsealState authenticates it.
 *
 * @param label names the file in error messages (e.g. its path)
 */
export function parseSealedHeader(sealed: Uint8Array, label = 'sealed TPM state'): SealedHeader {
  if (!(sealed instanceof Uint8Array)) throw new TypeError('sealed must be a Uint8Array');
  if (sealed.length > MAX_SEALED_FILE_BYTES) {
    throw corrupt(label, `is ${sealed.length} bytes, over the ${MAX_SEALED_FILE_BYTES}-byte cap`);
  }
  const magicSeen = sealed.subarray(0, SEALED_MAGIC.length);
  if (!bytesEqual(magicSeen, SEALED_MAGIC.subarray(0, magicSeen.length))) {
    throw corrupt(label, 'is not a prtlab sealed TPM state file (bad magic)');
  }
  if (sealed.length < SEALED_HEADER_BYTES) {
    throw corrupt(
      label,
      `is truncated: ${sealed.length} bytes, shorter than the ${SEALED_HEADER_BYTES}-byte header`,
    );
  }
  const version = sealed[OFF_VERSION]!;
  if (version !== SEALED_FORMAT_VERSION) {
    throw corrupt(
      label,
      `has format version ${version}; this build reads version ${SEALED_FORMAT_VERSION}`,
    );
  }
  const kindCode = sealed[OFF_KIND]!;
  const kind = (Object.keys(KIND_CODES) as KeySourceKind[]).find((k) => KIND_CODES[k] === kindCode);
  if (kind === undefined) throw corrupt(label, `has an unknown key-source kind code ${kindCode}`);
  const ciphertextLength = new DataView(sealed.buffer, sealed.byteOffset).getUint32(OFF_LENGTH);
  const expected = SEALED_OVERHEAD_BYTES + ciphertextLength;
  if (sealed.length < expected) {
    throw corrupt(label, `is truncated: ${sealed.length} of ${expected} bytes`);
  }
  if (sealed.length > expected) {
    throw corrupt(label, `has ${sealed.length - expected} unexpected bytes after the ${expected}`);
  }
  const keyId = Buffer.from(sealed.subarray(OFF_KEY_ID, OFF_KEY_ID + KEY_ID_BYTES)).toString('hex');
  return { version, kind, keyId, ciphertextLength };
}

/**
 * Authenticates and decrypts a sealed file. Fails closed with ERR_STATE_CORRUPT (bad magic,
 * version or length, wrong key, altered bytes) or, for an intact file sealed under another kind of
 * key source, ERR_STATE_KEY_SOURCE_MISMATCH. No partial plaintext is ever returned.
 */
export function unsealState(
  sealed: Uint8Array,
  key: Uint8Array,
  expectedKind: KeySourceKind,
  label = 'sealed TPM state',
): Uint8Array {
  checkKey(key);
  if (!isKeySourceKind(expectedKind)) {
    throw new TypeError(`unknown key-source kind ${String(expectedKind)}`);
  }
  const header = parseSealedHeader(sealed, label);
  const ourKeyId = sealingKeyId(key);
  if (header.keyId !== ourKeyId) {
    throw corrupt(
      label,
      `was sealed under a different key (key id ${header.keyId}; the key source's key has id ` +
        `${ourKeyId}), or its header was altered`,
    );
  }
  const aad = sealed.subarray(0, SEALED_HEADER_BYTES);
  const nonce = sealed.subarray(OFF_NONCE, OFF_NONCE + NONCE_BYTES);
  const body = sealed.subarray(SEALED_HEADER_BYTES, SEALED_HEADER_BYTES + header.ciphertextLength);
  const tag = sealed.subarray(SEALED_HEADER_BYTES + header.ciphertextLength);
  const encKey = deriveEncKey(key);
  let state: Uint8Array;
  try {
    const decipher = createDecipheriv('aes-256-gcm', encKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    const first = decipher.update(body);
    try {
      decipher.final();
    } catch (err) {
      // update() has already produced unauthenticated plaintext; wipe it before failing.
      first.fill(0);
      throw corrupt(label, 'failed authentication: it was altered or damaged', err);
    }
    // A copy in a buffer of its own: Node may hand back a slice of a shared pool, which must not
    // leak to the caller or keep the plaintext alive after this copy.
    state = new Uint8Array(first);
    first.fill(0);
  } finally {
    encKey.fill(0);
  }
  // Only now, with the header authenticated, does its kind byte mean anything.
  if (header.kind !== expectedKind) {
    state.fill(0);
    throw new StateError(
      'ERR_STATE_KEY_SOURCE_MISMATCH',
      `${label} was sealed with key source '${header.kind}', but '${expectedKind}' was requested`,
    );
  }
  return state;
}

/** Seals `state` and writes it to `path` atomically (mode 0600). */
export async function writeSealed(
  path: string,
  state: Uint8Array,
  key: Uint8Array,
  kind: KeySourceKind,
): Promise<void> {
  await atomicWriteFile(path, sealState(state, key, kind), { mode: 0o600 });
}

/**
 * Reads and unseals the state at `path`. Returns undefined only when no file exists there; any
 * file that exists but cannot be unsealed is an error. Files over MAX_SEALED_FILE_BYTES are
 * refused before being read.
 */
export async function readSealed(
  path: string,
  key: Uint8Array,
  expectedKind: KeySourceKind,
): Promise<Uint8Array | undefined> {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('path must be non-empty');
  const sealed = await readNoFollow(
    path,
    undefined,
    (st) => {
      if (!st.isFile()) throw new StateError('ERR_STATE_IO', `${path} is not a regular file`);
      if (st.size > MAX_SEALED_FILE_BYTES) {
        throw corrupt(path, `is ${st.size} bytes, over the ${MAX_SEALED_FILE_BYTES}-byte cap`);
      }
      return st.size;
    },
    (code, err) =>
      code === 'ELOOP'
        ? new StateError('ERR_STATE_IO', `${path} is a symbolic link; refusing to follow it`, {
            cause: err,
          })
        : undefined,
  );
  if (sealed === undefined) return undefined;
  return unsealState(sealed, key, expectedKind, path);
}

function corrupt(label: string, why: string, cause?: unknown): StateError {
  return new StateError('ERR_STATE_CORRUPT', `${label} ${why}`, cause ? { cause } : undefined);
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new TypeError(`key must be a Uint8Array of ${KEY_BYTES} bytes`);
  }
}

function deriveEncKey(key: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key, NO_SALT, ENC_KEY_INFO, KEY_BYTES));
}

function deriveKeyId(key: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', key, NO_SALT, KEY_ID_INFO, KEY_ID_BYTES));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
