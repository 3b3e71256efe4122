/**
 * Where the device's keys live and what may be done with them. Two implementations: keys in a TPM
 * (tpm.ts, through tpm-sim/client only) and, for `--tpm none`, software keys sealed with the OS
 * keystore (software.ts), as Windows keeps them when no usable TPM exists (prt-protocol §1.2).
 *
 * Nothing here ever hands out private key material: callers get signatures, HMACs and opaque
 * wrapped blobs. The one plain secret that passes through is the PRT session key, between the
 * transport key's decryption and its import, inside importSessionKey (§5.6).
 */
import type { KeyObject } from 'node:crypto';

/** A session key as stored: a TPM private blob, or a keystore-sealed software key. */
export type WrappedSessionKey =
  | { readonly kind: 'tpm'; readonly public: string; readonly private: string }
  | { readonly kind: 'software'; readonly sealed: string };

/** What status reports about the key provider (dsregcmd's KeyProvider and TpmProtected). */
export interface KeyProviderFacts {
  readonly tpmProtected: boolean;
  /** e.g. "Microsoft Platform Crypto Provider" (TPM) or "Microsoft Software Key Storage Provider". */
  readonly keyProvider: string;
  /** The TPM in use, or how software keys are protected. */
  readonly tpm: string;
}

export interface KeyProvider {
  readonly facts: KeyProviderFacts;
  readonly devicePublicKey: KeyObject;
  readonly transportPublicKey: KeyObject;
  /** Present on hybrid devices: the on-premises computer certificate's key. */
  readonly computerPublicKey: KeyObject | undefined;
  /** RSASSA-PKCS1-v1_5 SHA-256 over `data` with the device key (RS256, §4.2). */
  signWithDeviceKey(data: Buffer): Promise<Buffer>;
  /** RSASSA-PKCS1-v1_5 SHA-256 over `data` with the computer key (hybrid ClientIdentity, §2). */
  signWithComputerKey(data: Buffer): Promise<Buffer>;
  /**
   * Decrypts `encryptedKey` (RSA-OAEP-SHA1 to the transport key, §4.4) and imports the 32-byte
   * session key at once as a key object only this provider can use. `check` sees the plain key
   * inside the step (e.g. to verify the JWE payload) and may throw; the key is zeroed either way.
   */
  importSessionKey(encryptedKey: Buffer, check?: (key: Buffer) => void): Promise<WrappedSessionKey>;
  /** HMAC-SHA256 under an imported session key (the SP 800-108 PRF of §5). */
  sessionHmac(key: WrappedSessionKey, data: Buffer): Promise<Buffer>;
  /** HMAC-SHA256 under the device's sealing key (per-blob keys for seal/unseal). */
  sealingHmac(data: Buffer): Promise<Buffer>;
  /**
   * TPM attestation of the device and transport keys over a DRS nonce (the join body's
   * AikCertificate and AttestationData, keys/attestation.ts); absent for software keys, and
   * resolving to undefined for a TPM without an EK certificate.
   */
  readonly attest?: (
    nonce: string,
  ) => Promise<{ AikCertificate: string; AttestationData: string } | undefined>;
  close(): Promise<void>;
}
