import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  _atomicWriteInternals,
  atomicCreateFile,
  atomicWriteFile,
  isTempFileFor,
  removeStaleTempFiles,
} from '../../lib/fs/atomic-write.ts';
import { FsError } from '../../lib/fs/errors.ts';
import * as stateAtomic from '../../tpm-sim/state/atomic-write.ts';
import { StateError } from '../../tpm-sim/state/errors.ts';

const originalBeforeRename = _atomicWriteInternals.beforeRename;
const bytes = (s: string) => new TextEncoder().encode(s);

class SimulatedCrash extends Error {}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-atomic-'));
});
afterEach(async () => {
  _atomicWriteInternals.beforeRename = originalBeforeRename;
  await rm(dir, { recursive: true, force: true });
});

describe('atomicWriteFile', () => {
  it('creates and replaces a file, 0600 by default or the mode asked for', async () => {
    const target = join(dir, 'f');
    await atomicWriteFile(target, bytes('one'));
    expect(await readFile(target, 'utf8')).toBe('one');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    await atomicWriteFile(target, bytes('two'), { mode: 0o640 });
    expect(await readFile(target, 'utf8')).toBe('two');
    expect((await stat(target)).mode & 0o777).toBe(0o640);
    expect(await readdir(dir)).toEqual(['f']);
  });

  it('a crash before the rename keeps the old file; the next write cleans up', async () => {
    const target = join(dir, 'f');
    await atomicWriteFile(target, bytes('old'));
    let tempSeen = '';
    _atomicWriteInternals.beforeRename = async (temp) => {
      tempSeen = temp;
      // The new data is already complete and durable in the temporary file at this point.
      expect(await readFile(temp, 'utf8')).toBe('new');
      throw new SimulatedCrash('crash');
    };
    await expect(atomicWriteFile(target, bytes('new'))).rejects.toBeInstanceOf(SimulatedCrash);
    expect(await readFile(target, 'utf8')).toBe('old');
    const leftover = (await readdir(dir)).filter((n) => n !== 'f');
    expect(leftover).toHaveLength(1);
    expect(join(dir, leftover[0]!)).toBe(tempSeen);

    _atomicWriteInternals.beforeRename = originalBeforeRename;
    await atomicWriteFile(target, bytes('newer'));
    expect(await readFile(target, 'utf8')).toBe('newer');
    expect(await readdir(dir)).toEqual(['f']);
  });

  it("fails with FsError 'io' (op, errno, cause) when the directory does not exist", async () => {
    const target = join(dir, 'nope', 'f');
    const err = await atomicWriteFile(target, bytes('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsError);
    expect(err).toMatchObject({
      reason: 'io',
      path: join(dir, 'nope'),
      failure: { reason: 'io', op: 'list directory', errno: 'ENOENT' },
      message: `cannot list directory ${join(dir, 'nope')} (ENOENT)`,
    });
    expect((err as FsError).cause).toMatchObject({ code: 'ENOENT' });
    const noSweep = await atomicWriteFile(target, bytes('x'), { removeStale: false }).catch(
      (e: unknown) => e,
    );
    expect(noSweep).toMatchObject({
      failure: { op: 'write temporary file for', errno: 'ENOENT' },
      message: `cannot write temporary file for ${target} (ENOENT)`,
    });
  });

  it('treats bad arguments as caller bugs', async () => {
    await expect(atomicWriteFile('', bytes('x'))).rejects.toBeInstanceOf(TypeError);
    await expect(atomicWriteFile(join(dir, 'f'), 'x' as never)).rejects.toBeInstanceOf(TypeError);
    await expect(
      atomicWriteFile(join(dir, 'f'), bytes('x'), { mode: 0o1777 }),
    ).rejects.toBeInstanceOf(TypeError);
  });
});

describe('atomicCreateFile', () => {
  it('creates a missing file and never replaces an existing one', async () => {
    const target = join(dir, 'k');
    expect(await atomicCreateFile(target, bytes('first'))).toBe(true);
    expect(await atomicCreateFile(target, bytes('second'))).toBe(false);
    expect(await readFile(target, 'utf8')).toBe('first');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['k']);
  });

  it('lets exactly one of several concurrent creators win', async () => {
    const target = join(dir, 'k');
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        atomicCreateFile(target, bytes(`writer ${i}`), { removeStale: false }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await readFile(target, 'utf8')).toBe(`writer ${results.indexOf(true)}`);
  });
});

describe('stale temporary files', () => {
  it('only removes temporary files made for the same target', async () => {
    const keep = [
      'f',
      '.f.nothex__________.tmp',
      '.g.0123456789abcdef.tmp',
      'f.tmp',
      '.f.0123.tmp',
    ];
    const stale = ['.f.0123456789abcdef.tmp', '.f.fedcba9876543210.tmp'];
    for (const n of [...keep, ...stale]) await writeFile(join(dir, n), 'x');
    expect((await removeStaleTempFiles(join(dir, 'f'))).sort()).toEqual(stale.sort());
    expect((await readdir(dir)).sort()).toEqual(keep.sort());
  });

  it('recognises exactly the names it generates', () => {
    expect(isTempFileFor('.state.0123456789abcdef.tmp', 'state')).toBe(true);
    expect(isTempFileFor('.state.0123456789ABCDEF.tmp', 'state')).toBe(false);
    expect(isTempFileFor('.state.0123456789abcde.tmp', 'state')).toBe(false);
    expect(isTempFileFor('.other.0123456789abcdef.tmp', 'state')).toBe(false);
  });
});

describe('tpm-sim/state/atomic-write.ts (the same writers with the state store error)', () => {
  it('shares the test seam and the temporary-file names', () => {
    expect(stateAtomic._atomicWriteInternals).toBe(_atomicWriteInternals);
    expect(stateAtomic.isTempFileFor).toBe(isTempFileFor);
  });

  it('writes and creates exactly as lib/fs does', async () => {
    const target = join(dir, 'state');
    await stateAtomic.atomicWriteFile(target, bytes('one'), { mode: 0o640 });
    expect(await readFile(target, 'utf8')).toBe('one');
    expect((await stat(target)).mode & 0o777).toBe(0o640);
    expect(await stateAtomic.atomicCreateFile(target, bytes('two'))).toBe(false);
    await writeFile(join(dir, '.state.0123456789abcdef.tmp'), 'x');
    expect(await stateAtomic.removeStaleTempFiles(target)).toEqual(['.state.0123456789abcdef.tmp']);
  });

  it('fails with ERR_STATE_IO, same message, the system error as cause', async () => {
    const target = join(dir, 'nope', 'f');
    for (const attempt of [
      () => stateAtomic.atomicWriteFile(target, bytes('x'), { removeStale: false }),
      () => stateAtomic.atomicCreateFile(target, bytes('x'), { removeStale: false }),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect(err).toMatchObject({
        code: 'ERR_STATE_IO',
        message: `cannot write temporary file for ${target} (ENOENT)`,
      });
      expect((err as StateError).cause).toMatchObject({ code: 'ENOENT' });
    }
    await expect(stateAtomic.removeStaleTempFiles(target)).rejects.toMatchObject({
      code: 'ERR_STATE_IO',
      message: `cannot list directory ${join(dir, 'nope')} (ENOENT)`,
    });
  });

  it('lets a caller bug and the test seam through unchanged', async () => {
    await expect(stateAtomic.atomicWriteFile('', bytes('x'))).rejects.toBeInstanceOf(TypeError);
    _atomicWriteInternals.beforeRename = async () => {
      throw new SimulatedCrash('crash');
    };
    await expect(stateAtomic.atomicWriteFile(join(dir, 'f'), bytes('x'))).rejects.toBeInstanceOf(
      SimulatedCrash,
    );
  });
});
