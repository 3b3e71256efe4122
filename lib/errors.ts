/**
 * Every error prtlab throws on purpose carries a stable `code`. Callers and tests switch on the
 * code, never on message text. Each area has one base class (TpmError, StateError, ...) that
 * extends PrtlabError; the union below is the single list of codes, documented in README.md.
 *
 * Caller bugs (wrong argument types, impossible options) throw plain TypeError/RangeError.
 * Untrusted input that fails validation throws a coded error.
 */
export type ErrorCode =
  // A TPM answered with a response code other than TPM_RC_SUCCESS (see TpmResponseError.rc).
  | 'ERR_TPM_RESPONSE'
  // A response from a TPM could not be parsed or failed a check (size, tag, response HMAC).
  | 'ERR_TPM_BAD_RESPONSE'
  // The transport to a TPM failed: connect, write, read, framing.
  | 'ERR_TPM_TRANSPORT'
  // Sealed TPM state: unreadable, tampered, truncated, wrong key, unknown version.
  | 'ERR_STATE_CORRUPT'
  | 'ERR_STATE_IO'
  // Another live process holds the lock on a TPM state directory.
  | 'ERR_STATE_IN_USE'
  // TPM state was sealed under a different key-source kind than the one requested.
  | 'ERR_STATE_KEY_SOURCE_MISMATCH'
  // A TPM state directory is not ours alone: wrong owner, group/other access, or not a directory.
  | 'ERR_STATE_DIR_INSECURE'
  // The key that seals TPM state: keystore locked, missing, unreachable; key file with bad mode.
  | 'ERR_KEYSTORE_UNAVAILABLE'
  | 'ERR_KEYSTORE_LOCKED'
  | 'ERR_KEY_MISSING'
  | 'ERR_KEY_FILE'
  // A keystore holds an item for the sealing key, but it is not a valid key (encoding or size).
  | 'ERR_KEY_INVALID'
  // The TPM server refused its options (non-loopback address without --allow-remote, bad port).
  | 'ERR_SERVER_CONFIG'
  // The command line was wrong.
  | 'ERR_USAGE'
  // A PRT-protocol token or blob does not parse: part count, base64, JSON, field types, sizes.
  | 'ERR_PROTOCOL_MALFORMED'
  // A PRT-protocol token or blob is larger than its named cap (protocol/limits.ts).
  | 'ERR_PROTOCOL_TOO_LARGE'
  // A well-formed PRT-protocol token names an algorithm, encoding or KDF version we do not accept.
  | 'ERR_PROTOCOL_UNSUPPORTED'
  // A JWS signature (HS256 under a session-derived key, or RS256) did not verify.
  | 'ERR_PROTOCOL_SIGNATURE'
  // A JWE did not decrypt: RSA-OAEP unwrap, GCM tag or CBC padding failed (one generic message).
  | 'ERR_PROTOCOL_DECRYPT'
  // The cloud refused a request: an Entra-shaped error with an OAuth `error`, HTTP status and
  // AADSTS number (CloudError.aadsts): malformed input, unknown tenant, bad credentials, ...
  | 'ERR_CLOUD_REQUEST'
  // The cloud refused its options: a non-loopback address without allowRemote, a bad port.
  | 'ERR_CLOUD_CONFIG'
  // The cloud's files in the data directory: wrong owner or mode, a symlink, a malformed key or
  // certificate, an incomplete CA directory, or a read/write failure.
  | 'ERR_CLOUD_STATE'
  // An unexpected failure while the cloud served a request; answered as a generic AADSTS50000.
  | 'ERR_CLOUD_INTERNAL'
  // The directory refused an administrative change (duplicate UPN or name; unknown user, group,
  // role or device; invalid attribute) or its database cannot be used (newer schema, corrupt).
  | 'ERR_DIRECTORY'
  // A Graph query option was refused: malformed or unsupported $filter (message names the 1-based
  // position), $orderby or $top out of range, or a forged/malformed $skiptoken. Answered as 400.
  | 'ERR_GRAPH_FILTER'
  // A Conditional Access policy (Graph conditionalAccessPolicy JSON) failed validation, or names
  // a control the simulator does not evaluate; the message starts with the JSON path.
  | 'ERR_CA_POLICY'
  // A Conditional Access device-filter rule does not tokenize or parse (the message names the
  // 0-based character position), or exceeds the length or nesting bounds.
  | 'ERR_CA_FILTER'
  // The device agent: an unknown or already existing device name, a bad --tpm spec, a device
  // directory that is missing, corrupt or insecure, or a step of registration or sign-in that
  // failed on the device's side (the TPM's own failures stay ERR_TPM_*).
  | 'ERR_AGENT_DEVICE'
  // The device agent holds no usable PRT for the account (never signed in, expired, revoked).
  | 'ERR_AGENT_NO_PRT'
  // The cloud refused a device request; `refusal` carries error, AADSTS number, correlation id.
  | 'ERR_AGENT_CLOUD'
  // The broker: bad options, a broker.json that is missing or insecure, a sealed cache that does
  // not open; and the client side's failures to reach or authenticate to a broker.
  | 'ERR_BROKER'
  // A JSON-RPC error answered by the broker (client side; `rpcCode` and `data` attached).
  | 'ERR_BROKER_RPC'
  // A client profile name or version that does not exist, or a client run that failed.
  | 'ERR_CLIENT'
  // The attack harness: a malformed scenario file, an unknown scenario id, a bad option.
  | 'ERR_ATTACK';

export class PrtlabError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export function isPrtlabError(err: unknown, code?: ErrorCode): err is PrtlabError {
  return err instanceof PrtlabError && (code === undefined || err.code === code);
}
