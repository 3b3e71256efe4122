/**
 * Client-side authorizations: a password (TPM_RS_PW, Part 1 §19.4), an HMAC session (Part 1
 * §19.6) or a policy session (Part 1 §19.7) that signs each command, checks each response and
 * rolls its nonces.
 */
import { randomBytes } from 'node:crypto';
import { sessionHmac, trim0 } from '../crypto/auth-hmac.ts';
import { hashInfo, timingSafeEqualBytes } from '../crypto/hash.ts';
import { TPM_RH, TPMA_SESSION } from '../wire/constants.ts';
import type { AuthCommand, AuthResponse } from '../wire/frame.ts';

/** What an authorization needs to know about the entity it authorizes. */
export interface AuthTarget {
  readonly name: Buffer;
  readonly authValue: Buffer;
}

export interface Authorization {
  /** Builds the command's auth entry; `cp` is computed lazily (only HMAC sessions need it). */
  command(cp: (alg: number) => Buffer, target: AuthTarget | undefined): AuthCommand;
  /** Checks the response's auth entry; false when it does not verify. */
  response(
    rp: (alg: number) => Buffer,
    auth: AuthResponse,
    target: AuthTarget | undefined,
  ): boolean;
}

const EMPTY = Buffer.alloc(0);

/** A password session: the authValue in clear (Part 1 §19.4). Use only over a trusted channel. */
export function passwordAuth(): Authorization {
  return {
    command: (_cp, target) => ({
      sessionHandle: TPM_RH.PW,
      nonce: EMPTY,
      attributes: TPMA_SESSION.continueSession,
      hmac: target?.authValue ?? EMPTY,
    }),
    response: (_rp, auth) => auth.nonce.length === 0 && auth.hmac.length === 0,
  };
}

/**
 * An unbound, unsalted HMAC session started with TPM2_StartAuthSession. The session key is
 * empty, so the HMAC key is the entity's authValue (Part 1 §19.6.8).
 */
export class HmacSession implements Authorization {
  readonly handle: number;
  readonly authHash: number;
  private nonceTPM: Buffer;
  private nonceCaller: Buffer = EMPTY;
  private readonly sessionKey: Buffer;
  /** Keep the session after each command (continueSession). */
  continueSession = true;

  constructor(args: { handle: number; authHash: number; nonceTPM: Buffer; sessionKey?: Buffer }) {
    this.handle = args.handle;
    this.authHash = args.authHash;
    this.nonceTPM = args.nonceTPM;
    this.sessionKey = args.sessionKey ?? EMPTY;
  }

  /** The TPM's latest nonce for this session (TPM2_PolicySecret can bind to it). */
  get currentNonceTPM(): Buffer {
    return this.nonceTPM;
  }

  protected key(target: AuthTarget | undefined): Buffer {
    const auth = target ? trim0(target.authValue) : EMPTY;
    return auth.length ? Buffer.concat([this.sessionKey, auth]) : this.sessionKey;
  }

  private attributes(): number {
    return this.continueSession ? TPMA_SESSION.continueSession : 0;
  }

  command(cp: (alg: number) => Buffer, target: AuthTarget | undefined): AuthCommand {
    const size = hashInfo(this.authHash)!.digestSize;
    this.nonceCaller = randomBytes(size);
    const attributes = this.attributes();
    const hmac = sessionHmac(
      this.authHash,
      this.key(target),
      cp(this.authHash),
      this.nonceCaller,
      this.nonceTPM,
      [],
      attributes,
    );
    return { sessionHandle: this.handle, nonce: this.nonceCaller, attributes, hmac };
  }

  response(
    rp: (alg: number) => Buffer,
    auth: AuthResponse,
    target: AuthTarget | undefined,
  ): boolean {
    const expected = sessionHmac(
      this.authHash,
      this.key(target),
      rp(this.authHash),
      auth.nonce,
      this.nonceCaller,
      [],
      auth.attributes,
    );
    if (!timingSafeEqualBytes(expected, auth.hmac)) return false;
    this.nonceTPM = auth.nonce;
    return true;
  }
}

/**
 * A policy session (TPM_SE_POLICY, or TPM_SE_TRIAL with `trial`) started with
 * TPM2_StartAuthSession. Policy commands (TpmClient.policySecret, ...) build up its digest; used
 * as an authorization it satisfies an entity whose authPolicy equals that digest. Its HMAC key
 * is the session key alone (Part 1 §19.7: the authValue joins only after TPM2_PolicyAuthValue),
 * which for an unbound, unsalted session is empty. After each command it authorizes, the TPM
 * resets the policy: satisfy it again before the next one.
 */
export class PolicySession extends HmacSession {
  readonly trial: boolean;

  constructor(args: {
    handle: number;
    authHash: number;
    nonceTPM: Buffer;
    sessionKey?: Buffer;
    trial?: boolean;
  }) {
    super(args);
    this.trial = args.trial ?? false;
  }

  protected override key(_target: AuthTarget | undefined): Buffer {
    return super.key(undefined);
  }
}
