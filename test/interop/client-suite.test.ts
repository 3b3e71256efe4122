/**
 * The client suite (test/shared/client-suite.ts) against TPMs over TCP: Debian's swtpm, and
 * prtlab's own server in both framings. The unit project runs the same suite in-process; the
 * assertions are identical, so each target must give the same results.
 */
import { afterAll } from 'vitest';
import { TcpTransport, TpmClient } from '../../tpm-sim/client/index.ts';
import { Tpm } from '../../tpm-sim/engine/tpm.ts';
import { startTpmServer } from '../../tpm-sim/server/tcp-server.ts';
import { defineClientSuite } from '../shared/client-suite.ts';
import { startSwtpm, stopAllServers } from './helpers/swtpm.ts';

afterAll(() => stopAllServers());

defineClientSuite('Debian swtpm over TCP (raw framing)', async () => {
  const swtpm = await startSwtpm();
  const client = new TpmClient(new TcpTransport({ port: swtpm.port, framing: 'raw' }));
  return {
    client,
    async close() {
      await client.close();
      await swtpm.stop();
    },
  };
});

for (const framing of ['raw', 'mssim'] as const) {
  defineClientSuite(`prtlab's TPM server over TCP (${framing} framing)`, async () => {
    const tpm = new Tpm();
    await tpm.powerOn();
    const server = await startTpmServer({ device: tpm, port: 0 });
    const client = new TpmClient(new TcpTransport({ port: server.dataPort, framing }));
    return {
      client,
      async close() {
        await client.close();
        await server.close();
      },
    };
  });
}
