/**
 * Driving the engine with real command bytes: a command is built from the command table, run
 * through Tpm.execute and its response parsed, so each test sees exactly what a TPM client would.
 */
import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { _dispatchInternals } from '../../tpm-sim/engine/dispatch.ts';
import { handleName, makeObject } from '../../tpm-sim/engine/objects.ts';
import { Tpm, type TpmOptions } from '../../tpm-sim/engine/tpm.ts';
import { type Codec, marshal, unmarshal } from '../../tpm-sim/wire/codec.ts';
import {
  COMMANDS,
  type CommandName,
  type ParamsOf,
  type ResponseOf,
} from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_RH } from '../../tpm-sim/wire/constants.ts';
import { type AuthCommand, buildCommand, readResponse } from '../../tpm-sim/wire/frame.ts';
import type { Public, Sensitive } from '../../tpm-sim/wire/structures.ts';

const EMPTY = Buffer.alloc(0);

/** A TPM that is powered on (and, unless the options say otherwise, started). */
export async function newTpm(options: TpmOptions = {}): Promise<Tpm> {
  const tpm = new Tpm(options);
  await tpm.powerOn();
  return tpm;
}

export interface EngineResult<N extends CommandName> {
  rc: number;
  /** The response handles; empty when rc is not 0. */
  handles: number[];
  /** The response parameters; undefined when rc is not 0. */
  out: ResponseOf<N>;
}

/** A password session (TPM_RS_PW) that carries `password` as its HMAC. */
function passwordSession(password: Buffer): AuthCommand {
  return { sessionHandle: TPM_RH.PW, nonce: EMPTY, attributes: 1, hmac: password };
}

/**
 * A command to send: `name` with its handles and parameters, and one password session per entry
 * of `passwords`; by default one with the empty password for each handle of the command that
 * needs authorization. `[]` sends no session at all. `locality` is the locality it arrives at
 * (0 by default).
 */
type CommandArgs<N extends CommandName> = [
  tpm: Tpm,
  name: N,
  handles: number[],
  params: ParamsOf<N>,
  passwords?: readonly Buffer[],
  locality?: number,
];

/** Sends a command through the engine and parses the response. */
export async function run<N extends CommandName>(
  ...[tpm, name, handles, params, passwords, locality]: CommandArgs<N>
): Promise<EngineResult<N>> {
  const spec = COMMANDS[name];
  const authCount = spec.handles.filter((h) => h.auth !== undefined).length;
  const sessions = (passwords ?? new Array<Buffer>(authCount).fill(EMPTY)).map(passwordSession);
  const cmd = buildCommand(
    spec.cc,
    handles,
    sessions,
    marshal(spec.params as Codec<ParamsOf<N>>, params),
  );
  _dispatchInternals.lastInternalError = undefined;
  const frame = readResponse(
    await tpm.execute(cmd, locality ?? 0),
    spec.responseHandles.length,
    sessions.length,
  );
  if (frame.rc !== 0) return { rc: frame.rc, handles: [], out: undefined as never };
  return {
    rc: 0,
    handles: frame.handles,
    out: unmarshal(spec.response as Codec<ResponseOf<N>>, frame.params),
  };
}

/** An error response must carry a TPM response code, never stand for an exception in the engine. */
function expectNoInternalError(r: { rc: number }): void {
  if (r.rc !== 0) expect(_dispatchInternals.lastInternalError).toBeUndefined();
}

/** Like run, and the command must succeed. */
export async function ok<N extends CommandName>(...args: CommandArgs<N>): Promise<EngineResult<N>> {
  const r = await run(...args);
  expectNoInternalError(r);
  expect(r.rc.toString(16)).toBe('0');
  return r;
}

/** Like run, and returns only the response code. */
export async function rcOf<N extends CommandName>(...args: CommandArgs<N>): Promise<number> {
  const r = await run(...args);
  expectNoInternalError(r);
  return r.rc;
}

/**
 * Loads an object straight into a transient slot, as TPM2_Load would after unwrapping it: a
 * public-only object when `sensitive` is undefined. Its parent is `hierarchy`.
 */
export function loadObject(
  tpm: Tpm,
  publicArea: Public,
  sensitive: Sensitive | undefined,
  hierarchy: number = TPM_RH.OWNER,
): number {
  return tpm.loadTransient(
    makeObject({
      publicArea,
      hierarchy,
      parentQn: handleName(hierarchy),
      ...(sensitive ? { sensitive } : {}),
    }),
  );
}

/**
 * Loads a keyedHash object that holds `key` with an empty seedValue, so its unique is
 * SHA-256(key): `publicArea` gives its attributes and scheme, `authValue` its password.
 */
export function loadKeyedHash(
  tpm: Tpm,
  publicArea: Public,
  key: Buffer,
  authValue: Buffer,
): number {
  return loadObject(
    tpm,
    { ...publicArea, unique: createHash('sha256').update(key).digest() },
    { sensitiveType: TPM_ALG.KEYEDHASH, authValue, seedValue: EMPTY, sensitive: key },
  );
}
