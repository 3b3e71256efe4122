/**
 * tpm2-tools 5.4 flows for the PCR, NV, sealing, CreateLoaded, session, clock and parameter
 * commands, run against Debian's swtpm (the reference) and against `prtlab tpm serve` through
 * both the swtpm and the mssim TCTI. Expected values are computed independently (node:crypto,
 * openssl) or are the same for every target.
 *
 * Tool behaviour met on the way (tpm2-tools 5.4):
 *   - `tpm2_pcrread` prints `  sha256:` then one `    16: 0x<UPPER HEX>` line per PCR.
 *   - `tpm2_nvreadpublic` prints the index's Name, attributes (value: 0x...) and size.
 *   - `tpm2_nvread` writes the raw bytes to stdout (or to `-o file`).
 *   - `tpm2_create ... -c key.ctx` sends TPM2_CreateLoaded and saves the loaded key's context.
 *   - `tpm2_readclock` prints `time:` and a `clock_info:` block.
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { marshal } from '../../tpm-sim/wire/codec.ts';
import { TPMS_NV_PUBLIC } from '../../tpm-sim/wire/structures.ts';
import { describeToolsFlow, type ToolsFlow, toolsTargets } from '../shared/tpm-server.ts';

const TOOLS = [
  'tpm2_getcap',
  'tpm2_pcrread',
  'tpm2_pcrextend',
  'tpm2_nvdefine',
  'tpm2_nvwrite',
  'tpm2_nvread',
  'tpm2_nvreadpublic',
  'tpm2_nvundefine',
  'tpm2_createprimary',
  'tpm2_create',
  'tpm2_load',
  'tpm2_unseal',
  'tpm2_sign',
  'tpm2_readpublic',
  'tpm2_startauthsession',
  'tpm2_flushcontext',
  'tpm2_readclock',
  'tpm2_testparms',
] as const;

/** TPM2_CC names (as `tpm2_getcap commands` prints them) this flow needs (docs/tpm.md A.5). */
const NEEDED_COMMANDS = [
  'PCR_Read',
  'PCR_Extend',
  'NV_DefineSpace',
  'NV_UndefineSpace',
  'NV_ReadPublic',
  'NV_Write',
  'NV_Read',
  'Unseal',
  'CreateLoaded',
  'Certify',
  'Quote',
  'PolicySecret',
  'PolicyGetDigest',
  'ReadClock',
  'TestParms',
  'StartAuthSession',
];

const NV_INDEX = '0x1500016';
const NV_ATTRS = 'ownerread|ownerwrite|authread|authwrite';
/** TPMA_NV of NV_ATTRS, before and after the first write (WRITTEN, 0x20000000). */
const NV_ATTRS_VALUE = 0x60006;
const NV_WRITTEN_VALUE = 0x20060006;

function sha(alg: 'sha1' | 'sha256', ...parts: Buffer[]): Buffer {
  const h = createHash(alg);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** `key: value` on its own line in tpm2-tools' YAML output (first match), or throws. */
function field(out: string, key: string): string {
  const m = new RegExp(`^\\s*${key}: (\\S+)\\s*$`, 'm').exec(out);
  if (!m?.[1]) throw new Error(`no "${key}:" line in:\n${out}`);
  return m[1];
}

/** PCR values from `tpm2_pcrread` output, by "bank:pcr", as lower-case hex. */
function pcrValues(out: string): Map<string, string> {
  const values = new Map<string, string>();
  let bank = '';
  for (const line of out.split('\n')) {
    const b = /^\s+(sha1|sha256|sha384|sha512):$/.exec(line);
    if (b) {
      bank = b[1]!;
      continue;
    }
    const v = /^\s+(\d+)\s*: 0x([0-9A-F]+)$/.exec(line);
    if (v) values.set(`${bank}:${v[1]}`, v[2]!.toLowerCase());
  }
  return values;
}

/** The Name of an NV index with SHA-256: 000b || SHA-256(TPMS_NV_PUBLIC) (Part 1 §16). */
function nvName(index: number, attributes: number, dataSize: number): string {
  const pub = marshal(TPMS_NV_PUBLIC, {
    nvIndex: index,
    nameAlg: 0x000b,
    attributes,
    authPolicy: Buffer.alloc(0),
    dataSize,
  });
  return `000b${sha('sha256', pub).toString('hex')}`;
}

function commandsFlow(f: ToolsFlow): void {
  const secret = `agent-secret-${randomBytes(4).toString('hex')}`;
  const msg = Buffer.concat([Buffer.from('prtlab interop message '), randomBytes(32)]);

  f.step('getcap-commands', 'getcap commands lists every command the new flows send', async () => {
    const out = (await f.tool('tpm2_getcap', 'commands')).stdout;
    const listed = new Set([...out.matchAll(/^TPM2_CC_(\w+):$/gm)].map((m) => m[1]));
    expect(NEEDED_COMMANDS.filter((cc) => !listed.has(cc))).toEqual([]);
  });

  f.step(
    'pcrread',
    'pcrread: fresh PCR 16 is zeros, DRTM PCR 17 is all ones, in both banks',
    async () => {
      const values = pcrValues((await f.tool('tpm2_pcrread', 'sha256:16,17+sha1:16')).stdout);
      expect(values.get('sha256:16')).toBe('00'.repeat(32));
      expect(values.get('sha256:17')).toBe('ff'.repeat(32));
      expect(values.get('sha1:16')).toBe('00'.repeat(20));
    },
  );

  f.step(
    'pcrextend',
    'pcrextend: PCR 16 becomes H(old || digest) in the banks given; PCR 17 refuses locality 0',
    async () => {
      const d256 = randomBytes(32);
      const d1 = randomBytes(20);
      const before = pcrValues((await f.tool('tpm2_pcrread', 'sha256:16+sha1:16')).stdout);
      await f.tool('tpm2_pcrextend', `16:sha256=${d256.toString('hex')}`);
      let after = pcrValues((await f.tool('tpm2_pcrread', 'sha256:16+sha1:16')).stdout);
      const expected256 = sha('sha256', Buffer.from(before.get('sha256:16')!, 'hex'), d256);
      expect(after.get('sha256:16')).toBe(expected256.toString('hex'));
      expect(after.get('sha1:16')).toBe(before.get('sha1:16'));
      await f.tool(
        'tpm2_pcrextend',
        `16:sha256=${d256.toString('hex')},sha1=${d1.toString('hex')}`,
      );
      after = pcrValues((await f.tool('tpm2_pcrread', 'sha256:16+sha1:16')).stdout);
      expect(after.get('sha256:16')).toBe(sha('sha256', expected256, d256).toString('hex'));
      const expected1 = sha('sha1', Buffer.from(before.get('sha1:16')!, 'hex'), d1);
      expect(after.get('sha1:16')).toBe(expected1.toString('hex'));
      const refused = await f.toolFails('tpm2_pcrextend', `17:sha256=${d256.toString('hex')}`);
      expect(refused.stderr).toContain('Esys_PCR_Extend(0x907)'); // TPM_RC_LOCALITY
    },
    { needs: ['pcrread'] },
  );

  f.step(
    'nvdefine',
    `nvdefine ${NV_INDEX} -C o -s 32: public area and Name as computed`,
    async () => {
      await f.tool('tpm2_nvdefine', NV_INDEX, '-C', 'o', '-s', '32', '-a', NV_ATTRS);
      const out = (await f.tool('tpm2_nvreadpublic', NV_INDEX)).stdout;
      expect(Number(field(out, 'value'))).toBe(0xb); // hash algorithm (first "value:" line)
      expect(out).toMatch(
        new RegExp(`^\\s+value: 0x${NV_ATTRS_VALUE.toString(16).toUpperCase()}$`, 'm'),
      );
      expect(field(out, 'size')).toBe('32');
      expect(field(out, 'name')).toBe(nvName(Number(NV_INDEX), NV_ATTRS_VALUE, 32));
    },
  );

  f.step(
    'nvwrite',
    'nvwrite / nvread round trip; the index is then WRITTEN and its Name changed',
    async () => {
      const data = Buffer.from('0123456789abcdef0123456789abcdef');
      await f.toolIn(data, 'tpm2_nvwrite', NV_INDEX, '-C', 'o', '-i', '-');
      await f.tool('tpm2_nvread', NV_INDEX, '-C', 'o', '-s', '32', '-o', 'nv.out');
      expect((await f.bytes('nv.out')).equals(data)).toBe(true);
      // The index authorizes itself too (authread, empty authValue).
      await f.tool('tpm2_nvread', NV_INDEX, '-s', '4', '--offset', '2', '-o', 'nv2.out');
      expect((await f.bytes('nv2.out')).toString()).toBe('2345');
      const out = (await f.tool('tpm2_nvreadpublic', NV_INDEX)).stdout;
      expect(out).toMatch(
        new RegExp(`^\\s+value: 0x${NV_WRITTEN_VALUE.toString(16).toUpperCase()}$`, 'm'),
      );
      expect(out).toContain('written');
      expect(field(out, 'name')).toBe(nvName(Number(NV_INDEX), NV_WRITTEN_VALUE, 32));
    },
    { needs: ['nvdefine'] },
  );

  f.step(
    'nv-restart',
    'an NV index and its data survive a TPM server restart',
    async () => {
      await f.server().restart!();
      await f.tool('tpm2_nvread', NV_INDEX, '-C', 'o', '-s', '32', '-o', 'nv3.out');
      expect((await f.bytes('nv3.out')).toString()).toBe('0123456789abcdef0123456789abcdef');
    },
    { needs: ['nvwrite'] },
  );

  f.step(
    'nvundefine',
    'nvundefine removes the index; reading its public area then fails with TPM_RC_HANDLE',
    async () => {
      await f.tool('tpm2_nvundefine', NV_INDEX, '-C', 'o');
      const gone = await f.toolFails('tpm2_nvreadpublic', NV_INDEX);
      expect(gone.stderr).toContain('(0x18B)');
    },
    { needs: ['nvdefine'] },
  );

  f.step('primary', 'createprimary -C o -G ecc for the sealing and session steps', async () => {
    await f.tool('tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', 'prim.ctx');
  });

  f.step(
    'seal',
    'create -i (sealed data object), load, unseal gives the secret back',
    async () => {
      await f.toolIn(
        secret,
        'tpm2_create',
        '-C',
        'prim.ctx',
        '-i',
        '-',
        '-u',
        'seal.pub',
        '-r',
        'seal.priv',
      );
      await f.tool(
        'tpm2_load',
        '-C',
        'prim.ctx',
        '-u',
        'seal.pub',
        '-r',
        'seal.priv',
        '-c',
        'seal.ctx',
      );
      expect((await f.tool('tpm2_unseal', '-c', 'seal.ctx')).stdout).toBe(secret);
    },
    { needs: ['primary'] },
  );

  f.step(
    'create-loaded',
    'create -c (TPM2_CreateLoaded): the loaded key signs; openssl verifies; the blob loads again',
    async () => {
      await writeFile(f.path('msg.bin'), msg);
      const made = await f.tool(
        'tpm2_create',
        ...['-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256', '-u', 'key.pub', '-r', 'key.priv'],
        ...['-c', 'key.ctx'],
      );
      expect(made.stdout).toMatch(/^attributes:\n\s+value: [a-z|]*sign[a-z|]*$/m);
      await f.tool(
        'tpm2_sign',
        '-c',
        'key.ctx',
        '-g',
        'sha256',
        '-f',
        'plain',
        '-o',
        'key.sig',
        'msg.bin',
      );
      await f.tool(
        'tpm2_readpublic',
        '-c',
        'key.ctx',
        '-f',
        'pem',
        '-o',
        'key.pem',
        '-n',
        'key.name',
      );
      const ok = await f.openssl(
        'dgst',
        '-sha256',
        '-verify',
        'key.pem',
        '-signature',
        'key.sig',
        'msg.bin',
      );
      expect(ok.stdout.trim()).toBe('Verified OK');
      const loaded = await f.tool(
        'tpm2_load',
        ...['-C', 'prim.ctx', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key2.ctx'],
      );
      expect(field(loaded.stdout, 'name')).toBe((await f.bytes('key.name')).toString('hex'));
    },
    { needs: ['primary'] },
  );

  f.step(
    'session',
    'startauthsession --hmac-session -c (salted, bound, AES-CFB): sign and unseal through it',
    async () => {
      await f.tool('tpm2_startauthsession', '--hmac-session', '-c', 'prim.ctx', '-S', 's.sess');
      // Sign's digest goes encrypted (continueSession|decrypt) ...
      await f.tool(
        'tpm2_sign',
        ...['-c', 'key.ctx', '-p', 'session:s.sess', '-g', 'sha256', '-f', 'plain'],
        ...['-o', 'key-s.sig', 'msg.bin'],
      );
      const ok = await f.openssl(
        'dgst',
        '-sha256',
        '-verify',
        'key.pem',
        '-signature',
        'key-s.sig',
        'msg.bin',
      );
      expect(ok.stdout.trim()).toBe('Verified OK');
      // ... and so does Unseal's answer (continueSession|encrypt).
      expect((await f.tool('tpm2_unseal', '-c', 'seal.ctx', '-p', 'session:s.sess')).stdout).toBe(
        secret,
      );
      await f.tool('tpm2_flushcontext', 's.sess');
    },
    { needs: ['seal', 'create-loaded'] },
  );

  f.step('readclock', 'readclock: time and clock advance; reset and restart counts', async () => {
    const a = (await f.tool('tpm2_readclock')).stdout;
    await new Promise((r) => setTimeout(r, 20));
    const b = (await f.tool('tpm2_readclock')).stdout;
    expect(Number(field(b, 'time'))).toBeGreaterThan(Number(field(a, 'time')));
    expect(Number(field(b, 'clock'))).toBeGreaterThan(Number(field(a, 'clock')));
    expect(Number(field(b, 'reset_count'))).toBe(Number(field(a, 'reset_count')));
    expect(field(b, 'restart_count')).toMatch(/^\d+$/);
    // swtpm reports the clock unsafe until an orderly shutdown; prtlab saves it with every change.
    expect(field(b, 'safe')).toMatch(/^(yes|no)$/);
  });

  f.step('testparms', 'testparms: RSA-2048, ECC P-256 and AES-128-CFB are supported', async () => {
    for (const parms of ['rsa2048', 'ecc256', 'aes128cfb', 'rsa2048:rsassa-sha256']) {
      await f.tool('tpm2_testparms', parms);
    }
  });
}

for (const target of toolsTargets) {
  describeToolsFlow('tpm2-tools PCR, NV, sealing, sessions', target, TOOLS, commandsFlow);
}
