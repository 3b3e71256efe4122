/**
 * The attacker program: run by the harness as a process of its own, on "another host" (its own
 * data directory as working directory and HOME, an environment with nothing of the victim's, no
 * TPM, and only the stolen artifact), it reads one AttackerSpec (attacker/protocol.ts) as JSON on
 * standard input, performs the action and prints one observation as JSON on standard output.
 * Exit status 0 means an observation was printed; anything else is a failure of the program
 * itself, described on standard error.
 */
import { runAction } from './attacker/actions.ts';
import type { AttackerSpec } from './attacker/protocol.ts';

const MAX_SPEC_BYTES = 64 * 1024;

async function readSpec(): Promise<AttackerSpec> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += b.length;
    if (size > MAX_SPEC_BYTES) throw new Error('the spec is too large');
    chunks.push(b);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as AttackerSpec;
}

try {
  const observation = await runAction(await readSpec());
  // Exit once the line is out: a keystore connection or a timer must not keep the host alive.
  process.stdout.write(`${JSON.stringify(observation)}\n`, () => process.exit(0));
} catch (err) {
  process.stderr.write(
    `attacker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    () => process.exit(1),
  );
}
