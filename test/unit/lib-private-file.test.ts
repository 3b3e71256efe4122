/**
 * lib/fs: reading a private file and making/checking a private directory, and how each component
 * words and codes the same refusals (cloud ERR_CLOUD_STATE, broker ERR_BROKER, agent
 * ERR_AGENT_DEVICE). The owner checks run on the file's real stat with its uid changed: making
 * a file of another user needs root (chown), and the check is the same either way.
 */
import type { Stats } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as agentFiles from '../../agent/files.ts';
import * as brokerFiles from '../../broker/files.ts';
import * as cloudDirs from '../../cloud/data-dir.ts';
import * as cloudFiles from '../../cloud/files.ts';
import { FsError, formatMode } from '../../lib/fs/errors.ts';
import { checkOwnerAndMode } from '../../lib/fs/ownership.ts';
import { checkPrivateDir, ensurePrivateDir } from '../../lib/fs/private-dir.ts';
import { readPrivateFile } from '../../lib/fs/private-file.ts';

const OTHER_UID = 4242;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prtlab-private-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, body: string | Buffer, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  await chmod(path, mode);
  return path;
}

async function refusal(promise: Promise<unknown>): Promise<FsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FsError);
  return err as FsError;
}

describe('readPrivateFile', () => {
  it('reads a 0600 file of this user, whole', async () => {
    const path = await file('secret', 'hello');
    const data = await readPrivateFile(path, { maxBytes: 64 });
    expect(Buffer.isBuffer(data)).toBe(true);
    expect(data?.toString('utf8')).toBe('hello');
    expect((await readPrivateFile(await file('empty', ''), { maxBytes: 0 }))?.length).toBe(0);
  });

  it('is undefined when there is no file', async () => {
    expect(await readPrivateFile(join(dir, 'missing'), { maxBytes: 64 })).toBeUndefined();
  });

  it('refuses a symlink, even to a good private file', async () => {
    const target = await file('real', 'x');
    const link = join(dir, 'link');
    await symlink(target, link);
    const err = await refusal(readPrivateFile(link, { maxBytes: 64 }));
    expect(err).toMatchObject({ reason: 'symlink', path: link, failure: { reason: 'symlink' } });
    expect(err.message).toBe(`${link} is a symbolic link`);
    expect(err.cause).toMatchObject({ code: 'ELOOP' });
  });

  it('refuses what is not a regular file', async () => {
    const sub = join(dir, 'sub');
    await mkdir(sub, { mode: 0o700 });
    const err = await refusal(readPrivateFile(sub, { maxBytes: 64 }));
    expect(err).toMatchObject({ reason: 'not-file', message: `${sub} is not a regular file` });
  });

  it('refuses a file another user owns, whatever its mode', async () => {
    const path = await file('theirs', 'x');
    const theirs = { ...(await stat(path)), uid: OTHER_UID } as Stats;
    const me = process.getuid?.() ?? 0;
    for (const requirePrivateMode of [true, false]) {
      let err: unknown;
      try {
        checkOwnerAndMode(path, theirs, requirePrivateMode);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FsError);
      expect(err).toMatchObject({
        reason: 'owner',
        failure: { reason: 'owner', uid: OTHER_UID, expectedUid: me },
        message: `${path} is owned by uid ${OTHER_UID}, not by this user (uid ${me})`,
      });
    }
    // The same stat with our own uid passes.
    expect(() => checkOwnerAndMode(path, { ...theirs, uid: me } as Stats, true)).not.toThrow();
  });

  it('refuses group or other access unless the caller allows it', async () => {
    const path = await file('loose', 'x', 0o640);
    const err = await refusal(readPrivateFile(path, { maxBytes: 64 }));
    expect(err).toMatchObject({
      reason: 'mode',
      message: `${path} has mode 0640, which lets group or others in`,
    });
    expect(err.failure.reason === 'mode' && err.failure.mode & 0o777).toBe(0o640);
    expect(
      (await readPrivateFile(path, { maxBytes: 64, requirePrivateMode: false }))?.toString(),
    ).toBe('x');
  });

  it('checks the mode bits exactly: any group or other bit refuses, owner bits never do', async () => {
    const path = await file('f', 'x');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 0o777 }), async (mode) => {
        await chmod(path, mode);
        const result = await readPrivateFile(path, { maxBytes: 64 }).then(
          (data) => data?.toString(),
          (e: unknown) => e,
        );
        if ((mode & 0o077) === 0) {
          expect(result).toBe('x');
        } else {
          expect(result).toBeInstanceOf(FsError);
          expect((result as FsError).message).toContain(`has mode ${formatMode(mode)}`);
        }
      }),
      { numRuns: 96 },
    );
  });

  it('bounds the size before reading', async () => {
    const path = await file('big', '12345');
    expect((await readPrivateFile(path, { maxBytes: 5 }))?.toString()).toBe('12345');
    const err = await refusal(readPrivateFile(path, { maxBytes: 4 }));
    expect(err).toMatchObject({
      reason: 'too-large',
      failure: { reason: 'too-large', size: 5, maxBytes: 4 },
      message: `${path} is 5 bytes; at most 4 are expected`,
    });
  });

  it("reports any other failure to open as 'io' with the errno", async () => {
    const path = join(await file('plain', 'x'), 'below');
    const err = await refusal(readPrivateFile(path, { maxBytes: 64 }));
    expect(err).toMatchObject({
      reason: 'io',
      failure: { reason: 'io', op: 'open', errno: 'ENOTDIR' },
      message: `cannot open ${path} (ENOTDIR)`,
    });
    expect(err.cause).toMatchObject({ code: 'ENOTDIR' });
  });

  it('treats bad arguments as caller bugs', async () => {
    await expect(readPrivateFile('', { maxBytes: 1 })).rejects.toBeInstanceOf(TypeError);
    await expect(readPrivateFile(join(dir, 'f'), { maxBytes: -1 })).rejects.toBeInstanceOf(
      RangeError,
    );
    await expect(readPrivateFile(join(dir, 'f'), { maxBytes: 1.5 })).rejects.toBeInstanceOf(
      RangeError,
    );
  });
});

describe('ensurePrivateDir and checkPrivateDir', () => {
  it('creates a 0700 directory, with parents when asked', async () => {
    const one = join(dir, 'one');
    await ensurePrivateDir(one);
    expect((await stat(one)).mode & 0o777).toBe(0o700);
    await ensurePrivateDir(one);
    const deep = join(dir, 'a', 'b', 'c');
    const err = await refusal(ensurePrivateDir(deep));
    expect(err).toMatchObject({
      failure: { reason: 'io', op: 'create directory', errno: 'ENOENT' },
      message: `cannot create directory ${deep} (ENOENT)`,
    });
    await ensurePrivateDir(deep, { recursive: true });
    expect((await stat(join(dir, 'a'))).mode & 0o777).toBe(0o700);
    expect((await stat(deep)).mode & 0o777).toBe(0o700);
    await checkPrivateDir(deep);
  });

  it('refuses a looser directory and leaves its mode alone', async () => {
    const loose = join(dir, 'loose');
    await mkdir(loose);
    await chmod(loose, 0o755);
    for (const attempt of [() => ensurePrivateDir(loose), () => checkPrivateDir(loose)]) {
      const err = await refusal(attempt());
      expect(err).toMatchObject({
        reason: 'mode',
        message: `${loose} has mode 0755, which lets group or others in`,
      });
    }
    expect((await stat(loose)).mode & 0o777).toBe(0o755);
  });

  it('refuses a symlink to a good private directory', async () => {
    const real = join(dir, 'real');
    await ensurePrivateDir(real);
    const link = join(dir, 'link');
    await symlink(real, link);
    for (const attempt of [
      () => ensurePrivateDir(link),
      () => ensurePrivateDir(link, { recursive: true }),
    ]) {
      expect(await refusal(attempt())).toMatchObject({ reason: 'symlink', path: link });
    }
  });

  it('refuses a file in the directory’s place', async () => {
    const path = await file('plain', 'x');
    expect(await refusal(ensurePrivateDir(path))).toMatchObject({ reason: 'not-directory' });
    expect(await refusal(checkPrivateDir(path))).toMatchObject({ reason: 'not-directory' });
    // mkdir -p itself fails there, and says so.
    expect(await refusal(ensurePrivateDir(path, { recursive: true }))).toMatchObject({
      failure: { reason: 'io', op: 'create directory', errno: 'EEXIST' },
    });
  });

  it("reports a missing directory as 'io' (op 'stat directory')", async () => {
    const missing = join(dir, 'missing');
    expect(await refusal(checkPrivateDir(missing))).toMatchObject({
      failure: { reason: 'io', op: 'stat directory', errno: 'ENOENT' },
      message: `cannot stat directory ${missing} (ENOENT)`,
    });
  });

  it('refuses a directory another user owns', async () => {
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o700 });
    const st = { ...(await stat(theirs)), uid: OTHER_UID } as Stats;
    expect(() => checkOwnerAndMode(theirs, st, true)).toThrow(
      expect.objectContaining({ failure: expect.objectContaining({ reason: 'owner' }) }),
    );
    // checkPrivateDir runs that check on the directory's own stat: ours passes.
    await expect(checkPrivateDir(theirs)).resolves.toBeUndefined();
  });
});

describe('each component keeps its own code and words', () => {
  it('cloud: ERR_CLOUD_STATE, with the fix', async () => {
    const loose = await file('key.pem', 'x', 0o644);
    await expect(cloudFiles.readCheckedFile(loose, { private: true })).rejects.toMatchObject({
      code: 'ERR_CLOUD_STATE',
      message: `${loose} has mode 0644, which lets group or others read a private key; run: chmod 600 ${loose}`,
    });
    expect((await cloudFiles.readCheckedFile(loose, { private: false }))?.toString()).toBe('x');
    const link = join(dir, 'link.pem');
    await symlink(loose, link);
    await expect(cloudFiles.readCheckedFile(link, { private: false })).rejects.toMatchObject({
      code: 'ERR_CLOUD_STATE',
      message: `${link} is a symbolic link; point the cloud at the real file`,
    });
    await expect(
      cloudFiles.readCheckedFile(loose, { private: false, maxBytes: 0 }),
    ).rejects.toMatchObject({
      code: 'ERR_CLOUD_STATE',
      message: `${loose} is 1 bytes; at most 0 are expected`,
    });
    const looseDir = join(dir, 'cloud');
    await mkdir(looseDir, { mode: 0o750 });
    await chmod(looseDir, 0o750);
    await expect(cloudDirs.ensurePrivateDir(looseDir)).rejects.toMatchObject({
      code: 'ERR_CLOUD_STATE',
      message: `${looseDir} has mode 0750, which lets group or others in; run: chmod 700 ${looseDir}`,
    });
    const target = join(dir, 'nope', 'f');
    for (const write of [
      () => cloudFiles.replaceFile(target, Buffer.from('x'), 0o600),
      () => cloudFiles.createFileOnce(target, Buffer.from('x'), 0o600),
      () => cloudFiles.atomicWriteFile(target, Buffer.from('x'), { removeStale: false }),
    ]) {
      await expect(write()).rejects.toMatchObject({
        code: 'ERR_CLOUD_STATE',
        message: `cannot write temporary file for ${target} (ENOENT)`,
      });
    }
  });

  it('broker: ERR_BROKER, with the fix', async () => {
    const loose = await file('broker.json', '{}', 0o604);
    await expect(brokerFiles.readPrivateFile(loose, 64)).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `${loose} has mode 0604, which lets group or others read it: run chmod 600 ${loose}`,
    });
    const link = join(dir, 'link.json');
    await symlink(loose, link);
    await expect(brokerFiles.readPrivateFile(link, 64)).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `${link} is a symbolic link; refused`,
    });
    const below = join(loose, 'x');
    await expect(brokerFiles.readPrivateFile(below, 64)).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `cannot open ${below} (ENOTDIR)`,
    });
    const looseDir = join(dir, 'device');
    await mkdir(looseDir);
    await chmod(looseDir, 0o711);
    await expect(brokerFiles.ensurePrivateDir(looseDir)).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `${looseDir} has mode 0711; group and others must not enter it: run chmod 700 ${looseDir}`,
    });
    await expect(brokerFiles.ensurePrivateDir(loose)).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `cannot create ${loose} (EEXIST)`,
    });
    const target = join(dir, 'nope', 'f');
    await expect(
      brokerFiles.atomicWriteFile(target, Buffer.from('x'), { removeStale: false }),
    ).rejects.toMatchObject({
      code: 'ERR_BROKER',
      message: `cannot write temporary file for ${target} (ENOENT)`,
    });
  });

  it('agent: ERR_AGENT_DEVICE, with the fix', async () => {
    const loose = await file('device.json', '{}', 0o640);
    await expect(agentFiles.readPrivateFile(loose)).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `${loose} has mode 0640, which lets others read it; run: chmod 600 ${loose}`,
    });
    const link = join(dir, 'link.json');
    await symlink(loose, link);
    await expect(agentFiles.readPrivateFile(link)).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `cannot open ${link}`,
    });
    const linkDir = join(dir, 'linked-device');
    await symlink(dir, linkDir);
    await expect(agentFiles.checkPrivateDir(linkDir)).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `${linkDir} is not a directory (or is a symlink)`,
    });
    const looseDir = join(dir, 'devices');
    await mkdir(looseDir);
    await chmod(looseDir, 0o770);
    await expect(agentFiles.ensurePrivateDir(looseDir)).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `directory ${looseDir} has mode 0770; run: chmod 700 ${looseDir}`,
    });
    await expect(agentFiles.checkPrivateDir(join(dir, 'missing'))).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `cannot read directory ${join(dir, 'missing')}`,
    });
    const target = join(dir, 'nope', 'f');
    await expect(agentFiles.writePrivateFile(target, 'x')).rejects.toMatchObject({
      code: 'ERR_AGENT_DEVICE',
      message: `cannot list directory ${join(dir, 'nope')} (ENOENT)`,
    });
  });
});
