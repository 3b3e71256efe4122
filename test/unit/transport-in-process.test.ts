import { describe, expect, it } from 'vitest';
import { isPrtlabError } from '../../lib/errors.ts';
import type { TpmDevice } from '../../tpm-sim/server/device.ts';
import { InProcessTransport } from '../../tpm-sim/transport/in-process.ts';

class RecordingDevice implements TpmDevice {
  seen: Array<{ command: string; locality: number }> = [];
  active = 0;
  maxActive = 0;
  fail = false;

  async execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    await new Promise((r) => setTimeout(r, 5));
    this.active--;
    if (this.fail) throw new Error('broken');
    this.seen.push({ command: Buffer.from(command).toString('hex'), locality });
    return Buffer.from('80010000000a00000000', 'hex');
  }

  async powerOn(): Promise<void> {}
  async powerOff(): Promise<void> {}
  cancel(): void {}
}

describe('InProcessTransport', () => {
  it('passes commands and the locality to the device', async () => {
    const device = new RecordingDevice();
    const t = new InProcessTransport(device, 3);
    const resp = await t.send(Buffer.from('80010000000c0000017b0008', 'hex'));
    expect(Buffer.from(resp).toString('hex')).toBe('80010000000a00000000');
    expect(device.seen).toEqual([{ command: '80010000000c0000017b0008', locality: 3 }]);
  });

  it('runs concurrent sends one at a time, in order', async () => {
    const device = new RecordingDevice();
    const t = new InProcessTransport(device);
    await Promise.all([1, 2, 3, 4].map((i) => t.send(Uint8Array.of(i))));
    expect(device.maxActive).toBe(1);
    expect(device.seen.map((s) => s.command)).toEqual(['01', '02', '03', '04']);
  });

  it('copies the command when queued', async () => {
    const device = new RecordingDevice();
    const t = new InProcessTransport(device);
    const first = t.send(Uint8Array.of(1));
    const buf = Uint8Array.of(2);
    const second = t.send(buf);
    buf[0] = 9;
    await Promise.all([first, second]);
    expect(device.seen.map((s) => s.command)).toEqual(['01', '02']);
  });

  it('wraps a device failure in ERR_TPM_TRANSPORT and keeps working', async () => {
    const device = new RecordingDevice();
    const t = new InProcessTransport(device);
    device.fail = true;
    const err = await t.send(Uint8Array.of(1)).catch((e: unknown) => e);
    expect(isPrtlabError(err, 'ERR_TPM_TRANSPORT')).toBe(true);
    device.fail = false;
    await t.send(Uint8Array.of(2));
  });

  it('finishes queued sends on close, then rejects new ones', async () => {
    const device = new RecordingDevice();
    const t = new InProcessTransport(device);
    const pending = t.send(Uint8Array.of(1));
    await t.close();
    await pending;
    const err = await t.send(Uint8Array.of(2)).catch((e: unknown) => e);
    expect(isPrtlabError(err, 'ERR_TPM_TRANSPORT')).toBe(true);
    expect(device.seen).toHaveLength(1);
  });

  it('rejects caller bugs', async () => {
    const device = new RecordingDevice();
    expect(() => new InProcessTransport(device, 256)).toThrow(RangeError);
    expect(() => new InProcessTransport(device, -1)).toThrow(RangeError);
    expect(() => new InProcessTransport({} as TpmDevice)).toThrow(TypeError);
    await expect(new InProcessTransport(device).send([1] as unknown as Uint8Array)).rejects.toThrow(
      TypeError,
    );
  });
});
