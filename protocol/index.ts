/**
 * protocol/: the wire formats of the Primary Refresh Token protocol, shared by the device agent and
 * the simulated cloud (docs/prt-protocol.md). Pure encodings and crypto over node:crypto; it
 * imports neither side. Untrusted input that fails validation throws ProtocolError (coded);
 * caller bugs throw TypeError/RangeError.
 */
export {
  type Base64UrlOptions,
  fromBase64,
  fromBase64Url,
  toBase64,
  toBase64Url,
} from './base64.ts';
export {
  BCRYPT_RSAPUBLIC_MAGIC,
  encodeRsaBlob,
  type ParsedRsaBlob,
  parseRsaBlob,
  parseRsaBlobBase64,
} from './bcrypt-rsa-blob.ts';
export { CTX_BYTES, newCtx } from './ctx.ts';
export {
  asciiExtensionValue,
  CERT_JOIN_TYPE,
  CSR_NONCE_OID,
  CSR_SUBJECT_CN,
  DEVICE_CERT_ISSUER_CN,
  DEVICE_CERT_OID,
  DRS_JOIN_TYPE,
  guidExtensionValue,
  guidFromBytes,
  guidToBytes,
  readAsciiExtensionValue,
  readGuidExtensionValue,
} from './device-certificate.ts';
export { isProtocolError, ProtocolError, type ProtocolErrorCode } from './errors.ts';
export { type JsonObject, parseJsonObject } from './json.ts';
export {
  type JwsPayload,
  type ParseCompactOptions,
  type ParsedJws,
  parseCompact,
  signHs256,
  signRs256,
  signRs256With,
  verifyHs256,
  verifyRs256,
  x5cOf,
} from './jws.ts';
export {
  BOUND_RT_DECRYPT_LABEL,
  BOUND_RT_SIGN_LABEL,
  DERIVED_KEY_BYTES,
  deriveKeyV1,
  deriveKeyV2,
  KDF_LABEL,
  kdfV2Context,
  sp800108,
} from './kdf.ts';
export { SESSION_KEY_BYTES } from './key-checks.ts';
export * from './limits.ts';
export {
  type DecryptedResponse,
  type DecryptResponseOptions,
  decryptResponse,
  decryptResponseWith,
  type EncryptResponseOptions,
  encryptResponse,
  type ParsedResponseJwe,
  parseResponseJwe,
  type ResponseEncoding,
} from './response-jwe.ts';
export {
  type KdfVersion,
  type SessionJwtKdf,
  type SessionJwtOptions,
  sessionJwtKdf,
  signWithSessionKey,
  signWithSessionKeyDerive,
  verifyWithSessionKey,
} from './session-jwt.ts';
export {
  type BuildSessionKeyJweOptions,
  buildSessionKeyJwe,
  openSessionKeyJwePayload,
  type ParsedSessionKeyJwe,
  parseSessionKeyJwe,
  SESSION_KEY_JWE_HEADER,
  SESSION_KEY_JWE_PAYLOAD,
  type UnwrapOptions,
  unwrapSessionKeyJwe,
  unwrapSessionKeyJweWith,
} from './session-key-jwe.ts';
export * from './well-known.ts';
