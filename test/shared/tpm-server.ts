/**
 * A TPM server on loopback with a scripted device behind it, and the GetRandom exchange the
 * server and transport tests send through it.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import type { TpmDevice } from '../../tpm-sim/server/device.ts';
import {
  startTpmServer,
  type TpmServer,
  type TpmServerOptions,
} from '../../tpm-sim/server/tcp-server.ts';

export const TPM_CC_GET_RANDOM = 0x17b;
export const TPM_RC_COMMAND_CODE = 0x143;

/** Answers GetRandom with real random bytes and everything else with TPM_RC_COMMAND_CODE. */
export class TestDevice implements TpmDevice {
  commands = 0;
  powerOns = 0;
  powerOffs = 0;
  cancels: boolean[] = [];
  localities: number[] = [];
  events: string[] = [];
  delayMs = 0;
  active = 0;
  maxActive = 0;
  throwOnExecute = false;

  async execute(command: Uint8Array, locality: number): Promise<Uint8Array> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      this.commands++;
      this.localities.push(locality);
      this.events.push('execute');
      if (this.throwOnExecute) throw new Error('device exploded');
      const cmd = Buffer.from(command);
      if (cmd.length >= 12 && cmd.readUInt32BE(6) === TPM_CC_GET_RANDOM) {
        const n = cmd.readUInt16BE(10);
        const out = Buffer.alloc(12 + n);
        out.writeUInt16BE(0x8001, 0);
        out.writeUInt32BE(12 + n, 2);
        out.writeUInt32BE(0, 6);
        out.writeUInt16BE(n, 10);
        randomBytes(n).copy(out, 12);
        return out;
      }
      return rcResponse(TPM_RC_COMMAND_CODE);
    } finally {
      this.active--;
    }
  }

  async powerOn(): Promise<void> {
    this.powerOns++;
    this.events.push('powerOn');
  }

  async powerOff(): Promise<void> {
    this.powerOffs++;
    this.events.push('powerOff');
  }

  cancel(on: boolean): void {
    this.cancels.push(on);
  }
}

function rcResponse(rc: number): Buffer {
  const out = Buffer.alloc(10);
  out.writeUInt16BE(0x8001, 0);
  out.writeUInt32BE(10, 2);
  out.writeUInt32BE(rc, 6);
  return out;
}

/** TPM2_GetRandom(n), raw framing, no sessions. */
export function getRandomCommand(n: number): Buffer {
  const cmd = Buffer.alloc(12);
  cmd.writeUInt16BE(0x8001, 0);
  cmd.writeUInt32BE(12, 2);
  cmd.writeUInt32BE(TPM_CC_GET_RANDOM, 6);
  cmd.writeUInt16BE(n, 10);
  return cmd;
}

/** A successful GetRandom response carrying n bytes. */
export function expectGetRandomResponse(resp: Uint8Array, n: number): void {
  const b = Buffer.from(resp);
  expect(b.length).toBe(12 + n);
  expect(b.readUInt16BE(0)).toBe(0x8001);
  expect(b.readUInt32BE(2)).toBe(12 + n);
  expect(b.readUInt32BE(6)).toBe(0);
  expect(b.readUInt16BE(10)).toBe(n);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts a TPM server on an ephemeral loopback port pair with a new TestDevice, collecting its
 * log lines, and adds it to `servers` so that the test's cleanup closes it.
 */
export async function startTestServer(
  servers: TpmServer[],
  extra: Partial<TpmServerOptions> = {},
): Promise<{ server: TpmServer; device: TestDevice; logs: string[] }> {
  const device = new TestDevice();
  const logs: string[] = [];
  const server = await startTpmServer({
    device,
    port: 0,
    log: (line) => logs.push(line),
    ...extra,
  });
  servers.push(server);
  return { server, device, logs };
}
