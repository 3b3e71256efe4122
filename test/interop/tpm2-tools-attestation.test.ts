/**
 * tpm2-tools 5.4 attestation flows: the TCG default EKs (`tpm2_createek`), an AK made under the
 * EK with its policy session (`tpm2_createak`: StartAuthSession(POLICY), PolicySecret on the
 * endorsement hierarchy, Create and Load authorized by the policy), quotes checked by
 * `tpm2_checkquote`, `tpm2_certify` checked by openssl, and the EK certificates in NV. Run against
 * Debian's swtpm (the reference) and `prtlab tpm serve` through both TCTIs.
 *
 * A bare swtpm (no swtpm_setup) has no EK certificates; prtlab's TPM has them from the lab's TPM
 * manufacturer CA, so the certificate steps differ by target (`hasEkCertificates`).
 *
 * Tool behaviour met on the way (tpm2-tools 5.4):
 *   - `tpm2_createek -u` and `tpm2_createak -u` write TPM2B_PUBLIC (tss format) files.
 *   - `tpm2_quote -m` writes the TPMS_ATTEST that was signed, `-s` its TPMT_SIGNATURE, `-o` the
 *     PCR values read right after; `tpm2_checkquote` needs no TPM.
 *   - `tpm2_certify -o` writes TPMS_ATTEST; `-f plain -s` a DER ECDSA signature openssl reads;
 *     5.4 has no option for qualifying data.
 *   - `tpm2_checkquote` refuses `-T` ("tool doesn't support the TCTI option").
 *   - `tpm2_print -t TPMS_ATTEST` does not know certify attestations, so they are parsed here.
 *   - `tpm2_getekcertificate` with no URL reads the RSA and then the ECC EK certificate from NV,
 *     one per `-o`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'vitest';
import { unmarshal } from '../../tpm-sim/wire/codec.ts';
import { TPM_GENERATED_VALUE, TPM_ST } from '../../tpm-sim/wire/constants.ts';
import {
  type CertifyInfo,
  type QuoteInfo,
  TPM2B_PUBLIC,
  TPMS_ATTEST,
} from '../../tpm-sim/wire/structures.ts';
import { describeToolsFlow, type ToolsFlow, toolsTargets } from '../shared/tpm-server.ts';

const TOOLS = [
  'tpm2_createek',
  'tpm2_createak',
  'tpm2_createprimary',
  'tpm2_create',
  'tpm2_readpublic',
  'tpm2_pcrextend',
  'tpm2_quote',
  'tpm2_checkquote',
  'tpm2_certify',
  'tpm2_getekcertificate',
  'tpm2_nvread',
  'tpm2_nvreadpublic',
  'tpm2_flushcontext',
] as const;

/** TPM2B_PUBLIC file -> the public area's marshalled bytes (what the Name hashes). */
function publicBytes(file: Buffer): Buffer {
  unmarshal(TPM2B_PUBLIC, file);
  return file.subarray(2);
}

function attestationFlow(f: ToolsFlow): void {
  const nonce = randomBytes(16).toString('hex');

  for (const alg of ['ecc', 'rsa'] as const) {
    f.step(
      `createek-${alg}`,
      `createek -G ${alg}: the TCG default EK, the same key each time`,
      async () => {
        await f.tool('tpm2_createek', '-c', `ek-${alg}.ctx`, '-G', alg, '-u', `ek-${alg}.pub`);
        await f.tool('tpm2_createek', '-c', `ek-${alg}-2.ctx`, '-G', alg, '-u', `ek-${alg}-2.pub`);
        const a = await f.bytes(`ek-${alg}.pub`);
        const b = await f.bytes(`ek-${alg}-2.pub`);
        expect(a.equals(b)).toBe(true);
        const pub = unmarshal(TPM2B_PUBLIC, a);
        // Template L-1 / L-2: fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt.
        expect(pub.objectAttributes).toBe(0x300b2);
        expect(pub.authPolicy.toString('hex')).toBe(
          '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
        );
        await f.tool('tpm2_readpublic', '-c', `ek-${alg}.ctx`, '-f', 'pem', '-o', `ek-${alg}.pem`);
      },
    );
  }

  f.step(
    'createak',
    'createak under the ECC EK (policy session with PolicySecret on the endorsement hierarchy)',
    async () => {
      const out = await f.tool(
        'tpm2_createak',
        ...['-C', 'ek-ecc.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa'],
        ...['-u', 'ak.pub', '-n', 'ak.name'],
      );
      expect(out.stdout).toMatch(/^loaded-key:\n\s+name: 000b[0-9a-f]{64}$/m);
      const ak = unmarshal(TPM2B_PUBLIC, await f.bytes('ak.pub'));
      // fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign
      expect(ak.objectAttributes).toBe(0x50072);
      const name = await f.bytes('ak.name');
      const expected = Buffer.concat([
        Buffer.from([0, 0x0b]),
        createHash('sha256')
          .update(publicBytes(await f.bytes('ak.pub')))
          .digest(),
      ]);
      expect(name.equals(expected)).toBe(true);
      await f.tool('tpm2_readpublic', '-c', 'ak.ctx', '-f', 'pem', '-o', 'ak.pem');
    },
    { needs: ['createek-ecc'] },
  );

  f.step(
    'quote',
    'quote sha256:0,16 with a nonce; checkquote accepts it and refuses another nonce',
    async () => {
      await f.tool('tpm2_pcrextend', `16:sha256=${randomBytes(32).toString('hex')}`);
      await f.tool(
        'tpm2_quote',
        ...['-c', 'ak.ctx', '-l', 'sha256:0,16', '-q', nonce, '-g', 'sha256'],
        ...['-m', 'quote.msg', '-s', 'quote.sig', '-o', 'quote.pcrs'],
      );
      const attest = unmarshal(TPMS_ATTEST, await f.bytes('quote.msg'));
      expect(attest.magic).toBe(TPM_GENERATED_VALUE);
      expect(attest.type).toBe(TPM_ST.ATTEST_QUOTE);
      expect(attest.extraData.toString('hex')).toBe(nonce);
      expect((attest.attested as QuoteInfo).pcrSelect).toEqual([
        { hash: 0x0b, pcrSelect: Buffer.from([0x01, 0x00, 0x01]) },
      ]);
      const check = await f.offline(
        'tpm2_checkquote',
        ...['-u', 'ak.pub', '-m', 'quote.msg', '-s', 'quote.sig', '-f', 'quote.pcrs'],
        ...['-g', 'sha256', '-q', nonce],
      );
      expect(check.stdout).toMatch(/^pcrs:\n\s+sha256:\n\s+0 : 0x0{64}\n\s+16: 0x[0-9A-F]{64}$/m);
      const other = `${nonce.slice(0, -2)}${nonce.endsWith('00') ? '01' : '00'}`;
      await f.offlineFails(
        'tpm2_checkquote',
        ...['-u', 'ak.pub', '-m', 'quote.msg', '-s', 'quote.sig', '-f', 'quote.pcrs'],
        ...['-g', 'sha256', '-q', other],
      );
    },
    { needs: ['createak'] },
  );

  f.step(
    'certify',
    'certify: the AK attests a key is loaded; openssl verifies; the attested Name is the key’s',
    async () => {
      await f.tool('tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', 'prim.ctx');
      await f.tool(
        'tpm2_create',
        ...['-C', 'prim.ctx', '-G', 'ecc256:ecdsa-sha256', '-u', 'key.pub', '-r', 'key.priv'],
        ...['-c', 'key.ctx'],
      );
      await f.tool('tpm2_readpublic', '-c', 'key.ctx', '-n', 'key.name', '-o', 'key.tpub');
      await f.tool(
        'tpm2_certify',
        ...['-C', 'ak.ctx', '-c', 'key.ctx', '-g', 'sha256'],
        ...['-o', 'attest.out', '-s', 'attest.sig', '-f', 'plain'],
      );
      const ok = await f.opensslRun(
        ...['dgst', '-sha256', '-verify', 'ak.pem', '-signature', 'attest.sig', 'attest.out'],
      );
      expect(`${ok.stdout}${ok.stderr}`.trim()).toBe('Verified OK');
      const attest = unmarshal(TPMS_ATTEST, await f.bytes('attest.out'));
      expect(attest.magic).toBe(TPM_GENERATED_VALUE);
      expect(attest.type).toBe(TPM_ST.ATTEST_CERTIFY);
      const info = attest.attested as CertifyInfo;
      expect(info.name.equals(await f.bytes('key.name'))).toBe(true);
      expect(attest.qualifiedSigner.subarray(0, 2).toString('hex')).toBe('000b');
    },
    { needs: ['createak'] },
  );

  if (f.target.hasEkCertificates) {
    f.step(
      'ek-certificate',
      'getekcertificate reads both EK certificates from NV; they chain to the lab CA and hold the EKs',
      async () => {
        await f.tool('tpm2_getekcertificate', '-o', 'ek-rsa.der', '-o', 'ek-ecc.der');
        const ca = join(f.server().manufacturerDir!, 'ca.pem');
        for (const alg of ['rsa', 'ecc'] as const) {
          await f.openssl(
            'x509',
            '-inform',
            'der',
            '-in',
            `ek-${alg}.der`,
            '-out',
            `ek-${alg}.crt`,
          );
          const verified = await f.openssl('verify', '-CAfile', ca, `ek-${alg}.crt`);
          expect(verified.stdout.trim()).toBe(`ek-${alg}.crt: OK`);
          const certKey = await f.openssl('x509', '-in', `ek-${alg}.crt`, '-noout', '-pubkey');
          expect(certKey.stdout.trim()).toBe((await f.bytes(`ek-${alg}.pem`)).toString().trim());
          const text = (await f.openssl('x509', '-in', `ek-${alg}.crt`, '-noout', '-text')).stdout;
          expect(text).toContain(
            'DirName:/2.23.133.2.1=id:5052544C+2.23.133.2.2=prtlab sim+2.23.133.2.3=id:00000001',
          );
          expect(text).toContain(alg === 'rsa' ? 'Key Encipherment' : 'Key Agreement');
        }
        // The same bytes through tpm2_nvread, authorized by the owner.
        await f.tool('tpm2_nvread', '0x01c0000a', '-C', 'o', '-o', 'ek-ecc-nv.der');
        expect((await f.bytes('ek-ecc-nv.der')).equals(await f.bytes('ek-ecc.der'))).toBe(true);
      },
      { needs: ['createek-ecc', 'createek-rsa'] },
    );
  } else {
    f.step('ek-certificate', 'a bare swtpm has no EK certificate in NV', async () => {
      const none = await f.toolFails('tpm2_nvreadpublic', '0x01c00002');
      expect(none.stderr).toContain('(0x18B)');
    });
  }
}

for (const target of toolsTargets) {
  describeToolsFlow('tpm2-tools EK, AK and attestation', target, TOOLS, attestationFlow);
}
