/**
 * The device agent suite (test/shared/agent-suite.ts) with `--tpm none`: software keys sealed with
 * the keystore key, as Windows keeps them without a usable TPM. Everything works, and status says
 * the keys are not TPM-protected.
 */
import { defineAgentSuite } from '../shared/agent-suite.ts';

defineAgentSuite('no TPM (software keys sealed with the keystore)', async () => ({
  spec: 'none',
  tpmProtected: false,
  close: async () => {},
}));
