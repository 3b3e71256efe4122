import { InProcessTransport, TpmClient } from '../../tpm-sim/client/index.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { defineClientSuite } from '../shared/client-suite.ts';

defineClientSuite('the built-in simulator, in-process', async () => {
  const tpm = new Tpm();
  await tpm.powerOn();
  const client = new TpmClient(new InProcessTransport(tpm));
  return { client, close: () => client.close() };
});
