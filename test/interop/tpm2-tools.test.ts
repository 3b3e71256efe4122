/**
 * Acceptance flow: Debian's tpm2-tools 5.4 (and openssl, as an independent verifier) drive a TPM
 * server over TCP on 127.0.0.1. The same flow runs against every entry of `targets`.
 *
 * It runs against Debian's swtpm (the reference), then against `prtlab tpm serve` through both
 * TCTIs (`prtlabTargets`). The command-line contract those targets rely on:
 *
 *   node bin/prtlab.js tpm serve --host 127.0.0.1 --port P --state DIR --key-file DIR/key
 *
 *   - run from the repository root after `npm run build` (global-setup builds once);
 *   - stays in the foreground; TPM commands on 127.0.0.1:P, accepting both raw TPM framing (swtpm
 *     TCTI) and MS-simulator TPM_SEND_COMMAND framing (mssim TCTI); the platform/control channel
 *     on 127.0.0.1:P+1, accepting MS platform commands (POWER_ON, NV_ON, ... answered u32 0) and
 *     swtpm CMD_SET_LOCALITY (docs/tpm.md B.4);
 *   - "ready" means both ports accept TCP connections; nothing is read from stdout;
 *   - the TPM is usable without TPM2_Startup from the client (the server does Startup(CLEAR), like
 *     swtpm's `--flags startup-clear`; tpm2-tools never send Startup), also after a mssim POWER_ON;
 *   - DIR does not exist on first start: the server creates it (0700) and keeps its sealed TPM
 *     state there;
 *   - DIR/key does not exist on first start: the server creates it (the sealing key, mode 0600)
 *     and reuses it on later starts;
 *   - SIGTERM makes it exit within 5 s with its state on disk; a new process with the same
 *     --port, --state and --key-file keeps persistent handles and the hierarchy seeds, so
 *     `tpm2_createprimary` with the same template gives the same key again;
 *   - PRTLAB_HOME points at a scratch dir, so nothing touches ./.prtlab.
 *
 * Without a resource manager tpm2-tools leak transient objects (every ContextLoad and every
 * CreatePrimary stays loaded; docs/tpm.md A.6) and the TPM has only 3 object slots, so the flow
 * runs `tpm2_flushcontext -t` after every tool.
 *
 * Tool quirks met on the way (tpm2-tools 5.4, OpenSSL 3.0, swtpm 0.7.1):
 *   - `tpm2_sign -f plain` writes an ECDSA signature as DER (and RSASSA as the raw 256-byte
 *     signature), which `openssl dgst -verify` accepts; `-f der` is rejected by 5.4.
 *   - `tpm2_verifysignature -f ecdsa` reads that plain/DER signature back.
 *   - `openssl dgst -verify` prints "Verified OK" (exit 0) or "Verification failure" (exit 1).
 *   - `openssl dgst -mac HMAC` prints "HMAC-SHA2-256(<file>)= <hex>" in OpenSSL 3.
 *   - `tpm2_getrandom --hex` and `tpm2_hmac --hex` print no trailing newline.
 *   - Context files written by createprimary/load do not survive a TPM restart: swtpm restarts
 *     with Startup(CLEAR), and ContextLoad of an old file fails with 0x1DF (integrity check
 *     failed); tpm2_load then also prints misleading follow-up errors ("Unable to read PEM ...").
 *     Hence the restart step re-creates the primary and reloads the old key blobs under it.
 *   - `tpm2_import -G ecc -i` takes the SEC1 PEM ("BEGIN EC PRIVATE KEY") that
 *     `openssl ecparam -genkey -noout` writes; the public half for openssl comes from
 *     `openssl ec -pubout`.
 *   - A TPM error response exits 1, like many tool-side errors (bad files, bad contexts); only
 *     stderr tells them apart ("Esys_VerifySignature(0x2DB)"), so negative checks match that.
 *   - `tpm2_evictcontrol -C o -c 0x81000010` (no second handle) removes a persistent object.
 *   - `tpm2_getcap handles-*` prints one "- 0x..." line per handle and nothing when empty.
 *   - The mssim TCTI cannot drive swtpm (its platform port speaks another protocol; A.2).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import {
  dependentSteps,
  type ToolsServer,
  type ToolsTarget,
  toolsTargets,
} from '../shared/tpm-server.ts';
import { stopAllServers } from './helpers/swtpm.ts';
import {
  openssl,
  opensslRun,
  type RunResult,
  type Tpm2Tool,
  tpm2,
  tpm2Run,
} from './helpers/tools.ts';

const PERSISTENT = '0x81000010';

const SIGN_ATTRS = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';
const DECRYPT_ATTRS = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|decrypt';

/** TPM2_CC names (as `tpm2_getcap commands` prints them) that this flow needs (docs/tpm.md A.5). */
const NEEDED_COMMANDS = [
  'GetCapability',
  'GetRandom',
  'StartAuthSession',
  'CreatePrimary',
  'Create',
  'Load',
  'ContextLoad',
  'ContextSave',
  'FlushContext',
  'ReadPublic',
  'Hash',
  'Sign',
  'VerifySignature',
  'RSA_Encrypt',
  'RSA_Decrypt',
  'Import',
  'HMAC',
  'EvictControl',
];

/** `key: value` on its own line in tpm2-tools' YAML output (first match), or throws. */
function field(out: string, key: string): string {
  const m = new RegExp(`^\\s*${key}: (\\S+)\\s*$`, 'm').exec(out);
  if (!m?.[1]) throw new Error(`no "${key}:" line in:\n${out}`);
  return m[1];
}

/** The public part of an ECC key as printed by createprimary/readpublic/import: "x:y". */
function eccPoint(out: string): string {
  const x = field(out, 'x');
  const y = field(out, 'y');
  expect(x).toMatch(/^[0-9a-f]{64}$/);
  expect(y).toMatch(/^[0-9a-f]{64}$/);
  return `${x}:${y}`;
}

function rsaModulus(out: string): string {
  const n = field(out, 'rsa');
  expect(n).toMatch(/^[0-9a-f]{512}$/);
  return n;
}

function persistentHandles(out: string): string[] {
  return [...out.matchAll(/^- (0x[0-9a-fA-F]{8})$/gm)].map((m) => m[1]!.toLowerCase());
}

/** Registers the whole flow as one sequential describe block for `target`. */
export function runToolsFlow(target: ToolsTarget): void {
  describe.sequential(`tpm2-tools against ${target.name}`, () => {
    let server: ToolsServer | undefined;
    let work = '';
    let tcti = '';
    let msg: Buffer = Buffer.alloc(0);
    // Filled in by earlier steps, checked by later ones.
    let primaryEcc = '';
    let primaryRsa = '';

    const opts = () => ({ tcti, cwd: work });
    const path = (name: string) => join(work, name);
    const bytes = (name: string) => readFile(path(name));

    /** Runs a tool that must succeed, then flushes the transient objects it left loaded. */
    async function tpm(tool: Tpm2Tool, ...args: string[]): Promise<RunResult> {
      const res = await tpm2(tool, args, opts());
      await flush();
      return res;
    }
    /** Runs a tool that must fail (exit code != 0), then flushes transients. */
    async function tpmFails(tool: Tpm2Tool, ...args: string[]): Promise<RunResult> {
      const res = await tpm2Run(tool, args, opts());
      await flush();
      expect(res.timedOut, `${tool} timed out`).toBe(false);
      expect(res.code, `${tool} ${args.join(' ')} was expected to fail`).not.toBe(0);
      return res;
    }
    async function flush(): Promise<void> {
      await tpm2('tpm2_flushcontext', ['-t'], opts());
    }
    const ssl = (...args: string[]) => openssl(args, { cwd: work });

    /** openssl verifies `sig` over `msgFile` with the public key in `pem`; a tampered copy fails. */
    async function opensslVerifies(pem: string, sig: string, msgFile = 'msg.bin'): Promise<void> {
      const ok = await opensslRun(['dgst', '-sha256', '-verify', pem, '-signature', sig, msgFile], {
        cwd: work,
      });
      expect(`${ok.stdout}${ok.stderr}`.trim()).toBe('Verified OK');
      expect(ok.code).toBe(0);
      const bad = await opensslRun(
        ['dgst', '-sha256', '-verify', pem, '-signature', sig, 'tampered.bin'],
        { cwd: work },
      );
      expect(bad.stdout).toContain('Verification failure');
      expect(bad.code).not.toBe(0);
    }

    /** One `it` of the flow, run only when the steps it `needs` passed (dependentSteps). */
    const step = dependentSteps();

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'prtlab-tools-'));
      msg = Buffer.concat([Buffer.from('prtlab interop message '), randomBytes(48)]);
      const tampered = Buffer.from(msg);
      tampered[0]! ^= 0x01;
      await writeFile(path('msg.bin'), msg);
      await writeFile(path('tampered.bin'), tampered);
      server = await target.start();
      tcti = target.tcti(server.port);
    });

    afterAll(async () => {
      try {
        await server?.stop();
      } finally {
        server = undefined;
        await stopAllServers();
        if (work) await rm(work, { recursive: true, force: true });
      }
    });

    step('getrandom', 'getrandom --hex 16 returns 16 fresh random bytes', async () => {
      const a = (await tpm('tpm2_getrandom', '--hex', '16')).stdout.trim();
      const b = (await tpm('tpm2_getrandom', '--hex', '16')).stdout.trim();
      expect(a).toMatch(/^[0-9a-f]{32}$/);
      expect(b).toMatch(/^[0-9a-f]{32}$/);
      expect(a).not.toBe(b);
    });

    step('getcap-algorithms', 'getcap algorithms lists the algorithms the flow uses', async () => {
      const out = (await tpm('tpm2_getcap', 'algorithms')).stdout;
      const listed = new Set([...out.matchAll(/^(\w+):$/gm)].map((m) => m[1]));
      const needed = ['rsa', 'ecc', 'keyedhash', 'sha256', 'hmac', 'aes', 'cfb'];
      needed.push('ecdsa', 'rsassa', 'oaep');
      expect(needed.filter((alg) => !listed.has(alg))).toEqual([]);
    });

    step('getcap-commands', 'getcap commands lists every command the tools send', async () => {
      const out = (await tpm('tpm2_getcap', 'commands')).stdout;
      const listed = new Set([...out.matchAll(/^TPM2_CC_(\w+):$/gm)].map((m) => m[1]));
      expect(NEEDED_COMMANDS.filter((cc) => !listed.has(cc))).toEqual([]);
    });

    step(
      'getcap-properties',
      'getcap properties-fixed: TPM 2.0 family, at least 3 transient slots',
      async () => {
        const out = (await tpm('tpm2_getcap', 'properties-fixed')).stdout;
        expect(out).toMatch(/^TPM2_PT_FAMILY_INDICATOR:\n\s+raw: 0x322E3000\n\s+value: "2\.0"$/m);
        const m = /^TPM2_PT_HR_TRANSIENT_MIN:\n\s+raw: (0x[0-9A-Fa-f]+)$/m.exec(out);
        expect(m, 'TPM2_PT_HR_TRANSIENT_MIN').not.toBeNull();
        expect(Number(m![1])).toBeGreaterThanOrEqual(3);
      },
    );

    step(
      'getcap-persistent-fresh',
      'getcap handles-persistent: a fresh TPM does not have 0x81000010',
      async () => {
        const res = await tpm('tpm2_getcap', 'handles-persistent');
        expect(persistentHandles(res.stdout)).not.toContain(PERSISTENT);
      },
    );

    step('getcap-pcrs', 'getcap pcrs: a SHA-256 bank with PCRs 0-23', async () => {
      const out = (await tpm('tpm2_getcap', 'pcrs')).stdout;
      expect(out).toMatch(/^selected-pcrs:$/m);
      const bank = /^\s+- sha256: \[([\d, ]*)\]$/m.exec(out);
      expect(bank, 'sha256 bank').not.toBeNull();
      const pcrs = bank![1]!.split(',').map((s) => Number(s.trim()));
      expect(pcrs).toEqual(Array.from({ length: 24 }, (_, i) => i));
    });

    step('getcap-curves', 'getcap ecc-curves: NIST P-256', async () => {
      const out = (await tpm('tpm2_getcap', 'ecc-curves')).stdout;
      expect(out).toMatch(/^TPM2_ECC_NIST_P256: 0x3$/m);
    });

    step('primaries', 'createprimary -C o: ECC P-256 and RSA-2048 storage primaries', async () => {
      const ecc = (await tpm('tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', 'primary_ecc.ctx'))
        .stdout;
      expect(ecc).toMatch(/^name-alg:\n\s+value: sha256\n\s+raw: 0xb$/m);
      expect(ecc).toMatch(/^attributes:\n\s+value: [a-z|]+\n\s+raw: 0x30072$/m);
      expect(ecc).toMatch(/^curve-id:\n\s+value: NIST p256$/m);
      primaryEcc = eccPoint(ecc);

      const rsa = (await tpm('tpm2_createprimary', '-C', 'o', '-G', 'rsa', '-c', 'primary_rsa.ctx'))
        .stdout;
      expect(rsa).toMatch(/^attributes:\n\s+value: [a-z|]+\n\s+raw: 0x30072$/m);
      expect(field(rsa, 'bits')).toBe('2048');
      primaryRsa = rsaModulus(rsa);
      expect((await stat(path('primary_ecc.ctx'))).size).toBeGreaterThan(0);
      expect((await stat(path('primary_rsa.ctx'))).size).toBeGreaterThan(0);
    });

    step(
      'create',
      'create: ECC P-256 signing key and RSA-2048 decryption key',
      async () => {
        const ecc = await tpm(
          'tpm2_create',
          ...['-C', 'primary_ecc.ctx', '-G', 'ecc256:ecdsa-sha256', '-a', SIGN_ATTRS],
          ...['-u', 'ecc.pub', '-r', 'ecc.priv'],
        );
        expect(ecc.stdout).toMatch(
          new RegExp(`^attributes:\\n\\s+value: ${escapeRegExp(SIGN_ATTRS)}$`, 'm'),
        );
        eccPoint(ecc.stdout);
        const rsa = await tpm(
          'tpm2_create',
          ...['-C', 'primary_rsa.ctx', '-G', 'rsa2048:oaep-sha256', '-a', DECRYPT_ATTRS],
          ...['-u', 'rsa.pub', '-r', 'rsa.priv'],
        );
        expect(rsa.stdout).toMatch(
          new RegExp(`^attributes:\\n\\s+value: ${escapeRegExp(DECRYPT_ATTRS)}$`, 'm'),
        );
        rsaModulus(rsa.stdout);
        for (const f of ['ecc.pub', 'ecc.priv', 'rsa.pub', 'rsa.priv']) {
          expect((await stat(path(f))).size, f).toBeGreaterThan(0);
        }
      },
      { needs: ['primaries'] },
    );

    step(
      'ecc-sign',
      'load + sign -f plain (ECDSA); openssl verifies with the exported PEM',
      async () => {
        const load = await tpm(
          'tpm2_load',
          ...['-C', 'primary_ecc.ctx', '-u', 'ecc.pub', '-r', 'ecc.priv', '-c', 'ecc.ctx'],
        );
        expect(field(load.stdout, 'name')).toMatch(/^000b[0-9a-f]{64}$/);
        await tpm(
          'tpm2_sign',
          ...['-c', 'ecc.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'ecc.sig', 'msg.bin'],
        );
        expect((await bytes('ecc.sig'))[0]).toBe(0x30); // DER SEQUENCE
        await tpm('tpm2_readpublic', '-c', 'ecc.ctx', '-f', 'pem', '-o', 'ecc.pem');
        expect((await readFile(path('ecc.pem'), 'utf8')).trim()).toMatch(
          /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----$/,
        );
        await opensslVerifies('ecc.pem', 'ecc.sig');
      },
      { needs: ['create'] },
    );

    step(
      'verifysignature',
      'verifysignature accepts the signature and rejects a tampered message',
      async () => {
        await tpm(
          'tpm2_verifysignature',
          ...['-c', 'ecc.ctx', '-g', 'sha256', '-m', 'msg.bin', '-s', 'ecc.sig', '-f', 'ecdsa'],
          ...['-t', 'ticket.bin'],
        );
        expect((await stat(path('ticket.bin'))).size).toBeGreaterThan(0);
        const bad = await tpmFails(
          'tpm2_verifysignature',
          ...['-c', 'ecc.ctx', '-g', 'sha256', '-f', 'ecdsa'],
          ...['-m', 'tampered.bin', '-s', 'ecc.sig'],
        );
        // TPM_RC_SIGNATURE for parameter 2, as from swtpm (not a tool-side failure).
        expect(bad.stderr).toContain('Esys_VerifySignature(0x2DB)');
      },
      { needs: ['ecc-sign'] },
    );

    step(
      'salted-session',
      'startauthsession --hmac-session (salted and bound, AES-CFB parameter encryption) then sign',
      async () => {
        // ECC tpmKey: the salt is an ephemeral point and KDFe; RSA tpmKey: OAEP with "SECRET".
        for (const [primary, sess] of [
          ['primary_ecc.ctx', 'ecc.sess'],
          ['primary_rsa.ctx', 'rsa.sess'],
        ] as const) {
          await tpm('tpm2_startauthsession', '--hmac-session', '-c', primary, '-S', sess);
          // Sign's digest goes encrypted (attributes continueSession|decrypt).
          await tpm(
            'tpm2_sign',
            ...['-c', 'ecc.ctx', '-p', `session:${sess}`, '-g', 'sha256', '-f', 'plain'],
            ...['-o', 'ecc-salted.sig', 'msg.bin'],
          );
          await opensslVerifies('ecc.pem', 'ecc-salted.sig');
          await tpm('tpm2_flushcontext', sess);
        }
      },
      { needs: ['ecc-sign'] },
    );

    step(
      'rsa-oaep',
      'rsaencrypt / rsadecrypt (OAEP) round trip',
      async () => {
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_rsa.ctx', '-u', 'rsa.pub', '-r', 'rsa.priv', '-c', 'rsa.ctx'],
        );
        await tpm('tpm2_rsaencrypt', '-c', 'rsa.ctx', '-s', 'oaep', '-o', 'enc.bin', 'msg.bin');
        const enc = await bytes('enc.bin');
        expect(enc.length).toBe(256);
        expect(enc.includes(msg.subarray(0, 16))).toBe(false);
        await tpm('tpm2_rsadecrypt', '-c', 'rsa.ctx', '-s', 'oaep', '-o', 'dec.bin', 'enc.bin');
        expect((await bytes('dec.bin')).equals(msg)).toBe(true);
      },
      { needs: ['create'] },
    );

    step(
      'rsassa',
      'RSASSA-SHA256 key: sign -f plain; openssl verifies',
      async () => {
        await tpm(
          'tpm2_create',
          ...['-C', 'primary_rsa.ctx', '-G', 'rsa2048:rsassa-sha256', '-a', SIGN_ATTRS],
          ...['-u', 'rsassa.pub', '-r', 'rsassa.priv'],
        );
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_rsa.ctx', '-u', 'rsassa.pub', '-r', 'rsassa.priv', '-c', 'rsassa.ctx'],
        );
        await tpm(
          'tpm2_sign',
          ...['-c', 'rsassa.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'rsassa.sig', 'msg.bin'],
        );
        expect((await bytes('rsassa.sig')).length).toBe(256);
        await tpm('tpm2_readpublic', '-c', 'rsassa.ctx', '-f', 'pem', '-o', 'rsassa.pem');
        await opensslVerifies('rsassa.pem', 'rsassa.sig');
      },
      { needs: ['primaries'] },
    );

    step(
      'import-hmac',
      'import an external HMAC key; tpm2_hmac equals openssl HMAC-SHA256',
      async () => {
        await ssl('rand', '-out', 'hmac.key', '32');
        const key = await bytes('hmac.key');
        expect(key.length).toBe(32);
        await tpm(
          'tpm2_import',
          ...['-C', 'primary_rsa.ctx', '-G', 'hmac', '-i', 'hmac.key'],
          ...['-u', 'hmac.pub', '-r', 'hmac.priv'],
        );
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_rsa.ctx', '-u', 'hmac.pub', '-r', 'hmac.priv', '-c', 'hmac.ctx'],
        );
        const tpmMac = (
          await tpm('tpm2_hmac', '-c', 'hmac.ctx', '-g', 'sha256', '--hex', 'msg.bin')
        ).stdout.trim();
        expect(tpmMac).toMatch(/^[0-9a-f]{64}$/);
        const ref = await ssl(
          ...['dgst', '-sha256', '-mac', 'HMAC', '-macopt', `hexkey:${key.toString('hex')}`],
          'msg.bin',
        );
        const m = /= ([0-9a-f]{64})$/m.exec(ref.stdout);
        expect(m, ref.stdout).not.toBeNull();
        expect(tpmMac).toBe(m![1]);
      },
      { needs: ['primaries'] },
    );

    step(
      'import-ecc',
      'import an external ECC P-256 PEM key; TPM signature verifies with the PEM',
      async () => {
        await ssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ext_ecc.pem');
        await ssl('ec', '-in', 'ext_ecc.pem', '-pubout', '-out', 'ext_ecc.pub.pem');
        await tpm(
          'tpm2_import',
          ...['-C', 'primary_ecc.ctx', '-G', 'ecc', '-i', 'ext_ecc.pem'],
          ...['-u', 'ext_ecc.tpm.pub', '-r', 'ext_ecc.tpm.priv'],
        );
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_ecc.ctx', '-u', 'ext_ecc.tpm.pub', '-r', 'ext_ecc.tpm.priv'],
          ...['-c', 'ext_ecc.ctx'],
        );
        await tpm(
          'tpm2_sign',
          ...['-c', 'ext_ecc.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'ext_ecc.sig', 'msg.bin'],
        );
        await opensslVerifies('ext_ecc.pub.pem', 'ext_ecc.sig');
      },
      { needs: ['primaries'] },
    );

    step(
      'persist',
      `evictcontrol persists the ECC primary at ${PERSISTENT}`,
      async () => {
        const res = await tpm('tpm2_evictcontrol', '-C', 'o', '-c', 'primary_ecc.ctx', PERSISTENT);
        expect(field(res.stdout, 'persistent-handle')).toBe(PERSISTENT);
        expect(field(res.stdout, 'action')).toBe('persisted');
      },
      { needs: ['primaries'] },
    );

    step(
      'readpublic-persistent',
      `readpublic ${PERSISTENT} shows the ECC primary`,
      async () => {
        const res = await tpm('tpm2_readpublic', '-c', PERSISTENT);
        expect(eccPoint(res.stdout)).toBe(primaryEcc);
      },
      { needs: ['persist'] },
    );

    step(
      'getcap-persistent-lists',
      `getcap handles-persistent lists ${PERSISTENT}`,
      async () => {
        const res = await tpm('tpm2_getcap', 'handles-persistent');
        expect(persistentHandles(res.stdout)).toContain(PERSISTENT);
      },
      { needs: ['persist'] },
    );

    step(
      'restart',
      'restart: persistent handle, primaries and old key blobs survive',
      async () => {
        await server!.restart!();
        const persisted = await tpm('tpm2_readpublic', '-c', PERSISTENT);
        expect(eccPoint(persisted.stdout)).toBe(primaryEcc);

        // Same template, same seed: the re-created primaries are the same keys as before ...
        const ecc = await tpm(
          'tpm2_createprimary',
          ...['-C', 'o', '-G', 'ecc', '-c', 'primary_ecc2.ctx'],
        );
        expect(eccPoint(ecc.stdout)).toBe(primaryEcc);
        const rsa = await tpm(
          'tpm2_createprimary',
          ...['-C', 'o', '-G', 'rsa', '-c', 'primary_rsa2.ctx'],
        );
        expect(rsaModulus(rsa.stdout)).toBe(primaryRsa);

        // ... so blobs created before the restart load under them and hold the same keys.
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_ecc2.ctx', '-u', 'ecc.pub', '-r', 'ecc.priv', '-c', 'ecc2.ctx'],
        );
        await tpm(
          'tpm2_sign',
          ...['-c', 'ecc2.ctx', '-g', 'sha256', '-f', 'plain', '-o', 'ecc2.sig', 'msg.bin'],
        );
        await opensslVerifies('ecc.pem', 'ecc2.sig');
        await tpm(
          'tpm2_load',
          ...['-C', 'primary_rsa2.ctx', '-u', 'rsa.pub', '-r', 'rsa.priv', '-c', 'rsa2.ctx'],
        );
        await tpm('tpm2_rsadecrypt', '-c', 'rsa2.ctx', '-s', 'oaep', '-o', 'dec2.bin', 'enc.bin');
        expect((await bytes('dec2.bin')).equals(msg)).toBe(true);
      },
      { needs: ['persist', 'ecc-sign', 'rsa-oaep'] },
    );

    step(
      'evict',
      `evictcontrol removes ${PERSISTENT}`,
      async () => {
        const res = await tpm('tpm2_evictcontrol', '-C', 'o', '-c', PERSISTENT);
        expect(field(res.stdout, 'persistent-handle')).toBe(PERSISTENT);
        expect(field(res.stdout, 'action')).toBe('evicted');
        const list = await tpm('tpm2_getcap', 'handles-persistent');
        expect(persistentHandles(list.stdout)).not.toContain(PERSISTENT);
        const gone = await tpmFails('tpm2_readpublic', '-c', PERSISTENT);
        expect(gone.stderr).toContain('(0x18B)'); // TPM_RC_HANDLE, handle 1
      },
      { needs: ['persist'] },
    );

    step('flush', 'flushcontext -t leaves no transient object and no loaded session', async () => {
      // CreatePrimary without a flush afterwards: the primary stays loaded (A.6) ...
      await tpm2('tpm2_createprimary', ['-C', 'o', '-G', 'ecc', '-c', 'leak.ctx'], opts());
      // ... until flushcontext -t.
      await tpm2('tpm2_flushcontext', ['-t'], opts());
      const transient = await tpm2('tpm2_getcap', ['handles-transient'], opts());
      expect(transient.stdout.trim()).toBe('');
      const sessions = await tpm2('tpm2_getcap', ['handles-loaded-session'], opts());
      expect(sessions.stdout.trim()).toBe('');
    });
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[|.*+?^${}()[\]\\]/g, '\\$&');
}

for (const target of toolsTargets) runToolsFlow(target);
