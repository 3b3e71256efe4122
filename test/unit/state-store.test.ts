import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { _atomicWriteInternals } from '../../tpm-sim/state/atomic-write.ts';
import { StateError } from '../../tpm-sim/state/errors.ts';
import { KeyFileSource } from '../../tpm-sim/state/key-file-source.ts';
import type { GetKeyOptions, KeySource } from '../../tpm-sim/state/key-source.ts';
import {
  LOCK_FILE_NAME,
  MANIFEST_FILE_NAME,
  readStateManifest,
  STATE_FILE_NAME,
  StateStore,
} from '../../tpm-sim/state/state-store.ts';

const originalBeforeRename = _atomicWriteInternals.beforeRename;
const enc = (s: string) => new TextEncoder().encode(s);

let root: string;
let dir: string;
let keyPath: string;
const open: StateStore[] = [];

async function openStore(source: KeySource = new KeyFileSource(keyPath)): Promise<StateStore> {
  const store = await StateStore.open({ dir, keySource: source });
  open.push(store);
  return store;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'prtlab-store-'));
  dir = join(root, 'tpm');
  keyPath = join(root, 'keys', 'tpm.key');
});
afterEach(async () => {
  _atomicWriteInternals.beforeRename = originalBeforeRename;
  for (const s of open.splice(0)) await s.close().catch(() => {});
  await rm(root, { recursive: true, force: true });
});

/** An in-memory key source, to exercise kinds other than key files without a keystore. */
class MemorySource implements KeySource {
  readonly kind = 'secret-service' as const;
  key: Uint8Array | undefined;
  calls: GetKeyOptions[] = [];
  describe() {
    return 'memory';
  }
  async getKey(options: GetKeyOptions) {
    this.calls.push(options);
    if (!this.key) {
      if (!options.stateIsNew) throw new StateError('ERR_KEY_MISSING', 'memory: no key');
      this.key = new Uint8Array(randomBytes(32));
    }
    return Uint8Array.from(this.key);
  }
}

/** The pid of a process that has exited, for a stale lock. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid!;
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}

describe('StateStore basics', () => {
  it('creates a private directory, records the key source, and round-trips state', async () => {
    const store = await openStore();
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect(await store.load()).toBeUndefined();
    const state = enc('hierarchy seeds, NV, clock');
    await store.save(state);
    expect(await store.load()).toEqual(state);

    const sealed = await readFile(join(dir, STATE_FILE_NAME));
    expect((await stat(join(dir, STATE_FILE_NAME))).mode & 0o777).toBe(0o600);
    expect(sealed.includes(Buffer.from(state))).toBe(false);

    const manifest = await readStateManifest(dir);
    expect(manifest).toEqual({
      format: 'prtlab-tpm-state',
      version: 1,
      keySource: { kind: 'key-file', description: `key file ${keyPath}` },
    });
    const manifestText = await readFile(join(dir, MANIFEST_FILE_NAME), 'utf8');
    const key = await readFile(keyPath);
    expect(manifestText).not.toContain(key.toString('hex'));
    expect(manifestText).not.toContain(key.toString('base64'));
    expect(store.describe()).toContain(dir);
    expect(store.describe()).toContain(keyPath);
    expect(store.keySourceKind).toBe('key-file');
  });

  it('reads the same bytes after a restart', async () => {
    const state = new Uint8Array(randomBytes(4096));
    const first = await openStore();
    await first.save(state);
    await first.close();
    const second = await openStore();
    expect(await second.load()).toEqual(state);
  });

  it('snapshots the bytes at save time and runs saves in order', async () => {
    const store = await openStore();
    const buf = enc('aaaa');
    const pending = store.save(buf);
    buf.fill(0x62);
    await pending;
    expect(await store.load()).toEqual(enc('aaaa'));
    await Promise.all([1, 2, 3, 4, 5].map((i) => store.save(enc(`v${i}`))));
    expect(await store.load()).toEqual(enc('v5'));
  });

  it('is unusable after close', async () => {
    const store = await openStore();
    await store.close();
    await store.close();
    expect(() => store.load()).toThrow(TypeError);
    expect(() => store.save(enc('x'))).toThrow(TypeError);
  });
});

describe('StateStore fails closed', () => {
  async function savedStore(): Promise<{ store: StateStore; state: Uint8Array; file: string }> {
    const store = await openStore();
    const state = enc('persistent objects and NV indices');
    await store.save(state);
    return { store, state, file: join(dir, STATE_FILE_NAME) };
  }

  it('a tampered byte anywhere gives ERR_STATE_CORRUPT', async () => {
    const { store, file } = await savedStore();
    const good = await readFile(file);
    for (let i = 0; i < good.length; i++) {
      const bad = Buffer.from(good);
      bad[i]! ^= 0x20;
      await writeFile(file, bad);
      await expect(store.load(), `byte ${i}`).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT' });
    }
  });

  it('a truncated file gives ERR_STATE_CORRUPT', async () => {
    const { store, file } = await savedStore();
    const good = await readFile(file);
    for (const len of [0, 1, 20, good.length - 17, good.length - 1]) {
      await writeFile(file, good.subarray(0, len));
      await expect(store.load(), `length ${len}`).rejects.toMatchObject({
        code: 'ERR_STATE_CORRUPT',
      });
    }
  });

  it('a different key gives ERR_STATE_CORRUPT naming the mismatch', async () => {
    const { store } = await savedStore();
    await store.close();
    await writeFile(keyPath, randomBytes(32));
    const reopened = await openStore();
    await expect(reopened.load()).rejects.toMatchObject({
      code: 'ERR_STATE_CORRUPT',
      message: expect.stringMatching(/different key/),
    });
  });

  it('a crash between write and rename keeps the previous state; the next save works', async () => {
    const { store, state } = await savedStore();
    _atomicWriteInternals.beforeRename = async () => {
      throw new Error('simulated crash before rename');
    };
    await expect(store.save(enc('lost in the crash'))).rejects.toThrow(/simulated crash/);
    _atomicWriteInternals.beforeRename = originalBeforeRename;
    const names = await readdir(dir);
    expect(names.filter((n) => n.endsWith('.tmp'))).toHaveLength(1);

    // The crashed process is gone; a new one finds the previous state, ignoring the stale file.
    await store.close();
    const after = await openStore();
    expect(await after.load()).toEqual(state);
    await after.save(enc('after the crash'));
    expect(await after.load()).toEqual(enc('after the crash'));
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a key file with mode 0644 (ERR_KEY_FILE) and releases the lock', async () => {
    const { store } = await savedStore();
    await store.close();
    await chmod(keyPath, 0o644);
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_KEY_FILE' });
    await chmod(keyPath, 0o600);
    expect(await (await openStore()).load()).toBeDefined();
  });

  it('a missing key file for existing state is ERR_KEY_MISSING, and no new key appears', async () => {
    const { store } = await savedStore();
    await store.close();
    await unlink(keyPath);
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_KEY_MISSING' });
    await expect(stat(keyPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses state sealed under a different key-source kind, naming both', async () => {
    const { store } = await savedStore();
    await store.close();
    const memory = new MemorySource();
    const err = await openStore(memory).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_STATE_KEY_SOURCE_MISMATCH' });
    expect(err.message).toContain("'key-file'");
    expect(err.message).toContain("'secret-service'");
    expect(err.message).toContain(keyPath);
    expect(memory.calls).toEqual([]); // refused before touching the keystore
  });

  it('an authentic file under another kind is refused even without a manifest', async () => {
    const { store } = await savedStore();
    await store.close();
    await unlink(join(dir, MANIFEST_FILE_NAME));
    const memory = new MemorySource();
    memory.key = new Uint8Array(await readFile(keyPath)); // same key bytes, different kind
    const reopened = await openStore(memory);
    await expect(reopened.load()).rejects.toMatchObject({ code: 'ERR_STATE_KEY_SOURCE_MISMATCH' });
  });

  it('allows switching key source while no state has been saved', async () => {
    const first = await openStore();
    await first.close();
    const memory = new MemorySource();
    const second = await openStore(memory);
    expect(memory.calls).toEqual([{ stateIsNew: true }]);
    expect((await readStateManifest(dir))?.keySource).toEqual({
      kind: 'secret-service',
      description: 'memory',
    });
    await second.save(enc('x'));
    await second.close();
    await openStore(memory);
    expect(memory.calls.at(-1)).toEqual({ stateIsNew: false });
  });

  it('records nothing when the key cannot be obtained', async () => {
    const memory = new MemorySource();
    memory.getKey = async () => {
      throw new StateError('ERR_KEYSTORE_UNAVAILABLE', 'no bus');
    };
    await expect(openStore(memory)).rejects.toMatchObject({ code: 'ERR_KEYSTORE_UNAVAILABLE' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a directory that group or others can access, or that is not a directory', async () => {
    await mkdir(dir, { mode: 0o700 });
    await chmod(dir, 0o755);
    await expect(openStore()).rejects.toMatchObject({
      code: 'ERR_STATE_DIR_INSECURE',
      message: expect.stringContaining(`chmod 700 ${dir}`),
    });
    await rm(dir, { recursive: true });
    await writeFile(dir, 'not a dir');
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_STATE_DIR_INSECURE' });
  });

  it('refuses an unreadable manifest', async () => {
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, MANIFEST_FILE_NAME), '{"format":"something else"}');
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT' });
    await writeFile(join(dir, MANIFEST_FILE_NAME), 'not json');
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_STATE_CORRUPT' });
  });

  it('ignores stale temporary files on load', async () => {
    const { store, state } = await savedStore();
    await writeFile(join(dir, `.${STATE_FILE_NAME}.0123456789abcdef.tmp`), 'garbage');
    expect(await store.load()).toEqual(state);
  });
});

describe('StateStore lock', () => {
  it('lets only one store open a directory at a time', async () => {
    const first = await openStore();
    const err = await openStore().catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_STATE_IN_USE' });
    expect(err.message).toContain(String(process.pid));
    await first.close();
    await expect(openStore()).resolves.toBeInstanceOf(StateStore);
  });

  it('takes over a stale lock whose process is gone', async () => {
    await mkdir(dir, { mode: 0o700 });
    const pid = await deadPid();
    await writeFile(join(dir, LOCK_FILE_NAME), `${pid} ${'ab'.repeat(16)}\n`);
    const store = await openStore();
    expect(await readFile(join(dir, LOCK_FILE_NAME), 'utf8')).toMatch(
      new RegExp(`^${process.pid} [0-9a-f]{32}\\n$`),
    );
    await store.save(enc('x'));
    await store.close();
    await expect(stat(join(dir, LOCK_FILE_NAME))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(dir)).filter((n) => n.includes('stale'))).toEqual([]);
  });

  it('does not take over a lock it cannot read', async () => {
    await mkdir(dir, { mode: 0o700 });
    await writeFile(join(dir, LOCK_FILE_NAME), 'garbage');
    await expect(openStore()).rejects.toMatchObject({ code: 'ERR_STATE_IN_USE' });
  });

  it('refuses to save after losing the lock', async () => {
    const store = await openStore();
    await unlink(join(dir, LOCK_FILE_NAME));
    await expect(store.save(enc('x'))).rejects.toMatchObject({ code: 'ERR_STATE_IN_USE' });
    await expect(stat(join(dir, STATE_FILE_NAME))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('StateStore arguments', () => {
  it('treats bad options as caller bugs', async () => {
    await expect(
      StateStore.open({ dir: '', keySource: new KeyFileSource(keyPath) }),
    ).rejects.toBeInstanceOf(TypeError);
    await expect(StateStore.open({ dir, keySource: {} as KeySource })).rejects.toBeInstanceOf(
      TypeError,
    );
    const store = await openStore();
    expect(() => store.save('x' as never)).toThrow(TypeError);
  });
});
