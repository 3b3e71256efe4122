import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStateError, StateError } from '../../tpm-sim/state/errors.ts';
import { KEY_SOURCE_KINDS, type KeySourceKind } from '../../tpm-sim/state/key-source.ts';
import {
  MAX_SEALED_FILE_BYTES,
  MAX_STATE_BYTES,
  parseSealedHeader,
  readSealed,
  SEALED_FORMAT_VERSION,
  SEALED_HEADER_BYTES,
  SEALED_OVERHEAD_BYTES,
  sealingKeyId,
  sealState,
  unsealState,
  writeSealed,
} from '../../tpm-sim/state/sealed-file.ts';

const key = new Uint8Array(randomBytes(32));
const otherKey = new Uint8Array(randomBytes(32));
// Recognisable plaintext, so a test can check it never shows up in a message.
const state = new TextEncoder().encode('SEEDS-AND-NV-PLAINTEXT-0123456789abcdef');

/** Runs `fn`, which must throw a StateError; returns it. */
function caught(fn: () => unknown): StateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StateError) return err;
    throw new Error(`expected a StateError, got ${String(err)}`);
  }
  throw new Error('expected a StateError, but nothing was thrown');
}

/** A message must name neither key nor any part of the plaintext. */
function expectNoSecrets(err: StateError): void {
  const text = `${err.message} ${String(err.cause ?? '')}`;
  for (const k of [key, otherKey]) {
    expect(text).not.toContain(Buffer.from(k).toString('hex'));
    expect(text).not.toContain(Buffer.from(k).toString('base64'));
  }
  expect(text).not.toContain('SEEDS');
}

describe('sealState / unsealState', () => {
  it('round-trips state for each key-source kind, including empty state', () => {
    for (const kind of KEY_SOURCE_KINDS) {
      for (const s of [state, new Uint8Array(0), new Uint8Array(randomBytes(100_000))]) {
        expect(unsealState(sealState(s, key, kind), key, kind)).toEqual(s);
      }
    }
  });

  it('writes the documented header and hides the plaintext', () => {
    const sealed = sealState(state, key, 'secret-service');
    expect(sealed.length).toBe(state.length + SEALED_OVERHEAD_BYTES);
    expect(Buffer.from(sealed.subarray(0, 8)).toString('latin1')).toBe('PRTLTPMS');
    expect(parseSealedHeader(sealed)).toEqual({
      version: SEALED_FORMAT_VERSION,
      kind: 'secret-service',
      keyId: sealingKeyId(key),
      ciphertextLength: state.length,
    });
    expect(Buffer.from(sealed).includes(Buffer.from(state))).toBe(false);
  });

  it('uses a fresh nonce for every seal', () => {
    const a = sealState(state, key, 'key-file');
    const b = sealState(state, key, 'key-file');
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('refuses a change to any single byte with ERR_STATE_CORRUPT', () => {
    const sealed = sealState(state, key, 'key-file');
    for (let i = 0; i < sealed.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Uint8Array.from(sealed);
        bad[i]! ^= mask;
        const err = caught(() => unsealState(bad, key, 'key-file'));
        expect(err.code, `byte ${i} ^ ${mask}`).toBe('ERR_STATE_CORRUPT');
        expectNoSecrets(err);
      }
    }
  });

  it('refuses every truncation and any trailing data with ERR_STATE_CORRUPT', () => {
    const sealed = sealState(state, key, 'key-file');
    for (let len = 0; len < sealed.length; len++) {
      const err = caught(() => unsealState(sealed.subarray(0, len), key, 'key-file'));
      expect(err.code, `length ${len}`).toBe('ERR_STATE_CORRUPT');
    }
    const err = caught(() =>
      unsealState(sealed.subarray(0, SEALED_HEADER_BYTES + 3), key, 'key-file'),
    );
    expect(err.message).toMatch(/truncated/);
    const longer = new Uint8Array(sealed.length + 1);
    longer.set(sealed);
    expect(caught(() => unsealState(longer, key, 'key-file')).code).toBe('ERR_STATE_CORRUPT');
  });

  it('says "different key" for a wrong key, without revealing either key', () => {
    const err = caught(() => unsealState(sealState(state, key, 'key-file'), otherKey, 'key-file'));
    expect(err.code).toBe('ERR_STATE_CORRUPT');
    expect(err.message).toMatch(/different key/);
    expect(err.message).toContain(sealingKeyId(key));
    expectNoSecrets(err);
  });

  it('names bad magic and unknown versions', () => {
    const sealed = sealState(state, key, 'key-file');
    const badMagic = Uint8Array.from(sealed);
    badMagic[0] = 0x58;
    expect(caught(() => unsealState(badMagic, key, 'key-file')).message).toMatch(/bad magic/);
    const v2 = Uint8Array.from(sealed);
    v2[8] = 2;
    const err = caught(() => unsealState(v2, key, 'key-file'));
    expect(err.code).toBe('ERR_STATE_CORRUPT');
    expect(err.message).toMatch(/format version 2/);
  });

  it('reports an intact file sealed under another kind as a key-source mismatch', () => {
    const err = caught(() => unsealState(sealState(state, key, 'secret-service'), key, 'key-file'));
    expect(err.code).toBe('ERR_STATE_KEY_SOURCE_MISMATCH');
    expect(err.message).toContain("'secret-service'");
    expect(err.message).toContain("'key-file'");
  });

  it('bounds sizes', () => {
    expect(() => sealState(new Uint8Array(MAX_STATE_BYTES + 1), key, 'key-file')).toThrow(
      RangeError,
    );
    const huge = new Uint8Array(MAX_SEALED_FILE_BYTES + 1);
    huge.set(sealState(state, key, 'key-file'));
    const err = caught(() => unsealState(huge, key, 'key-file'));
    expect(err.code).toBe('ERR_STATE_CORRUPT');
    expect(err.message).toMatch(/cap/);
  });

  it('treats wrong argument types as caller bugs (TypeError)', () => {
    expect(() => sealState(state, new Uint8Array(16), 'key-file')).toThrow(TypeError);
    expect(() => sealState(state, key, 'tpm' as KeySourceKind)).toThrow(TypeError);
    expect(() => unsealState(state, key.subarray(1), 'key-file')).toThrow(TypeError);
    expect(() => sealState('x' as unknown as Uint8Array, key, 'key-file')).toThrow(TypeError);
  });
});

type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'overwrite'; at: number; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    op: fc.constant('flip' as const),
    at: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    op: fc.constant('delete' as const),
    at: fc.nat(),
    count: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    op: fc.constant('overwrite' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
);

function mutate(input: Uint8Array, m: Mutation): Uint8Array {
  const b = Buffer.from(input);
  const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0));
  switch (m.op) {
    case 'flip': {
      if (b.length === 0) return b;
      const out = Buffer.from(b);
      out[at]! ^= m.mask;
      return out;
    }
    case 'truncate':
      return b.subarray(0, at);
    case 'insert':
      return Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    case 'delete':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
    case 'overwrite': {
      const out = Buffer.from(b);
      out.set(m.bytes.subarray(0, Math.max(0, out.length - at)), at);
      return out;
    }
  }
}

describe('property: mutated sealed files never unseal', () => {
  it('every mutation gives ERR_STATE_CORRUPT and no plaintext', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.constantFrom(...KEY_SOURCE_KINDS),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (plain, kind, mutations) => {
          const sealed = sealState(plain, key, kind);
          const bad = mutations.reduce(mutate, sealed);
          fc.pre(!Buffer.from(bad).equals(Buffer.from(sealed)));
          let result: unknown;
          try {
            result = unsealState(bad, key, kind);
          } catch (err) {
            expect(isStateError(err, 'ERR_STATE_CORRUPT')).toBe(true);
            return;
          }
          throw new Error(`a mutated file unsealed to ${String(result)}`);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('readSealed / writeSealed', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'prtlab-sealed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a 0600 file and reads it back; a missing file reads as undefined', async () => {
    const path = join(dir, 'state.sealed');
    expect(await readSealed(path, key, 'key-file')).toBeUndefined();
    await writeSealed(path, state, key, 'key-file');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readSealed(path, key, 'key-file')).toEqual(state);
  });

  it('refuses a file over the cap before reading it', async () => {
    const path = join(dir, 'big.sealed');
    await writeFile(path, '');
    await truncate(path, MAX_SEALED_FILE_BYTES + 1); // sparse: no 16 MiB actually written
    await expect(readSealed(path, key, 'key-file')).rejects.toMatchObject({
      code: 'ERR_STATE_CORRUPT',
      message: expect.stringMatching(/cap/),
    });
  });

  it('names the file in errors', async () => {
    const path = join(dir, 'state.sealed');
    await writeFile(path, 'not a sealed file');
    await expect(readSealed(path, key, 'key-file')).rejects.toMatchObject({
      code: 'ERR_STATE_CORRUPT',
      message: expect.stringContaining(path),
    });
  });
});
