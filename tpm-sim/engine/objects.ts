/**
 * Loaded objects and their Names (Part 1 §16; Part 2 §12.2.4). An object's public area is kept
 * both decoded and as the exact bytes its Name was computed over: ESAPI recomputes Names from
 * returned public areas and rejects a mismatch, so both must come from one marshalling.
 */
import type { KeyObject } from 'node:crypto';
import { digest } from '../crypto/hash.ts';
import { marshal } from '../wire/codec.ts';
import { TPM_ALG, TPMA_OBJECT } from '../wire/constants.ts';
import { TPM_RC } from '../wire/rc.ts';
import { type Public, type Sensitive, TPMT_PUBLIC } from '../wire/structures.ts';
import { RcError } from './rc-error.ts';

/** node:crypto keys built from an object's key material, kept with the object (key-cache.ts). */
export interface KeyCache {
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  /** The ECC scalar, set once it was checked against the public point. */
  d?: bigint;
}

export interface TpmObject {
  readonly publicArea: Public;
  /** marshal(TPMT_PUBLIC) exactly as its Name was computed. */
  readonly publicBytes: Buffer;
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
  /** The hierarchy the object belongs to (TPM_RH_OWNER, _ENDORSEMENT, _PLATFORM or _NULL). */
  readonly hierarchy: number;
  /** Absent for a public-only object (LoadExternal without a private part). */
  readonly sensitive?: Sensitive;
  /** Cached crypto keys, built on first use or handed over at creation (never exported). */
  keys?: KeyCache;
}

/** nameAlg || H_nameAlg(parts...), the form of Names and qualified Names; empty for NULL. */
function algDigest(nameAlg: number, ...parts: Uint8Array[]): Buffer {
  if (nameAlg === TPM_ALG.NULL) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(nameAlg, 0);
  return Buffer.concat([out, digest(nameAlg, ...parts)]);
}

/** Name = nameAlg || H_nameAlg(TPMT_PUBLIC) (Part 1 §16, Table 3); empty when nameAlg is NULL. */
export function objectName(nameAlg: number, publicBytes: Uint8Array): Buffer {
  return algDigest(nameAlg, publicBytes);
}

/** Qualified Name: QN(child) = nameAlg || H(QN(parent) || Name(child)) (Part 1 §16). */
export function qualifiedName(nameAlg: number, parentQn: Uint8Array, name: Uint8Array): Buffer {
  return algDigest(nameAlg, parentQn, name);
}

/** A public area's marshalled bytes and the Name computed over exactly those bytes. */
export interface PublicName {
  readonly publicBytes: Buffer;
  readonly name: Buffer;
}

/** marshal(TPMT_PUBLIC) and the Name over it (Part 1 §16). */
export function publicName(publicArea: Public): PublicName {
  const publicBytes = marshal(TPMT_PUBLIC, publicArea);
  return { publicBytes, name: objectName(publicArea.nameAlg, publicBytes) };
}

/** The 4-byte handle is the Name of a permanent entity (Part 1 §16). */
export function handleName(handle: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(handle >>> 0, 0);
  return b;
}

/**
 * A loaded object. `named` is publicName(publicArea) when the caller already computed it (Load
 * needs the Name before it has the sensitive area); `keys` are KeyObjects the caller already
 * holds for exactly this key material, so key-cache.ts need not rebuild them.
 */
export function makeObject(args: {
  publicArea: Public;
  sensitive?: Sensitive;
  hierarchy: number;
  parentQn: Uint8Array;
  named?: PublicName;
  keys?: KeyCache;
}): TpmObject {
  const { publicBytes, name } = args.named ?? publicName(args.publicArea);
  return {
    publicArea: args.publicArea,
    publicBytes,
    name,
    qualifiedName: qualifiedName(args.publicArea.nameAlg, args.parentQn, name),
    hierarchy: args.hierarchy,
    ...(args.sensitive ? { sensitive: args.sensitive } : {}),
    ...(args.keys ? { keys: args.keys } : {}),
  };
}

/**
 * The sensitive area of an object a command uses under its authValue. A public-only object
 * (LoadExternal) has no authValue to authorize with: TPM_RC_AUTH_UNAVAILABLE, as the reference's
 * IsAuthValueAvailable answers.
 */
export function sensitiveForAuth(obj: TpmObject): Sensitive {
  if (obj.sensitive === undefined) throw new RcError(TPM_RC.AUTH_UNAVAILABLE);
  return obj.sensitive;
}

export function has(attrs: number, bit: number): boolean {
  return (attrs & bit) !== 0;
}

/** A storage parent: restricted decrypt, not sign (Part 1 §25.1). */
export function isStorageParent(pub: Public): boolean {
  const a = pub.objectAttributes;
  return (
    has(a, TPMA_OBJECT.restricted) &&
    has(a, TPMA_OBJECT.decrypt) &&
    !has(a, TPMA_OBJECT.sign) &&
    (pub.type === TPM_ALG.RSA || pub.type === TPM_ALG.ECC || pub.type === TPM_ALG.SYMCIPHER)
  );
}
