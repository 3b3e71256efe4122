/**
 * Fail closed: mutated bytes of every command of the PCR, NV, policy, sealing and attestation
 * families only ever get a well-formed TPM response, never an internal error, and the TPM keeps
 * working afterwards.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pcrSelection, templates } from '../../tpm-sim/client/index.ts';
import { _dispatchInternals } from '../../tpm-sim/engine/dispatch.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS, type CommandName, type ParamsOf } from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_RH, TPM_SE, TPMA_NV } from '../../tpm-sim/wire/constants.ts';
import { buildCommand } from '../../tpm-sim/wire/frame.ts';
import { SCHEME_NULL, SYM_NULL, TPMT_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { newTpm, ok } from '../shared/engine.ts';

const EMPTY = Buffer.alloc(0);
const NV = 0x01500001;

function command<N extends CommandName>(name: N, handles: number[], params: ParamsOf<N>): Buffer {
  const spec = COMMANDS[name];
  const auths = spec.handles.filter((h) => h.auth !== undefined).length;
  const sessions = Array.from({ length: auths }, () => ({
    sessionHandle: TPM_RH.PW,
    nonce: EMPTY,
    attributes: 1,
    hmac: EMPTY,
  }));
  return buildCommand(spec.cc, handles, sessions, marshal(spec.params as never, params as never));
}

describe('new command families under mutated input', () => {
  it('answer every mutation with a TPM response code, and keep working', async () => {
    const tpm = await newTpm({ maxTransientObjects: 8 });
    const primary = (
      await ok(tpm, 'CreatePrimary', [TPM_RH.OWNER], {
        inSensitive: { userAuth: EMPTY, data: EMPTY },
        inPublic: templates.eccStoragePrimary(),
        outsideInfo: EMPTY,
        creationPCR: [],
      })
    ).handles[0]!;
    const ak = (
      await ok(tpm, 'CreateLoaded', [primary], {
        inSensitive: { userAuth: EMPTY, data: EMPTY },
        inPublic: marshal(TPMT_PUBLIC, templates.eccAttestationKey()),
      })
    ).handles[0]!;
    const session = (
      await ok(tpm, 'StartAuthSession', [TPM_RH.NULL, TPM_RH.NULL], {
        nonceCaller: Buffer.alloc(32, 1),
        encryptedSalt: EMPTY,
        sessionType: TPM_SE.POLICY,
        symmetric: SYM_NULL,
        authHash: TPM_ALG.SHA256,
      })
    ).handles[0]!;
    const nvAttrs = TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE;
    await ok(tpm, 'NV_DefineSpace', [TPM_RH.OWNER], {
      auth: EMPTY,
      publicInfo: {
        nvIndex: NV,
        nameAlg: TPM_ALG.SHA256,
        attributes: nvAttrs,
        authPolicy: EMPTY,
        dataSize: 16,
      },
    });
    const pcrs = [pcrSelection(TPM_ALG.SHA256, [0, 16])];
    const seeds = [
      command('PCR_Read', [], { pcrSelectionIn: pcrs }),
      command('PCR_Extend', [16], {
        digests: [{ hashAlg: TPM_ALG.SHA256, digest: Buffer.alloc(32, 2) }],
      }),
      command('NV_DefineSpace', [TPM_RH.OWNER], {
        auth: Buffer.from('pw'),
        publicInfo: {
          nvIndex: NV + 1,
          nameAlg: TPM_ALG.SHA256,
          attributes: nvAttrs,
          authPolicy: EMPTY,
          dataSize: 8,
        },
      }),
      command('NV_Write', [NV, NV], { data: Buffer.from('abc'), offset: 1 }),
      command('NV_Read', [TPM_RH.OWNER, NV], { size: 4, offset: 0 }),
      command('NV_ReadPublic', [NV], {}),
      command('NV_UndefineSpace', [TPM_RH.OWNER, NV + 1], {}),
      command('Unseal', [primary], {}),
      command('CreateLoaded', [primary], {
        inSensitive: { userAuth: EMPTY, data: Buffer.from('sealed') },
        inPublic: marshal(TPMT_PUBLIC, templates.sealedData()),
      }),
      command('Certify', [primary, ak], {
        qualifyingData: Buffer.from('q'),
        inScheme: SCHEME_NULL,
      }),
      command('Quote', [ak], {
        qualifyingData: Buffer.from('q'),
        inScheme: SCHEME_NULL,
        PCRselect: pcrs,
      }),
      command('PolicySecret', [TPM_RH.ENDORSEMENT, session], {
        nonceTPM: EMPTY,
        cpHashA: EMPTY,
        policyRef: Buffer.from('ref'),
        expiration: -10,
      }),
      command('PolicyGetDigest', [session], {}),
    ];
    _dispatchInternals.lastInternalError = undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        async (base, edits) => {
          const cmd = Buffer.from(base);
          for (const [i, v] of edits) cmd[i % cmd.length] = v;
          const rsp = Buffer.from(await tpm.execute(cmd));
          expect(rsp.length).toBeGreaterThanOrEqual(10);
          expect(rsp.readUInt32BE(2)).toBe(rsp.length);
          expect([0x8001, 0x8002]).toContain(rsp.readUInt16BE(0));
          // Loaded objects that the mutations created are flushed so that the slots last.
          for (let h = 0x80000003; h < 0x80000008; h++) tpm.transient[h - 0x80000000] = undefined;
        },
      ),
      { numRuns: 3000 },
    );
    expect(_dispatchInternals.lastInternalError).toBeUndefined();
    // Still a working TPM.
    await ok(tpm, 'PCR_Read', [], { pcrSelectionIn: pcrs });
    await ok(tpm, 'Quote', [ak], { qualifyingData: EMPTY, inScheme: SCHEME_NULL, PCRselect: pcrs });
  });
});
