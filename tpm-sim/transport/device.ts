/**
 * A kernel TPM character device: /dev/tpmrm0 (through the kernel's resource manager) or /dev/tpm0.
 *
 * The Linux TPM driver (drivers/char/tpm/tpm-dev-common.c) takes one whole command per write()
 * and returns the whole response to the next read(); a second write before that read fails with
 * EBUSY. So each send is exactly one write and one read, with a buffer larger than any response.
 *
 * The file stays open between commands: with /dev/tpmrm0 every open file is its own
 * resource-manager space, and closing it flushes the transient objects and sessions it created.
 * After an I/O error the file is closed and the next send opens it again, in a fresh space.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { TpmError, TpmTransportError } from '../errors.ts';
import { isTpm2Tag, TPM_HEADER_SIZE } from '../server/protocol.ts';
import { SerialQueue } from '../server/serial-queue.ts';
import type { TpmTransport } from './transport.ts';

export const DEFAULT_TPM_DEVICE_PATH = '/dev/tpmrm0';

/** Larger than the driver's TPM_BUFSIZE (4096), so one read always takes the whole response. */
const READ_BUFFER_SIZE = 64 * 1024;

export class DeviceTransport implements TpmTransport {
  readonly path: string;
  readonly #queue = new SerialQueue();
  #handle: FileHandle | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(path: string = DEFAULT_TPM_DEVICE_PATH) {
    if (typeof path !== 'string' || path === '') {
      throw new TypeError('path must be a non-empty string');
    }
    this.path = path;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    if (!(command instanceof Uint8Array)) {
      return Promise.reject(new TypeError('command must be a Uint8Array'));
    }
    if (this.#closed) return Promise.reject(transportError('transport is closed'));
    const bytes = Buffer.from(command);
    return this.#queue.run(async () => {
      const handle = await this.#opened();
      try {
        const { bytesWritten } = await handle.write(bytes, 0, bytes.length, null);
        if (bytesWritten !== bytes.length) {
          throw transportError(
            `TPM device ${this.path} took ${bytesWritten} of ${bytes.length} command bytes`,
          );
        }
        const buf = Buffer.alloc(READ_BUFFER_SIZE);
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        return new Uint8Array(checkResponse(buf.subarray(0, bytesRead), this.path));
      } catch (err) {
        await this.#drop();
        if (err instanceof TpmError) throw err;
        throw transportError(`I/O error on TPM device ${this.path}: ${errnoText(err)}`, err);
      }
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#queue.run(() => this.#drop());
    return this.#closing;
  }

  async #opened(): Promise<FileHandle> {
    if (this.#handle) return this.#handle;
    try {
      this.#handle = await open(this.path, constants.O_RDWR);
    } catch (err) {
      throw openError(this.path, err);
    }
    return this.#handle;
  }

  async #drop(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    try {
      await handle?.close();
    } catch {
      // Nothing useful to do: the descriptor is released either way.
    }
  }
}

function checkResponse(response: Buffer, path: string): Buffer {
  if (response.length === 0) throw transportError(`TPM device ${path} returned no response`);
  if (response.length < TPM_HEADER_SIZE) {
    throw transportError(`TPM device ${path} returned ${response.length} bytes, not a response`);
  }
  const tag = response.readUInt16BE(0);
  if (!isTpm2Tag(tag)) {
    throw transportError(
      `TPM device ${path} returned tag 0x${tag.toString(16).padStart(4, '0')}, not a TPM 2.0 response`,
    );
  }
  const size = response.readUInt32BE(2);
  if (size !== response.length) {
    throw transportError(
      `TPM device ${path} returned ${response.length} bytes but the header says ${size}`,
    );
  }
  return Buffer.from(response);
}

function openError(path: string, err: unknown): TpmError {
  const code = (err as NodeJS.ErrnoException).code;
  let message: string;
  if (code === 'ENOENT') {
    message = `TPM device ${path} does not exist (no TPM, or its driver is not loaded)`;
  } else if (code === 'EACCES' || code === 'EPERM') {
    message = `no permission to open TPM device ${path} read-write (it is usually group tss)`;
  } else {
    message = `cannot open TPM device ${path}: ${errnoText(err)}`;
  }
  return transportError(message, err);
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? (err instanceof Error ? err.message : String(err));
}

function transportError(message: string, cause?: unknown): TpmError {
  return new TpmTransportError(message, cause === undefined ? undefined : { cause });
}
