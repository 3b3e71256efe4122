/**
 * The device agent suite (test/shared/agent-suite.ts) with the TPM on TCP in the MS simulator's
 * framing (`--tpm mssim:host=H,port=P`): prtlab's own TPM server in this process, so the agent's
 * TCP path, platform signals and TPM2_Startup handling run without outside tools. The simulator is
 * power-cycled in place for the TPM restart test: its transient objects are gone afterwards, as
 * after any TPM Reset, while the agent's connection stays open.
 */
import { expect } from 'vitest';
import { createSimulator, startTpmServer } from '../../tpm-sim/index.ts';
import { defineAgentSuite } from '../shared/agent-suite.ts';

defineAgentSuite(
  "prtlab's TPM server over TCP (MS simulator framing)",
  async () => {
    const device = createSimulator();
    const server = await startTpmServer({ device, port: 0 });
    // The MS framing finds the platform port at data port + 1.
    expect(server.platformPort).toBe(server.dataPort + 1);
    return {
      spec: `mssim:host=127.0.0.1,port=${server.dataPort}`,
      tpmProtected: true,
      async restart() {
        await device.powerOff();
        await device.powerOn();
      },
      close: () => server.close(),
    };
  },
  { restartable: true },
);
