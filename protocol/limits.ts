/**
 * Named caps for every parser of untrusted protocol input. Each parser checks the input length
 * against its cap before decoding anything, so hostile input costs at most one length check.
 *
 * The values are generous multiples of what Entra sends [KAT]; they bound memory and CPU, they are
 * not meant to track Entra's own limits (which are not public).
 */

/**
 * Longest compact JWS accepted, in characters. The largest PRT-protocol JWTs are device-signed PRT
 * requests (an x5c certificate plus a refresh token or assertion, about 6 KiB) and renewal requests
 * carrying `refresh_token` and `previous_refresh_token` (§4.2, §6.1).
 */
export const MAX_JWT_LENGTH = 64 * 1024;

/** Longest `session_key_jwe` accepted, in characters: an 8192-bit RSA-OAEP block is 1366 of them. */
export const MAX_SESSION_KEY_JWE_LENGTH = 4 * 1024;

/**
 * Longest encrypted token response accepted, in characters. The real renewal response is about
 * 4.6 KiB [KAT]; responses with `tgt=true` add two Kerberos AS-REPs (§4.3), hence the headroom.
 */
export const MAX_RESPONSE_JWE_LENGTH = 1024 * 1024;

/** Largest BCRYPT_RSAKEY_BLOB accepted, in bytes: header, 8-byte exponent, 8192-bit modulus. */
export const MAX_RSA_BLOB_BYTES = 24 + 8 + 1024;

/** RSA modulus sizes accepted in a BCRYPT_RSAKEY_BLOB (Windows uses 2048 [MSPRT]). */
export const MIN_RSA_BITS = 512;
export const MAX_RSA_BITS = 8192;

/**
 * Length bounds of a decoded `ctx`. Windows and the tools send 24 bytes, compact-jwt/Himmelblau 32
 * (§5.3); anything under 16 bytes is too little randomness to separate derived keys.
 */
export const MIN_CTX_BYTES = 16;
export const MAX_CTX_BYTES = 64;

/** Most certificates accepted in an `x5c` header, and the largest single DER certificate. */
export const MAX_X5C_CERTS = 8;
export const MAX_CERT_DER_BYTES = 16 * 1024;

/**
 * Deepest JSON nesting accepted in a header, payload or decrypted response. Real PRT-protocol JSON
 * nests two or three levels; V8 parses far deeper input without complaint, but the objects it
 * yields then overflow the stack in JSON.stringify or structuredClone wherever they travel next.
 */
export const MAX_JSON_DEPTH = 32;
