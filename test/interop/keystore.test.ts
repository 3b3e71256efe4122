import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretServiceSource } from '../../tpm-sim/state/secret-service-source.ts';
import {
  MANIFEST_FILE_NAME,
  STATE_FILE_NAME,
  StateStore,
} from '../../tpm-sim/state/state-store.ts';
import {
  type KeyringDaemon,
  makeIsolatedHome,
  requireKeyringPrograms,
  type SessionBus,
  secretToolLookup,
  startKeyringDaemon,
  startSessionBus,
  stopAllKeyringProcesses,
} from './helpers/keyring.ts';

// The TPM state store against a real Secret Service: gnome-keyring-daemon on a private D-Bus
// session bus, HOME in a temp dir. The tests run in order and share one bus, because
// @napi-rs/keyring connects to the session bus once per process (the first Secret Service entry
// fixes DBUS_SESSION_BUS_ADDRESS for good); the no-bus case is in keystore-nobus.test.ts, which
// gets a process of its own.

const PASSWORD = 'interop-test-password';
const SERVICE = 'prtlab-interop';
const ACCOUNT = `tpm-${process.pid}`;
const KEY_BASE64 = /^[A-Za-z0-9+/]{43}=$/;

let root: string;
let bus: SessionBus;
let daemon: KeyringDaemon | undefined;
let savedAddress: string | undefined;
const state = new Uint8Array(randomBytes(2048));

const source = () =>
  new SecretServiceSource({ service: SERVICE, account: ACCOUNT, timeoutMs: 20_000 });
const stateDir = () => join(root, 'tpm');

async function restartDaemon(home: string, password?: string): Promise<void> {
  await daemon?.stop();
  daemon = undefined;
  daemon = await startKeyringDaemon({ bus, home, password });
}

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort()) {
    out[name] = (await readFile(join(dir, name))).toString('hex');
  }
  return out;
}

beforeAll(async () => {
  requireKeyringPrograms();
  root = await mkdtemp(join(tmpdir(), 'prtlab-keystore-'));
  bus = await startSessionBus(join(root, 'dbus'));
  savedAddress = process.env.DBUS_SESSION_BUS_ADDRESS;
  // Before the first SecretServiceSource use in this process: the binding reads it only then.
  process.env.DBUS_SESSION_BUS_ADDRESS = bus.address;
});

afterAll(async () => {
  await stopAllKeyringProcesses();
  if (savedAddress === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
  else process.env.DBUS_SESSION_BUS_ADDRESS = savedAddress;
  if (root) await rm(root, { recursive: true, force: true });
});

describe('StateStore with SecretServiceSource (gnome-keyring)', () => {
  let home: string;

  it('creates state sealed with a Secret Service key and reads it back after restarts', async () => {
    home = await makeIsolatedHome(join(root, 'home'));
    await restartDaemon(home, PASSWORD);

    const created = await StateStore.open({ dir: stateDir(), keySource: source() });
    expect(await created.load()).toBeUndefined();
    await created.save(state);
    await created.close();

    // The key went to the Secret Service, not to some fallback store: libsecret finds it.
    const stored = await secretToolLookup(bus, { service: SERVICE, username: ACCOUNT });
    expect(stored).toMatch(KEY_BASE64);
    const manifest = await readFile(join(stateDir(), MANIFEST_FILE_NAME), 'utf8');
    expect(manifest).toContain('"secret-service"');
    expect(manifest).not.toContain(stored);

    // Restart of the TPM server: a new store on the same directory.
    const reopened = await StateStore.open({ dir: stateDir(), keySource: source() });
    expect(await reopened.load()).toEqual(state);
    await reopened.close();

    // Restart of the keyring too: the key persisted in the on-disk login keyring.
    await restartDaemon(home, PASSWORD);
    const again = await StateStore.open({ dir: stateDir(), keySource: source() });
    expect(again.describe()).toContain(`account="${ACCOUNT}"`);
    expect(await again.load()).toEqual(state);
    await again.close();
  });

  it('a locked keyring gives ERR_KEYSTORE_LOCKED for existing state and changes nothing', async () => {
    await restartDaemon(home); // same keyring on disk, not unlocked
    const before = await snapshot(stateDir());
    await expect(StateStore.open({ dir: stateDir(), keySource: source() })).rejects.toMatchObject({
      code: 'ERR_KEYSTORE_LOCKED',
    });
    expect(await snapshot(stateDir())).toEqual(before);
  });

  it('a keyring with no unlocked collection creates no key for new state (ERR_KEYSTORE_LOCKED)', async () => {
    const freshHome = await makeIsolatedHome(join(root, 'home-locked'));
    await restartDaemon(freshHome); // no login keyring exists, and none can be created unprompted
    const dir = join(root, 'tpm-new');
    await expect(StateStore.open({ dir, keySource: source() })).rejects.toMatchObject({
      code: 'ERR_KEYSTORE_LOCKED',
    });
    expect(await readdir(dir)).toEqual([]); // no manifest, no state, no lock left behind
  });

  it('existing state whose item reads as empty is ERR_KEY_MISSING; no replacement key is made', async () => {
    // An unlocked but different keyring (a fresh HOME): the item is simply not there.
    const otherHome = await makeIsolatedHome(join(root, 'home-other'));
    await restartDaemon(otherHome, PASSWORD);
    const before = await snapshot(stateDir());
    const err = await StateStore.open({ dir: stateDir(), keySource: source() }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_KEY_MISSING' });
    expect(err.message).toMatch(/may be locked/);
    expect(await secretToolLookup(bus, { service: SERVICE, username: ACCOUNT })).toBeNull();
    expect(await snapshot(stateDir())).toEqual(before);
  });

  it('no Secret Service on the bus gives ERR_KEYSTORE_UNAVAILABLE, for new and existing state', async () => {
    await daemon?.stop();
    daemon = undefined;
    const before = await snapshot(stateDir());
    await expect(StateStore.open({ dir: stateDir(), keySource: source() })).rejects.toMatchObject({
      code: 'ERR_KEYSTORE_UNAVAILABLE',
    });
    expect(await snapshot(stateDir())).toEqual(before);
    const dir = join(root, 'tpm-nobody');
    await expect(StateStore.open({ dir, keySource: source() })).rejects.toMatchObject({
      code: 'ERR_KEYSTORE_UNAVAILABLE',
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it('the original keyring, unlocked again, still opens the state', async () => {
    await restartDaemon(home, PASSWORD);
    const store = await StateStore.open({ dir: stateDir(), keySource: source() });
    expect(await store.load()).toEqual(state);
    await store.close();
    expect((await readdir(stateDir())).sort()).toEqual([MANIFEST_FILE_NAME, STATE_FILE_NAME]);
  });
});
