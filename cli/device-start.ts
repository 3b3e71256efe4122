/**
 * `prtlab device start NAME [--port P]`: runs a device, its agent (which holds the device's TPM
 * and PRTs) and its broker (a WebSocket JSON-RPC server on 127.0.0.1 that local clients call),
 * until SIGINT/SIGTERM. The broker writes `<data>/devices/NAME/broker.json` (port and secret,
 * 0600) for clients to find it, and removes it when it stops.
 */
import { type DeviceAgent, deviceDir, openDeviceAgent } from '../agent/index.ts';
import { type BrokerHandle, startBroker } from '../broker/server.ts';
import { resolveDataDir } from '../lib/data-dir.ts';
import { expectPositionals, parseDataArgs } from './cloud-data.ts';
import { type Io, usageError, waitForStop } from './io.ts';

export const DEVICE_START_HELP = `Usage: prtlab device start NAME [--port P] [--data DIR]

Runs device NAME: its agent (TPM, PRTs, renewal) and its broker, a WebSocket JSON-RPC 2.0 server
on 127.0.0.1 that local clients ('prtlab client run') call for tokens. The broker writes
<data>/devices/NAME/broker.json ({"port": P, "secret": "..."}, mode 0600); a client must present
the secret as 'Authorization: Bearer <secret>'; any request with an Origin header is refused.
Tokens are cached per account, client and resource, sealed by the device's TPM, in
<data>/devices/NAME/broker-cache/. Stops on Ctrl-C (SIGINT) or SIGTERM.

Options:
  --port P             the broker's TCP port on 127.0.0.1 (default: a free port, see broker.json)
  --data DIR           the lab's data directory (default $PRTLAB_HOME, or ./.prtlab)
  -h, --help           show this help
`;

/** How often a long-running agent checks whether a PRT is due for renewal (real time). */
const RENEWAL_TICK_MS = 60_000;

export async function deviceStart(argv: string[], io: Io): Promise<number> {
  const args = parseDataArgs(argv, { port: { type: 'string' } }, DEVICE_START_HELP, io);
  if (typeof args === 'number') return args;
  const [name] = expectPositionals(args.positionals, ['NAME'], 'device start');
  let port = 0;
  if (args.values.port !== undefined) {
    if (!/^\d{1,5}$/.test(args.values.port) || Number(args.values.port) > 65535)
      throw usageError(`device start: --port must be a number from 0 to 65535`);
    port = Number(args.values.port);
  }
  const dataDir = resolveDataDir(args.values.data);
  const agent: DeviceAgent = await openDeviceAgent({
    dataDir,
    name: name!,
    tickMs: RENEWAL_TICK_MS,
  });
  let broker: BrokerHandle;
  try {
    broker = await startBroker({
      agent,
      deviceDir: deviceDir(dataDir, name!),
      port,
      log: (line) => io.err(`prtlab: broker: ${line}`),
    });
  } catch (err) {
    await agent.close();
    throw err;
  }
  io.out(
    `device ${name}: agent and broker running (device id ${agent.config.deviceId})\n` +
      `broker on ${broker.url} (port and secret in ${broker.brokerFile}); Ctrl-C stops\n`,
  );
  try {
    await waitForStop(io);
  } finally {
    try {
      await broker.close();
    } finally {
      await agent.close();
    }
  }
  io.out(`device ${name}: stopped\n`);
  return 0;
}
