/** The device agent suite (test/shared/agent-suite.ts) with the built-in TPM simulator. */
import { defineAgentSuite } from '../shared/agent-suite.ts';

defineAgentSuite('the built-in TPM simulator', async () => ({
  spec: 'builtin',
  tpmProtected: true,
  close: async () => {},
}));
