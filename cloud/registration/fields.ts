/**
 * Strict readers for the DRS JSON bodies (docs/prt-protocol.md §2). Every field is checked for
 * type and size before anything is decoded, unknown members are refused, and each class of
 * failure has its own AADSTS number so a client (or a test) can tell them apart:
 *
 *   missing required member  -> AADSTS90014
 *   wrong type, size, value, or an unknown member -> AADSTS9990205
 *   not canonical base64     -> AADSTS9990201
 *
 * Descriptions name the member (a fixed, known name) but never echo its value: registration
 * bodies carry keys and signatures.
 */
import { fromBase64 } from '../../protocol/index.ts';
import { CloudRequestError, echo } from '../errors.ts';

export type JsonObject = Record<string, unknown>;

/** A member that is present but has the wrong type, size or value. */
export function badField(description: string, detail?: string): CloudRequestError {
  return new CloudRequestError(9990205, { description, ...(detail ? { detail } : {}) });
}

function missing(path: string): CloudRequestError {
  return new CloudRequestError(90014, {
    description: `The request body must contain '${path}'.`,
  });
}

/** A JSON object (not an array or null); `path` names it in errors. */
export function asObject(value: unknown, path: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badField(`'${path}' must be a JSON object.`);
  }
  return value as JsonObject;
}

/** Refuses members outside `allowed` (strict bodies: a typo is an error, not a silent default). */
export function onlyKeys(obj: JsonObject, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw badField(
        `'${path}' has a member '${echo(key)}' this service does not accept (expected: ${allowed.join(', ')}).`,
      );
    }
  }
}

export function required(obj: JsonObject, key: string, path: string): unknown {
  const value = obj[key];
  if (value === undefined || value === null) throw missing(path);
  return value;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A text member: a string of 1..max characters after trimming, without control characters (the
 * directory stores these and the CLI prints them).
 */
export function text(value: unknown, path: string, max: number): string {
  if (typeof value !== 'string') throw badField(`'${path}' must be a string.`);
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > max || CONTROL.test(trimmed)) {
    throw badField(`'${path}' must be 1 to ${max} characters without control characters.`);
  }
  return trimmed;
}

/** Longest base64 text of `maxBytes` bytes. */
export function base64Length(maxBytes: number): number {
  return Math.ceil(maxBytes / 3) * 4;
}

/**
 * A standard-base64 member (§1.3, §1.4: `Data`, `TransportKey`, `SignedBlob` are padded base64).
 * The length is capped before decoding; the decoder accepts exactly one spelling per byte string.
 */
export function base64(value: unknown, path: string, maxBytes: number): Buffer {
  if (typeof value !== 'string') throw badField(`'${path}' must be a base64 string.`);
  const max = base64Length(maxBytes);
  if (value.length > max) throw badField(`'${path}' is longer than ${max} characters.`);
  if (value.length === 0) throw badField(`'${path}' must not be empty.`);
  try {
    return fromBase64(value, path);
  } catch (err) {
    throw new CloudRequestError(9990201, {
      description: `'${path}' is not valid base64 (standard alphabet, with padding).`,
      cause: err,
    });
  }
}

/**
 * A DRS attribute flag. The tools send the strings "true"/"false" [RT-dev][AADI-PRTU]; [HB-spec]
 * writes booleans. Both are read; anything else is refused.
 */
export function flag(value: unknown, path: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
  }
  throw badField(`'${path}' must be true or false.`);
}

/**
 * One of two spellings of a member. Windows and ROADtools send `attributes`, [HB-spec] documents
 * `Attributes`; a body with both is ambiguous and refused.
 */
export function eitherKey(obj: JsonObject, a: string, b: string): unknown {
  if (obj[a] !== undefined && obj[b] !== undefined) {
    throw badField(`The request body has both '${a}' and '${b}'; send one.`);
  }
  return obj[a] ?? obj[b];
}
