// There is no TPM character device to test against here: the kernel is built without the TPM
// driver (so no /dev/tpm0 or /dev/tpmrm0, and no vtpm proxy for `swtpm chardev --vtpm-proxy`) and
// without CUSE (so no `swtpm cuse`). Stand-ins such as FIFOs or sockets do not keep the driver's
// one-write/one-read semantics, so only the error paths are tested, against real files.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPrtlabError } from '../../lib/errors.ts';
import { DEFAULT_TPM_DEVICE_PATH, DeviceTransport } from '../../tpm-sim/transport/device.ts';

const GET_RANDOM_8 = Buffer.from('80010000000c0000017b0008', 'hex');

let dir: string;
const transports: DeviceTransport[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-devtransport-'));
});

afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  await rm(dir, { recursive: true, force: true });
});

function transport(path?: string): DeviceTransport {
  const t = new DeviceTransport(path);
  transports.push(t);
  return t;
}

async function transportError(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPrtlabError(err, 'ERR_TPM_TRANSPORT'), String(err)).toBe(true);
  return err as Error;
}

describe('DeviceTransport', () => {
  it('defaults to /dev/tpmrm0', () => {
    expect(DEFAULT_TPM_DEVICE_PATH).toBe('/dev/tpmrm0');
    expect(transport().path).toBe('/dev/tpmrm0');
  });

  it('reports a missing device, naming the path', async () => {
    const path = join(dir, 'tpmrm0');
    const err = await transportError(transport(path).send(GET_RANDOM_8));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/does not exist/);
  });

  it('reports a device it may not open read-write, naming the path', async () => {
    // A read-only sysfs file refuses O_RDWR with EACCES even for root, unlike a chmod'ed file.
    const path = '/sys/kernel/notes';
    const err = await transportError(transport(path).send(GET_RANDOM_8));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/permission/);
  });

  it('reports a path that is not a device (a directory)', async () => {
    const err = await transportError(transport(dir).send(GET_RANDOM_8));
    expect(err.message).toContain(dir);
    expect(err.message).toMatch(/EISDIR/);
  });

  it('reports an empty read as no response (/dev/null)', async () => {
    const err = await transportError(transport('/dev/null').send(GET_RANDOM_8));
    expect(err.message).toMatch(/no response/);
  });

  it('reports bytes that are not a TPM response (/dev/zero)', async () => {
    const err = await transportError(transport('/dev/zero').send(GET_RANDOM_8));
    expect(err.message).toMatch(/tag 0x0000/);
  });

  it('rejects sends after close() and caller bugs', async () => {
    const t = transport('/dev/null');
    await t.close();
    await transportError(t.send(GET_RANDOM_8));
    expect(() => new DeviceTransport('')).toThrow(TypeError);
    await expect(t.send('x' as unknown as Uint8Array)).rejects.toThrow(TypeError);
  });
});
