/**
 * The TPM key provider's object handling (agent/keys/tpm.ts) against prtlab's simulator behind its
 * TCP server, 3 transient object slots as on swtpm: children stay loaded between operations, the
 * least recently used one is evicted and comes back by ContextLoad, a changed blob is loaded (and
 * checked) anew, a TPM power cycle is survived, and close() leaves the slots empty. Commands are
 * counted at the device, so the tests see what the TPM was asked to do.
 */
import { constants, createHmac, publicEncrypt, randomBytes, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WrappedSessionKey } from '../../agent/keys/provider.ts';
import { TpmKeyProvider } from '../../agent/keys/tpm.ts';
import { parseTpmSpec } from '../../agent/tpm-spec.ts';
import {
  createSimulator,
  KeyFileSource,
  startTpmServer,
  TcpTransport,
  TPM_CAP,
  TpmClient,
  type TpmDevice,
  type TpmServer,
} from '../../tpm-sim/index.ts';
import { TPM_CC } from '../../tpm-sim/wire/constants.ts';

type CommandName = keyof typeof TPM_CC;

/** The simulator, counting the commands it runs by code. */
class CountingDevice implements TpmDevice {
  readonly inner: TpmDevice;
  readonly #counts = new Map<number, number>();

  constructor(inner: TpmDevice) {
    this.inner = inner;
  }

  execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
    if (command.length >= 10) {
      const cc = Buffer.from(command.buffer, command.byteOffset, command.length).readUInt32BE(6);
      this.#counts.set(cc, (this.#counts.get(cc) ?? 0) + 1);
    }
    return this.inner.execute(command, locality);
  }

  powerOn(): Promise<void> {
    return this.inner.powerOn();
  }

  powerOff(): Promise<void> {
    return this.inner.powerOff();
  }

  cancel(on: boolean): void {
    this.inner.cancel(on);
  }

  count(name: CommandName): number {
    return this.#counts.get(TPM_CC[name]) ?? 0;
  }

  reset(): void {
    this.#counts.clear();
  }
}

const servers: TpmServer[] = [];
const providers: TpmKeyProvider[] = [];
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'prtlab-agent-tpm-keys-'));
});

afterEach(async () => {
  for (const p of providers.splice(0)) await p.close();
  for (const s of servers.splice(0)) await s.close();
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A simulator behind a TCP server (MS framing) and a provider with fresh device keys in it. */
async function setup(options: { autoStartup?: boolean } = {}) {
  const device = new CountingDevice(createSimulator(options));
  const server = await startTpmServer({ device, port: 0 });
  servers.push(server);
  const spec = parseTpmSpec(`mssim:host=127.0.0.1,port=${server.dataPort}`);
  const { provider } = await TpmKeyProvider.create(
    spec,
    scratch,
    new KeyFileSource(join(scratch, 'unused.key')),
    { computerKey: false },
  );
  providers.push(provider);
  return { device, server, provider };
}

/** Imports a known 32-byte session key the way a PRT's session_key_jwe delivers it (§4.4). */
async function importKnown(provider: TpmKeyProvider): Promise<{
  plain: Buffer;
  wrapped: WrappedSessionKey;
}> {
  const plain = randomBytes(32);
  const encrypted = publicEncrypt(
    {
      key: provider.transportPublicKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: 'sha1',
    },
    plain,
  );
  return { plain, wrapped: await provider.importSessionKey(encrypted) };
}

const softHmac = (key: Buffer, data: Buffer) => createHmac('sha256', key).update(data).digest();

describe('TPM key provider, object slots', () => {
  it('keeps the sealing and session keys loaded: a repeated HMAC is one TPM2_HMAC and stays right', async () => {
    const { device, provider } = await setup();
    const { plain, wrapped } = await importKnown(provider);
    const data = Buffer.from('kdf block input');
    const seal0 = await provider.sealingHmac(data);
    expect((await provider.sessionHmac(wrapped, data)).equals(softHmac(plain, data))).toBe(true);
    device.reset();
    for (let i = 0; i < 5; i++) {
      expect((await provider.sessionHmac(wrapped, data)).equals(softHmac(plain, data))).toBe(true);
      expect((await provider.sealingHmac(data)).equals(seal0)).toBe(true);
    }
    expect(device.count('HMAC')).toBe(10);
    expect(device.count('Load')).toBe(0);
    expect(device.count('ContextLoad')).toBe(0);
    expect(device.count('FlushContext')).toBe(0);
  });

  it('more keys than slots: the least recently used goes, comes back by ContextLoad, results stay right', async () => {
    const { device, provider } = await setup();
    const keys = [
      await importKnown(provider),
      await importKnown(provider),
      await importKnown(provider),
    ];
    const data = Buffer.from('context');
    const round = async () => {
      for (const k of keys) {
        expect((await provider.sessionHmac(k.wrapped, data)).equals(softHmac(k.plain, data))).toBe(
          true,
        );
      }
      const sig = await provider.signWithDeviceKey(data);
      expect(
        verify(
          'sha256',
          data,
          { key: provider.devicePublicKey, padding: constants.RSA_PKCS1_PADDING },
          sig,
        ),
      ).toBe(true);
    };
    await round();
    device.reset();
    await round();
    await round();
    // Every key was loaded from its blob once (round one); after that, evicted keys come back
    // from their saved contexts.
    expect(device.count('Load')).toBe(0);
    expect(device.count('ContextLoad')).toBeGreaterThanOrEqual(6);
  });

  it('a stored blob that differs from the resident one is loaded and checked anew', async () => {
    const { device, provider } = await setup();
    const { wrapped } = await importKnown(provider);
    if (wrapped.kind !== 'tpm') throw new Error('expected a TPM blob');
    const data = Buffer.from('x');
    await provider.sessionHmac(wrapped, data);
    const priv = Buffer.from(wrapped.private, 'hex');
    priv[priv.length - 1]! ^= 1;
    device.reset();
    await expect(
      provider.sessionHmac({ ...wrapped, private: priv.toString('hex') }, data),
    ).rejects.toMatchObject({ code: 'ERR_TPM_RESPONSE' });
    expect(device.count('Load')).toBe(1);
  });

  it('survives a TPM power cycle (a TPM Reset empties the slots): same keys, same results', async () => {
    const { device, provider } = await setup();
    const { plain, wrapped } = await importKnown(provider);
    const data = Buffer.from('before and after');
    const seal0 = await provider.sealingHmac(data);
    await provider.sessionHmac(wrapped, data);
    await device.inner.powerOff();
    await device.inner.powerOn();
    device.reset();
    expect((await provider.sessionHmac(wrapped, data)).equals(softHmac(plain, data))).toBe(true);
    expect((await provider.sealingHmac(data)).equals(seal0)).toBe(true);
    // The SRK was made again (and its Name checked) and the children loaded from their blobs.
    expect(device.count('CreatePrimary')).toBe(1);
    expect(device.count('Load')).toBe(2);
  });

  it('a TPM that waits for TPM2_Startup after the power cycle is started again', async () => {
    const { device, provider } = await setup({ autoStartup: false });
    const { plain, wrapped } = await importKnown(provider);
    const data = Buffer.from('startup');
    await provider.sessionHmac(wrapped, data);
    await device.inner.powerOff();
    await device.inner.powerOn();
    device.reset();
    expect((await provider.sessionHmac(wrapped, data)).equals(softHmac(plain, data))).toBe(true);
    expect(device.count('Startup')).toBe(1);
  });

  it('close() flushes everything it loaded: the TPM holds no transient object afterwards', async () => {
    const { server, provider } = await setup();
    const { wrapped } = await importKnown(provider);
    await provider.sessionHmac(wrapped, Buffer.from('a'));
    await provider.sealingHmac(Buffer.from('b'));
    await provider.close();
    const client = new TpmClient(
      new TcpTransport({ host: '127.0.0.1', port: server.dataPort, framing: 'mssim' }),
    );
    try {
      const { data } = await client.getCapability(TPM_CAP.HANDLES, 0x80000000, 16);
      expect(data.data).toEqual([]);
    } finally {
      await client.close();
    }
  });
});
