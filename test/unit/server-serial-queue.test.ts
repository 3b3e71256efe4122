import { describe, expect, it } from 'vitest';
import { SerialQueue } from '../../tpm-sim/server/serial-queue.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SerialQueue', () => {
  it('runs tasks one at a time in FIFO order', async () => {
    const q = new SerialQueue();
    const order: string[] = [];
    let active = 0;
    let maxActive = 0;
    const task = (name: string, ms: number) => async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      order.push(`start ${name}`);
      await sleep(ms);
      order.push(`end ${name}`);
      active--;
      return name;
    };
    const results = await Promise.all([
      q.run(task('a', 20)),
      q.run(task('b', 1)),
      q.run(task('c', 5)),
    ]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(maxActive).toBe(1);
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
  });

  it('keeps going after a task fails, and passes the failure to its caller', async () => {
    const q = new SerialQueue();
    const failed = q.run(async () => {
      throw new Error('boom');
    });
    const next = q.run(() => 42);
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe(42);
  });

  it('idle() waits for everything queued so far', async () => {
    const q = new SerialQueue();
    let done = false;
    void q.run(async () => {
      await sleep(10);
      done = true;
    });
    await q.idle();
    expect(done).toBe(true);
  });
});
