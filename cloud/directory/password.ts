/**
 * Password hashing with scrypt (node:crypto). Each hash carries its own salt and parameters in a
 * PHC-style string, `$scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`, so parameters can be raised
 * later without invalidating stored hashes. Verification recomputes and compares in constant time.
 * The password itself is never stored, logged or put into an error.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/**
 * N = 2^15, r = 8, p = 1: 32 MiB and tens of milliseconds per hash. OWASP's floor is N = 2^17;
 * the lab trades some cost for fast tests, and since every hash records its parameters, raising
 * them later needs no migration.
 */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ ln: 15, r: 8, p: 1 });

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Limits on parameters read back from storage, so a tampered row cannot exhaust memory. */
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;
/** Entra's password length rule. */
export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

const PHC =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(
  password: string,
  salt: Buffer,
  params: ScryptParams,
  length: number,
): Promise<Buffer> {
  const N = 2 ** params.ln;
  // scrypt needs 128 * N * r bytes; allow that plus headroom instead of Node's 32 MiB default.
  const maxmem = 128 * N * params.r * 2 + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      salt,
      length,
      { N, r: params.r, p: params.p, maxmem },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, params, HASH_BYTES);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * True if `password` matches `stored`. A malformed stored hash verifies nothing (false) rather
 * than throwing, so a damaged row fails closed.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (typeof password !== 'string' || typeof stored !== 'string') return false;
  const m = PHC.exec(stored);
  if (!m) return false;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  try {
    checkParams(params);
  } catch {
    return false;
  }
  const salt = Buffer.from(m[4]!, 'base64');
  const expected = Buffer.from(m[5]!, 'base64');
  if (salt.length < SALT_BYTES || expected.length < 16) return false;
  // Over-long input is hashed anyway (capped) so its answer takes as long as any other.
  const candidate =
    password.length > MAX_PASSWORD_LENGTH ? password.slice(0, MAX_PASSWORD_LENGTH) : password;
  const actual = await derive(candidate, salt, params, expected.length);
  return timingSafeEqual(actual, expected) && password.length <= MAX_PASSWORD_LENGTH;
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the time of one verification and returns false: used for unknown users so that a wrong
 * UPN and a wrong password cost the same.
 */
export async function verifyAgainstNothing(password: string): Promise<false> {
  dummyHash ??= hashPassword('prtlab-no-such-user');
  await verifyPassword(password, await dummyHash);
  return false;
}

function checkParams(params: ScryptParams): void {
  const { ln, r, p } = params;
  if (!Number.isInteger(ln) || ln < 10 || ln > MAX_LN)
    throw new RangeError('scrypt ln out of range');
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) throw new RangeError('scrypt r out of range');
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) throw new RangeError('scrypt p out of range');
}
