/**
 * The victim's own host process, for the one set-up the harness's process cannot do itself: a
 * device whose state key lives in the OS keystore. @napi-rs/keyring connects to the session bus
 * once per process (tpm-sim/state/secret-service-source.ts), so the device is added and signed in
 * here, with the victim host's private bus in the environment; the harness then copies the
 * device directory as an attacker would. Spec on standard input, one JSON line on standard output.
 */
import { readFile } from 'node:fs/promises';
import { addDevice, openDeviceAgent } from '../agent/index.ts';

interface VictimHostSpec {
  readonly dataDir: string;
  readonly name: string;
  readonly cloudUrl: string;
  readonly caPath: string;
  readonly upn: string;
  readonly password: string;
}

async function readSpec(): Promise<VictimHostSpec> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as VictimHostSpec;
}

try {
  const spec = await readSpec();
  const cloudCaPem = await readFile(spec.caPath, 'utf8');
  const user = { upn: spec.upn, password: spec.password };
  const added = await addDevice({
    dataDir: spec.dataDir,
    name: spec.name,
    keystore: 'secret-service',
    cloudUrl: spec.cloudUrl,
    cloudCaPem,
    user,
  });
  const agent = await openDeviceAgent({ dataDir: spec.dataDir, name: spec.name });
  try {
    await agent.signIn(user.upn, user.password);
  } finally {
    await agent.close();
  }
  process.stdout.write(`${JSON.stringify({ deviceId: added.config.deviceId })}\n`, () =>
    process.exit(0),
  );
} catch (err) {
  process.stderr.write(
    `victim host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
}
