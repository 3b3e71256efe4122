/** GetRandom (Part 3 §16.1) and ReadClock (§29.1). */
import { randomBytes } from 'node:crypto';
import type { Handler } from '../handler.ts';

/** At most one digest's worth per call (Part 3 §16.1: bytesRequested is capped at sizeof(TPMU_HA)). */
const MAX_RANDOM = 64;

export const GetRandom: Handler<'GetRandom'> = (_ctx, p) => ({
  response: { randomBytes: randomBytes(Math.min(p.bytesRequested, MAX_RANDOM)) },
});

export const ReadClock: Handler<'ReadClock'> = (ctx) => ({
  response: {
    currentTime: {
      time: BigInt(ctx.tpm.time()),
      clockInfo: {
        clock: BigInt(ctx.tpm.clock()),
        resetCount: ctx.tpm.state.resetCount,
        restartCount: ctx.tpm.state.restartCount,
        // The clock is saved with every state change, so it never runs backwards: always safe.
        safe: 1,
      },
    },
  },
});
