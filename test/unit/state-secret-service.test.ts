import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { StateError } from '../../tpm-sim/state/errors.ts';
import {
  _secretServiceInternals,
  type KeyringEntry,
  SecretServiceSource,
} from '../../tpm-sim/state/secret-service-source.ts';

// These tests replace the keystore with a fake through the module's seam; the real Secret Service
// is exercised by test/interop/keystore.test.ts. The error strings are the ones @napi-rs/keyring
// 2.1.2 produced against gnome-keyring 42 there.
const MSG = {
  noBus:
    'Platform failure: DBus error: Using X11 for dbus-daemon autolaunch was disabled at compile time, set your DBUS_SESSION_BUS_ADDRESS instead',
  noService:
    'Platform failure: DBus error: The name org.freedesktop.secrets was not provided by any .service files',
  locked: "Couldn't access platform storage: Secret Service: unlock prompt was dismissed",
  noCollection: "Couldn't access platform storage: Secret Service: no result found",
};

const original = { ..._secretServiceInternals };
afterEach(() => {
  Object.assign(_secretServiceInternals, original);
});

class FakeEntry implements KeyringEntry {
  value: string | null = null;
  getError: Error | undefined;
  setError: Error | undefined;
  /** When false, writes are accepted but not kept. */
  keeps = true;
  sets = 0;
  async getPassword() {
    if (this.getError) throw this.getError;
    return this.value;
  }
  async setPassword(password: string) {
    this.sets++;
    if (this.setError) throw this.setError;
    if (this.keeps) this.value = password;
  }
}

function withFake(entry: FakeEntry): SecretServiceSource {
  _secretServiceInternals.platform = 'linux';
  _secretServiceInternals.createEntry = async () => entry;
  return new SecretServiceSource({ service: 'prtlab-test', account: 'tpm' });
}

function nativeError(message: string): Error {
  return Object.assign(new Error(message), { code: 'GenericFailure' });
}

async function rejection(p: Promise<unknown>): Promise<StateError> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: StateError) => err,
  );
}

describe('SecretServiceSource', () => {
  it('creates a key only for new state, stores it base64, and reads it back', async () => {
    const entry = new FakeEntry();
    const source = withFake(entry);
    const key = await source.getKey({ stateIsNew: true });
    expect(key).toHaveLength(32);
    expect(entry.value).toBe(Buffer.from(key).toString('base64'));
    expect(await source.getKey({ stateIsNew: false })).toEqual(key);
    expect(entry.sets).toBe(1);
  });

  it('uses an existing key for new state instead of replacing it', async () => {
    const entry = new FakeEntry();
    const key = new Uint8Array(randomBytes(32));
    entry.value = Buffer.from(key).toString('base64');
    expect(await withFake(entry).getKey({ stateIsNew: true })).toEqual(key);
    expect(entry.sets).toBe(0);
  });

  it.each([null, ''])(
    'reads %j for existing state as ERR_KEY_MISSING that may be locked',
    async (v) => {
      const entry = new FakeEntry();
      entry.value = v;
      const err = await rejection(withFake(entry).getKey({ stateIsNew: false }));
      expect(err.code).toBe('ERR_KEY_MISSING');
      expect(err.message).toMatch(/may be locked/);
      expect(err.message).toContain('"prtlab-test"');
      expect(entry.sets).toBe(0);
    },
  );

  it.each([
    ['no session bus', MSG.noBus, 'ERR_KEYSTORE_UNAVAILABLE'],
    ['no Secret Service on the bus', MSG.noService, 'ERR_KEYSTORE_UNAVAILABLE'],
    ['an unknown failure', 'something new', 'ERR_KEYSTORE_UNAVAILABLE'],
  ])('maps %s when connecting', async (_what, message, code) => {
    _secretServiceInternals.platform = 'linux';
    _secretServiceInternals.createEntry = async () => {
      throw nativeError(message);
    };
    const source = new SecretServiceSource({ service: 's', account: 'a' });
    for (const stateIsNew of [true, false]) {
      const err = await rejection(source.getKey({ stateIsNew }));
      expect(err.code).toBe(code);
      expect(err.message).toContain(message);
    }
  });

  it('maps a locked collection on read to ERR_KEYSTORE_LOCKED', async () => {
    const entry = new FakeEntry();
    entry.getError = nativeError(MSG.locked);
    for (const stateIsNew of [true, false]) {
      const err = await rejection(withFake(entry).getKey({ stateIsNew }));
      expect(err.code).toBe('ERR_KEYSTORE_LOCKED');
      expect(err.message).toMatch(/locked/);
    }
    expect(entry.sets).toBe(0);
  });

  it('maps "no result found" on store (no unlocked collection) to ERR_KEYSTORE_LOCKED', async () => {
    const entry = new FakeEntry();
    entry.setError = nativeError(MSG.noCollection);
    const err = await rejection(withFake(entry).getKey({ stateIsNew: true }));
    expect(err.code).toBe('ERR_KEYSTORE_LOCKED');
  });

  it('maps a timeout to ERR_KEYSTORE_LOCKED', async () => {
    const entry = new FakeEntry();
    entry.getError = new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    const err = await rejection(withFake(entry).getKey({ stateIsNew: false }));
    expect(err.code).toBe('ERR_KEYSTORE_LOCKED');
    expect(err.message).toMatch(/no answer within/);
  });

  it('does not use a key that did not survive the write', async () => {
    const entry = new FakeEntry();
    entry.keeps = false;
    const err = await rejection(withFake(entry).getKey({ stateIsNew: true }));
    expect(err.code).toBe('ERR_KEYSTORE_UNAVAILABLE');
  });

  it.each([
    'not base64 at all',
    Buffer.from(randomBytes(31)).toString('base64'),
    Buffer.from(randomBytes(33)).toString('base64'),
    `${Buffer.from(randomBytes(32)).toString('base64').slice(0, 42)}B=`, // non-canonical
    Buffer.from(randomBytes(32)).toString('base64url'),
  ])('refuses a malformed item %j with ERR_KEY_INVALID and never replaces it', async (v) => {
    const entry = new FakeEntry();
    entry.value = v;
    const err = await rejection(withFake(entry).getKey({ stateIsNew: true }));
    expect(err.code).toBe('ERR_KEY_INVALID');
    expect(err.message).not.toContain(v);
    expect(entry.sets).toBe(0);
  });

  it('is refused off Linux, where the store pin would not apply', async () => {
    const entry = new FakeEntry();
    withFake(entry);
    _secretServiceInternals.platform = 'darwin';
    const source = new SecretServiceSource({ service: 's', account: 'a' });
    expect((await rejection(source.getKey({ stateIsNew: true }))).code).toBe(
      'ERR_KEYSTORE_UNAVAILABLE',
    );
  });

  it('describes the item by service and account, never by key', async () => {
    const entry = new FakeEntry();
    const source = withFake(entry);
    const key = await source.getKey({ stateIsNew: true });
    expect(source.kind).toBe('secret-service');
    expect(source.describe()).toBe('Secret Service item service="prtlab-test" account="tpm"');
    expect(source.describe()).not.toContain(Buffer.from(key).toString('base64'));
  });

  it('treats bad options as caller bugs', async () => {
    expect(() => new SecretServiceSource({ service: '', account: 'a' })).toThrow(TypeError);
    expect(() => new SecretServiceSource({ service: 's', account: 1 as never })).toThrow(TypeError);
    expect(() => new SecretServiceSource({ service: 's', account: 'a', timeoutMs: 0 })).toThrow(
      TypeError,
    );
    expect(() => new SecretServiceSource(undefined as never)).toThrow(TypeError);
    const source = withFake(new FakeEntry());
    await expect(source.getKey(undefined as never)).rejects.toBeInstanceOf(TypeError);
  });
});
