import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GetKeyOptions, KeySource } from '../../tpm-sim/state/key-source.ts';
import { SecretServiceSource } from '../../tpm-sim/state/secret-service-source.ts';
import { StateStore } from '../../tpm-sim/state/state-store.ts';

// The Secret Service source with no D-Bus session bus at all (the usual headless case). This
// needs a process in which @napi-rs/keyring has not connected yet, because it connects once per
// process; vitest runs each test file in a fresh worker process, so it lives in its own file.

let root: string;
let savedAddress: string | undefined;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'prtlab-keystore-nobus-'));
  savedAddress = process.env.DBUS_SESSION_BUS_ADDRESS;
  delete process.env.DBUS_SESSION_BUS_ADDRESS;
});

afterAll(async () => {
  if (savedAddress !== undefined) process.env.DBUS_SESSION_BUS_ADDRESS = savedAddress;
  if (root) await rm(root, { recursive: true, force: true });
});

/** Seals state as if by an earlier run that had a Secret Service: same kind, key held here. */
class EarlierRun implements KeySource {
  readonly kind = 'secret-service' as const;
  readonly key = new Uint8Array(randomBytes(32));
  describe() {
    return 'Secret Service item service="prtlab-interop" account="nobus"';
  }
  async getKey(_options: GetKeyOptions) {
    return Uint8Array.from(this.key);
  }
}

const source = () => new SecretServiceSource({ service: 'prtlab-interop', account: 'nobus' });

describe('SecretServiceSource without a session bus', () => {
  it('refuses new state with ERR_KEYSTORE_UNAVAILABLE and records nothing', async () => {
    const dir = join(root, 'new');
    const err = await StateStore.open({ dir, keySource: source() }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_KEYSTORE_UNAVAILABLE' });
    // The binding's own error shows it really found no bus (rather than, say, a stale connection
    // left by another test in this process).
    expect(String(err.cause?.message)).toMatch(/autolaunch|DBUS_SESSION_BUS_ADDRESS instead/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses existing state with ERR_KEYSTORE_UNAVAILABLE, not "missing", and changes nothing', async () => {
    const dir = join(root, 'existing');
    const earlier = await StateStore.open({ dir, keySource: new EarlierRun() });
    await earlier.save(new Uint8Array(randomBytes(64)));
    await earlier.close();
    const before = await Promise.all((await readdir(dir)).map((n) => readFile(join(dir, n))));
    await expect(StateStore.open({ dir, keySource: source() })).rejects.toMatchObject({
      code: 'ERR_KEYSTORE_UNAVAILABLE',
    });
    const after = await Promise.all((await readdir(dir)).map((n) => readFile(join(dir, n))));
    expect(after).toEqual(before);
  });
});
