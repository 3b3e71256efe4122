/** `prtlab tpm serve`: the software TPM on loopback TCP ports. */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveDataDir } from '../lib/data-dir.ts';
import { openTpm } from '../tpm-sim/open.ts';
import { startTpmServer } from '../tpm-sim/server/tcp-server.ts';
import { KeyFileSource, type KeySource, SecretServiceSource } from '../tpm-sim/state/index.ts';
import { type Io, usageError } from './io.ts';
import { TPM_SERVE_HELP } from './usage.ts';

export async function tpmServe(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '2321' },
      data: { type: 'string' },
      state: { type: 'string' },
      'key-file': { type: 'string' },
      keystore: { type: 'string' },
      'allow-remote': { type: 'boolean', default: false },
      'transient-slots': { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    io.out(TPM_SERVE_HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65534)
    throw usageError(`--port must be 0..65534, not ${values.port}`);
  const slots = Number(values['transient-slots']);
  if (!Number.isInteger(slots) || slots < 1 || slots > 64)
    throw usageError('--transient-slots must be 1..64');
  const dataDir = resolveDataDir(values.data);
  const dir = resolve(values.state ?? join(dataDir, 'tpm'));
  let keySource: KeySource;
  if (values.keystore !== undefined) {
    if (values['key-file'] !== undefined)
      throw usageError('choose one of --key-file and --keystore');
    if (values.keystore !== 'secret-service')
      throw usageError(`--keystore must be secret-service, not ${values.keystore}`);
    keySource = new SecretServiceSource({ service: 'prtlab-tpm', account: dir });
  } else {
    keySource = new KeyFileSource(values['key-file'] ?? join(dir, 'sealing.key'));
  }

  // The lab's TPM manufacturer CA (in the data directory) issues the TPM's EK certificates.
  const opened = await openTpm({ dir, keySource, dataDir, maxTransientObjects: slots });
  let server: Awaited<ReturnType<typeof startTpmServer>>;
  try {
    await opened.device.powerOn();
    server = await startTpmServer({
      device: opened.device,
      host: values.host,
      port,
      allowRemote: values['allow-remote'],
      log: (line) => io.err(`prtlab tpm: ${line}`),
    });
  } catch (err) {
    await opened.close();
    throw err;
  }
  io.out(
    `prtlab tpm: ${opened.created ? 'manufactured a new TPM' : 'loaded TPM state'}\n` +
      `prtlab tpm: ${opened.store.describe()}\n` +
      `prtlab tpm: EK certificates (NV 0x01c00002 RSA, 0x01c0000a ECC) from the TPM manufacturer CA in ${join(dataDir, 'tpm-manufacturer')}\n` +
      `prtlab tpm: listening on ${server.address}:${server.dataPort} (TPM commands) and ${server.address}:${server.platformPort} (platform)\n` +
      `prtlab tpm: tpm2-tools: -T swtpm:host=${server.address},port=${server.dataPort}\n`,
  );

  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await server.close();
  await opened.close();
  io.out('prtlab tpm: stopped; state saved\n');
  return 0;
}
