import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { _dispatchInternals } from '../../tpm-sim/engine/dispatch.ts';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { COMMANDS } from '../../tpm-sim/wire/commands.ts';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_SE } from '../../tpm-sim/wire/constants.ts';
import { buildCommand, readResponse } from '../../tpm-sim/wire/frame.ts';
import { SYM_NULL } from '../../tpm-sim/wire/structures.ts';
import { newTpm } from '../shared/engine.ts';

const EMPTY = Buffer.alloc(0);

function rcOf(rsp: Uint8Array): number {
  return Buffer.from(rsp).readUInt32BE(6);
}

const getRandom = (n: number) =>
  buildCommand(TPM_CC.GetRandom, [], [], marshal(COMMANDS.GetRandom.params, { bytesRequested: n }));

function startSession(nonce: Buffer) {
  return buildCommand(
    TPM_CC.StartAuthSession,
    [TPM_RH.NULL, TPM_RH.NULL],
    [],
    marshal(COMMANDS.StartAuthSession.params, {
      nonceCaller: nonce,
      encryptedSalt: EMPTY,
      sessionType: TPM_SE.HMAC,
      symmetric: SYM_NULL,
      authHash: TPM_ALG.SHA256,
    }),
  );
}

// Response codes from Part 3 §5-6, each checked against swtpm/libtpms (docs: tpm-formulas §7).
describe('command processing answers with the response codes a real TPM gives', () => {
  it('TPM_RC_INITIALIZE (0x100) before Startup, and for a second Startup', async () => {
    const tpm = await newTpm({ autoStartup: false });
    expect(rcOf(await tpm.execute(getRandom(8)))).toBe(0x100);
    const startup = buildCommand(TPM_CC.Startup, [], [], Buffer.from([0, 0]));
    expect(rcOf(await tpm.execute(startup))).toBe(0);
    expect(rcOf(await tpm.execute(getRandom(8)))).toBe(0);
    expect(rcOf(await tpm.execute(startup))).toBe(0x100);
  });

  it('GetRandom returns the bytes asked for, in the exact MS-simulator example layout', async () => {
    const tpm = await newTpm();
    const rsp = Buffer.from(await tpm.execute(Buffer.from('80010000000c0000017b0008', 'hex')));
    expect(rsp.subarray(0, 12).toString('hex')).toBe('800100000014000000000008');
    expect(rsp.length).toBe(20);
  });

  it('tags: TPM_RC_BAD_TAG (0x01E) for a TPM_ST that is not a command tag, TPM_RC_VALUE (0x084) for no TPM_ST', async () => {
    const tpm = await newTpm();
    const cmd = getRandom(8);
    cmd.writeUInt16BE(0x8000, 0);
    expect(rcOf(await tpm.execute(cmd))).toBe(0x01e);
    cmd.writeUInt16BE(0x1234, 0);
    expect(rcOf(await tpm.execute(cmd))).toBe(0x084);
  });

  it('TPM_RC_COMMAND_CODE (0x143), TPM_RC_COMMAND_SIZE (0x142) and trailing bytes TPM_RC_SIZE (0x095)', async () => {
    const tpm = await newTpm();
    expect(rcOf(await tpm.execute(buildCommand(0x1ff, [], [], EMPTY)))).toBe(0x143);
    const cmd = getRandom(8);
    expect(rcOf(await tpm.execute(cmd.subarray(0, 11)))).toBe(0x142);
    const trailing = buildCommand(TPM_CC.GetRandom, [], [], Buffer.from([0, 8, 0]));
    expect(rcOf(await tpm.execute(trailing))).toBe(0x095);
  });

  it('StartAuthSession: a nonceCaller under 16 bytes is TPM_RC_SIZE for parameter 1 (0x1D5)', async () => {
    const tpm = await newTpm();
    expect(rcOf(await tpm.execute(startSession(randomBytes(8))))).toBe(0x1d5);
    const ok = readResponse(await tpm.execute(startSession(randomBytes(32))), 1, 0);
    expect(ok.rc).toBe(0);
    expect(ok.handles[0]! >>> 24).toBe(0x02);
  });

  it('handles: not loaded 0x910, out of range 0x184, undefined persistent 0x18B, flushing a gone handle 0x1CB', async () => {
    const tpm = await newTpm();
    const readPublic = (h: number) => buildCommand(TPM_CC.ReadPublic, [h], [], EMPTY);
    expect(rcOf(await tpm.execute(readPublic(0x80000000)))).toBe(0x910);
    expect(rcOf(await tpm.execute(readPublic(0x80ffffff)))).toBe(0x184);
    expect(rcOf(await tpm.execute(readPublic(0x81000001)))).toBe(0x18b);
    const flush = buildCommand(TPM_CC.FlushContext, [], [], Buffer.from('80000000', 'hex'));
    expect(rcOf(await tpm.execute(flush))).toBe(0x1cb);
  });

  it('sessions: TPM_RC_AUTH_MISSING (0x125) without one, TPM_RC_VALUE|S1 (0x984) out of range, 0x982 for a useless extra session', async () => {
    const tpm = await newTpm();
    const params = marshal(COMMANDS.EvictControl.params, { persistentHandle: 0x81000010 });
    expect(
      rcOf(
        await tpm.execute(
          buildCommand(TPM_CC.EvictControl, [TPM_RH.OWNER, 0x80000000], [], params),
        ),
      ),
    ).toBe(0x125);
    const s = readResponse(await tpm.execute(startSession(randomBytes(32))), 1, 0).handles[0]!;
    const auth = (h: number) => ({
      sessionHandle: h,
      nonce: randomBytes(32),
      attributes: 1,
      hmac: EMPTY,
    });
    const getRandomWith = (h: number) =>
      buildCommand(TPM_CC.GetRandom, [], [auth(h)], Buffer.from([0, 8]));
    expect(rcOf(await tpm.execute(getRandomWith(0x02ffffff)))).toBe(0x984);
    // GetRandom has no auth handle, so a plain HMAC session there has no job (Part 1 §19.6.1).
    expect(rcOf(await tpm.execute(getRandomWith(s)))).toBe(0x982);
  });

  it('a session slot limit of 3 gives TPM_RC_SESSION_MEMORY (0x903), and FlushContext frees one', async () => {
    const tpm = await newTpm();
    const handles: number[] = [];
    for (let i = 0; i < 3; i++)
      handles.push(
        readResponse(await tpm.execute(startSession(randomBytes(32))), 1, 0).handles[0]!,
      );
    expect(rcOf(await tpm.execute(startSession(randomBytes(32))))).toBe(0x903);
    const flush = Buffer.alloc(4);
    flush.writeUInt32BE(handles[0]!, 0);
    expect(rcOf(await tpm.execute(buildCommand(TPM_CC.FlushContext, [], [], flush)))).toBe(0);
    expect(rcOf(await tpm.execute(startSession(randomBytes(32))))).toBe(0);
  });

  it('random and mutated command bytes only ever produce a well-formed TPM response', async () => {
    const tpm = await newTpm();
    const seeds = [
      getRandom(8),
      startSession(randomBytes(32)),
      buildCommand(TPM_CC.GetCapability, [], [], Buffer.from('000000060000010000000010', 'hex')),
    ];
    _dispatchInternals.lastInternalError = undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(
              fc.constantFrom(...seeds),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
            )
            .map(([base, edits]) => {
              const b = Buffer.from(base);
              for (const [i, v] of edits) b[i % b.length] = v;
              return b;
            }),
        ),
        async (cmd) => {
          const rsp = Buffer.from(await tpm.execute(cmd));
          expect(rsp.length).toBeGreaterThanOrEqual(10);
          expect(rsp.readUInt32BE(2)).toBe(rsp.length);
          expect([0x8001, 0x8002]).toContain(rsp.readUInt16BE(0));
        },
      ),
      { numRuns: 2000 },
    );
    expect(_dispatchInternals.lastInternalError).toBeUndefined();
  });
});
