/**
 * Where the 32-byte key that seals TPM state lives. The caller picks a source explicitly and the
 * choice is recorded next to the state; nothing here ever falls back from one source to another,
 * because a silent fallback would put the key somewhere the operator did not choose (for example
 * an in-memory kernel keyring that is lost on reboot, taking the TPM's seeds with it).
 *
 * Implementations: KeyFileSource (`key-file-source.ts`), SecretServiceSource
 * (`secret-service-source.ts`).
 */

/** Length of the sealing key in bytes (AES-256). */
export const KEY_BYTES = 32;

export const KEY_SOURCE_KINDS = ['key-file', 'secret-service'] as const;

export type KeySourceKind = (typeof KEY_SOURCE_KINDS)[number];

export function isKeySourceKind(value: unknown): value is KeySourceKind {
  return typeof value === 'string' && (KEY_SOURCE_KINDS as readonly string[]).includes(value);
}

export interface GetKeyOptions {
  /**
   * True only when no sealed TPM state exists yet. Then, and only then, a missing key is created.
   * When state exists, a missing key is an error: a fresh key could never open that state, and
   * "missing" may really mean "locked" or "wrong keystore".
   */
  stateIsNew: boolean;
}

export interface KeySource {
  readonly kind: KeySourceKind;
  /** Where the key lives (a path, or a keystore service/account); safe to print, never the key. */
  describe(): string;
  /**
   * Returns a fresh copy of the 32-byte key, creating and storing one first if it is missing and
   * `stateIsNew` is true. Fails with a StateError: ERR_KEY_MISSING, ERR_KEY_FILE, ERR_KEY_INVALID,
   * ERR_KEYSTORE_LOCKED, ERR_KEYSTORE_UNAVAILABLE or ERR_STATE_IO.
   */
  getKey(options: GetKeyOptions): Promise<Uint8Array>;
}

/** Throws TypeError unless `value` looks like a KeySource (a caller bug otherwise). */
export function assertKeySource(value: unknown): asserts value is KeySource {
  const v = value as Partial<KeySource> | null;
  if (
    typeof v !== 'object' ||
    v === null ||
    !isKeySourceKind(v.kind) ||
    typeof v.describe !== 'function' ||
    typeof v.getKey !== 'function'
  ) {
    throw new TypeError(
      `keySource must be a KeySource with kind ${KEY_SOURCE_KINDS.map((k) => `'${k}'`).join(' or ')}`,
    );
  }
}
