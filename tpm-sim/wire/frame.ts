/**
 * Command and response framing (Part 1 §18, Part 3 §5.2-5.6): header, handle area, the
 * authorization area, and where the parameters start. The parameters themselves are left as
 * bytes: they are hashed as transmitted (cpHash) and may be encrypted.
 */
import { Reader, WireError, Writer } from './codec.ts';
import { MAX_COMMAND_SIZE, TPM_ST } from './constants.ts';
import { TPM_RC } from './rc.ts';

export interface AuthCommand {
  sessionHandle: number;
  nonce: Buffer;
  attributes: number;
  hmac: Buffer;
}

export interface AuthResponse {
  nonce: Buffer;
  attributes: number;
  hmac: Buffer;
}

export interface CommandFrame {
  tag: number;
  cc: number;
  handles: number[];
  sessions: AuthCommand[];
  /** The parameter area, as transmitted. */
  params: Uint8Array;
}

/** At most three sessions per command (Part 1 §19.6.1). */
export const MAX_SESSIONS = 3;

/** Every TPM_ST value (Part 2 §6.9): a tag outside this set is not even a TPM_ST. */
const KNOWN_TAGS = new Set<number>(Object.values(TPM_ST));

export class FrameError extends Error {
  readonly rc: number;
  constructor(rc: number, message: string) {
    super(message);
    this.rc = rc;
  }
}

/** Reads the 10-byte header. Throws FrameError with the response code the TPM must return. */
export function readHeader(bytes: Uint8Array): { tag: number; size: number; cc: number } {
  if (bytes.length < 10)
    throw new FrameError(TPM_RC.COMMAND_SIZE, 'command shorter than its header');
  const r = new Reader(bytes);
  const tag = r.u16();
  const size = r.u32();
  const cc = r.u32();
  if (tag !== TPM_ST.NO_SESSIONS && tag !== TPM_ST.SESSIONS) {
    // Part 3 §5.2; libtpms answers TPM_RC_VALUE for a tag that is no TPM_ST at all.
    throw new FrameError(KNOWN_TAGS.has(tag) ? TPM_RC.BAD_TAG : TPM_RC.VALUE, 'bad tag');
  }
  if (size !== bytes.length || size > MAX_COMMAND_SIZE) {
    throw new FrameError(TPM_RC.COMMAND_SIZE, 'commandSize does not match the bytes received');
  }
  return { tag, size, cc };
}

/** Splits a command after its header into handles, sessions and parameters (Part 3 §5.4-5.6). */
export function readFrame(bytes: Uint8Array, handleCount: number): CommandFrame {
  const { tag, cc } = readHeader(bytes);
  const r = new Reader(bytes, 10);
  const handles: number[] = [];
  try {
    for (let i = 0; i < handleCount; i++) handles.push(r.u32());
  } catch {
    throw new FrameError(TPM_RC.INSUFFICIENT, 'handle area truncated');
  }
  const sessions: AuthCommand[] = [];
  if (tag === TPM_ST.SESSIONS) {
    let authSize: number;
    try {
      authSize = r.u32();
    } catch {
      throw new FrameError(TPM_RC.AUTHSIZE, 'no authorizationSize');
    }
    // The smallest session is 9 bytes: handle, empty nonce, attributes, empty hmac.
    if (authSize < 9 || authSize > r.remaining)
      throw new FrameError(TPM_RC.AUTHSIZE, 'bad authorizationSize');
    const auth = r.sub(authSize);
    try {
      while (auth.remaining > 0) {
        if (sessions.length === MAX_SESSIONS)
          throw new FrameError(TPM_RC.AUTHSIZE, 'too many sessions');
        const sessionHandle = auth.u32();
        const nonceSize = auth.u16();
        if (nonceSize > 64) throw new FrameError(TPM_RC.AUTHSIZE, 'nonce too large');
        const nonce = auth.bytes(nonceSize);
        const attributes = auth.u8();
        const hmacSize = auth.u16();
        if (hmacSize > 64) throw new FrameError(TPM_RC.AUTHSIZE, 'hmac too large');
        sessions.push({ sessionHandle, nonce, attributes, hmac: auth.bytes(hmacSize) });
      }
    } catch (err) {
      if (err instanceof FrameError) throw err;
      if (err instanceof WireError) throw new FrameError(TPM_RC.AUTHSIZE, 'session area truncated');
      throw err;
    }
  }
  return { tag, cc, handles, sessions, params: r.rest() };
}

/** An error response: just the header, tag NO_SESSIONS (Part 3 §5.1). */
export function errorResponse(rc: number): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt16BE(TPM_ST.NO_SESSIONS, 0);
  b.writeUInt32BE(10, 2);
  b.writeUInt32BE(rc >>> 0, 6);
  return b;
}

/** A success response with its handles, parameters and (if the command had sessions) auths. */
export function successResponse(
  tag: number,
  handles: readonly number[],
  params: Uint8Array,
  auths: readonly AuthResponse[],
): Buffer {
  const w = new Writer(16 + handles.length * 4 + params.length + auths.length * 80);
  w.u16(tag).u32(0).u32(0);
  for (const h of handles) w.u32(h);
  if (tag === TPM_ST.SESSIONS) w.u32(params.length);
  w.bytes(params);
  if (tag === TPM_ST.SESSIONS) {
    for (const a of auths) {
      w.u16(a.nonce.length).bytes(a.nonce).u8(a.attributes).u16(a.hmac.length).bytes(a.hmac);
    }
  }
  w.patchU32(2, w.length);
  return w.finish();
}

/** Builds a command from its parts (used by the client). */
export function buildCommand(
  cc: number,
  handles: readonly number[],
  sessions: readonly AuthCommand[],
  params: Uint8Array,
): Buffer {
  const tag = sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
  const w = new Writer(16 + params.length + sessions.length * 80);
  w.u16(tag).u32(0).u32(cc);
  for (const h of handles) w.u32(h);
  if (sessions.length > 0) {
    const done = w.sizeU32();
    for (const s of sessions) {
      w.u32(s.sessionHandle)
        .u16(s.nonce.length)
        .bytes(s.nonce)
        .u8(s.attributes)
        .u16(s.hmac.length)
        .bytes(s.hmac);
    }
    done();
  }
  w.bytes(params);
  w.patchU32(2, w.length);
  return w.finish();
}

export interface ResponseFrame {
  tag: number;
  rc: number;
  handles: number[];
  params: Uint8Array;
  auths: AuthResponse[];
}

/** Splits a response (client side). Throws WireError on malformed bytes. */
export function readResponse(
  bytes: Uint8Array,
  handleCount: number,
  sessionCount: number,
): ResponseFrame {
  const r = new Reader(bytes);
  const tag = r.u16();
  const size = r.u32();
  const rc = r.u32();
  if (size !== bytes.length) throw new WireError(TPM_RC.SIZE, 'responseSize does not match');
  if (rc !== 0) {
    return { tag, rc, handles: [], params: new Uint8Array(0), auths: [] };
  }
  const handles: number[] = [];
  for (let i = 0; i < handleCount; i++) handles.push(r.u32());
  let params: Uint8Array;
  const auths: AuthResponse[] = [];
  if (tag === TPM_ST.SESSIONS) {
    const paramSize = r.u32();
    params = r.sub(paramSize).rest();
    for (let i = 0; i < sessionCount; i++) {
      const nonce = r.bytes(r.u16());
      const attributes = r.u8();
      const hmac = r.bytes(r.u16());
      auths.push({ nonce, attributes, hmac });
    }
    if (r.remaining !== 0) throw new WireError(TPM_RC.SIZE, 'trailing bytes after the auth area');
  } else if (tag === TPM_ST.NO_SESSIONS) {
    params = r.rest();
  } else {
    throw new WireError(TPM_RC.TAG, 'bad response tag');
  }
  return { tag, rc, handles, params, auths };
}
