/**
 * The device agent suite (test/shared/agent-suite.ts) against Debian's swtpm over TCP (raw
 * framing), the same assertions the unit project makes with the built-in simulator: the agent's
 * key tree, PKCS#10 signing, the session-key import and the TPM-derived keys must work on a real
 * TPM implementation (libtpms), not only on prtlab's own.
 */
import { afterAll } from 'vitest';
import { defineAgentSuite } from '../shared/agent-suite.ts';
import { startSwtpm, stopAllServers } from './helpers/swtpm.ts';

afterAll(() => stopAllServers());

defineAgentSuite(
  'Debian swtpm over TCP (swtpm:host=127.0.0.1,port=P)',
  async () => {
    const swtpm = await startSwtpm();
    return {
      spec: `swtpm:host=127.0.0.1,port=${swtpm.port}`,
      tpmProtected: true,
      close: () => swtpm.stop(),
      // The agent must survive a real TPM restart: it starts the TPM and reloads its keys.
      restart: () => swtpm.restart!(),
    };
  },
  { restartable: true },
);
