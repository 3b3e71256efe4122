/**
 * A deterministic byte source for key derivation: each call returns the next `nBytes` bytes of
 * one stream. Primary keys are drawn from such a stream, derived from the hierarchy seed and the
 * template (TPM 2.0 Part 3 §24.1 TPM2_CreatePrimary; tpm-formulas.md §6), so the same inputs
 * always give the same key.
 */
export type ByteStream = (nBytes: number) => Uint8Array;
