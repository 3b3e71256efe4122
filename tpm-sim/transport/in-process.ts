import { type TpmError, TpmTransportError } from '../errors.ts';
import type { TpmDevice } from '../server/device.ts';
import { SerialQueue } from '../server/serial-queue.ts';
import type { TpmTransport } from './transport.ts';

/**
 * Talks to a TpmDevice in the same process, with no framing at all. The device's power state is
 * the caller's business: power it on (with autoStartup, or send Startup) before the first send.
 */
export class InProcessTransport implements TpmTransport {
  readonly #device: TpmDevice;
  readonly #locality: number;
  readonly #queue = new SerialQueue();
  #closed = false;

  constructor(device: TpmDevice, locality = 0) {
    if (typeof device !== 'object' || device === null || typeof device.execute !== 'function') {
      throw new TypeError('device must implement TpmDevice');
    }
    // TPM localities are one byte on every interface (0-4, and 32-255 as extended localities).
    if (!Number.isInteger(locality) || locality < 0 || locality > 255) {
      throw new RangeError(`locality must be an integer in 0..255, got ${locality}`);
    }
    this.#device = device;
    this.#locality = locality;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    if (!(command instanceof Uint8Array)) {
      return Promise.reject(new TypeError('command must be a Uint8Array'));
    }
    if (this.#closed) return Promise.reject(closedError());
    // Copied now, so a caller reusing its buffer cannot change a queued command.
    const bytes = command.slice();
    return this.#queue.run(async () => {
      try {
        return await this.#device.execute(bytes, this.#locality);
      } catch (err) {
        // The device contract says execute() answers bad commands with TPM error responses;
        // a rejection means the device itself broke, which is this transport's failure to deliver.
        throw new TpmTransportError('in-process TPM device failed a command', {
          cause: err,
        });
      }
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue.idle();
  }
}

function closedError(): TpmError {
  return new TpmTransportError('transport is closed');
}
