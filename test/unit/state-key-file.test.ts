import { randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyFileSource } from '../../tpm-sim/state/key-file-source.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-keyfile-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeKey(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  await writeFile(path, bytes, { mode });
  await chmod(path, mode); // writeFile's mode is filtered by the umask
}

describe('KeyFileSource', () => {
  it('creates a 32-byte 0600 key only for new state, then keeps returning it', async () => {
    const path = join(dir, 'sub', 'tpm.key');
    const source = new KeyFileSource(path);
    expect(source.kind).toBe('key-file');
    const key = await source.getKey({ stateIsNew: true });
    expect(key).toHaveLength(32);
    const st = await stat(path);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBe(32);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    expect(new Uint8Array(await readFile(path))).toEqual(key);
    expect(await source.getKey({ stateIsNew: false })).toEqual(key);
    expect(await source.getKey({ stateIsNew: true })).toEqual(key);
    expect(await readdir(join(dir, 'sub'))).toEqual(['tpm.key']);
  });

  it('refuses to invent a key for existing state (ERR_KEY_MISSING) and creates nothing', async () => {
    const path = join(dir, 'tpm.key');
    await expect(new KeyFileSource(path).getKey({ stateIsNew: false })).rejects.toMatchObject({
      code: 'ERR_KEY_MISSING',
      message: expect.stringContaining(path),
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([0o644, 0o640, 0o604, 0o660, 0o601])('refuses a key file with mode %o', async (mode) => {
    const path = join(dir, 'tpm.key');
    await writeKey(path, randomBytes(32), mode);
    const err = await new KeyFileSource(path).getKey({ stateIsNew: false }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_KEY_FILE' });
    expect(err.message).toContain(`0${mode.toString(8)}`);
    expect(err.message).toContain(`chmod 600 ${path}`);
    // Refusing is not "missing": even for new state, a bad file is never replaced.
    await expect(new KeyFileSource(path).getKey({ stateIsNew: true })).rejects.toMatchObject({
      code: 'ERR_KEY_FILE',
    });
  });

  it.each([0, 16, 31, 33, 44])('refuses a %i-byte key file', async (size) => {
    const path = join(dir, 'tpm.key');
    await writeKey(path, randomBytes(size), 0o600);
    await expect(new KeyFileSource(path).getKey({ stateIsNew: true })).rejects.toMatchObject({
      code: 'ERR_KEY_FILE',
      message: expect.stringContaining(`${size} bytes`),
    });
  });

  it('refuses a symlink and a directory', async () => {
    const real = join(dir, 'real.key');
    await writeKey(real, randomBytes(32), 0o600);
    const link = join(dir, 'link.key');
    await symlink(real, link);
    await expect(new KeyFileSource(link).getKey({ stateIsNew: false })).rejects.toMatchObject({
      code: 'ERR_KEY_FILE',
      message: expect.stringMatching(/symbolic link/),
    });
    const sub = join(dir, 'd.key');
    await mkdir(sub, { mode: 0o700 });
    await expect(new KeyFileSource(sub).getKey({ stateIsNew: false })).rejects.toMatchObject({
      code: 'ERR_KEY_FILE',
    });
  });

  it('gives concurrent creators the same key', async () => {
    const path = join(dir, 'tpm.key');
    const keys = await Promise.all(
      Array.from({ length: 6 }, () => new KeyFileSource(path).getKey({ stateIsNew: true })),
    );
    for (const k of keys) expect(k).toEqual(keys[0]);
  });

  it('describes itself by absolute path, never by key', async () => {
    const source = new KeyFileSource(join(dir, 'tpm.key'));
    const key = await source.getKey({ stateIsNew: true });
    expect(source.describe()).toBe(`key file ${join(dir, 'tpm.key')}`);
    expect(source.describe()).not.toContain(Buffer.from(key).toString('hex'));
  });

  it('treats bad arguments as caller bugs', async () => {
    expect(() => new KeyFileSource('')).toThrow(TypeError);
    await expect(new KeyFileSource(join(dir, 'k')).getKey({} as never)).rejects.toBeInstanceOf(
      TypeError,
    );
  });
});
