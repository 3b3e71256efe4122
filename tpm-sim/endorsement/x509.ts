/**
 * The one place tpm-sim loads @peculiar/x509. The library resolves its internals through tsyringe,
 * which needs the Reflect metadata polyfill loaded first, so it is imported here before the
 * library. Crypto is passed on each call (node's WebCrypto) instead of being registered globally.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export { x509 };

/** The Crypto type @peculiar/x509 takes (the DOM one, which this project's lib setting omits). */
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;

/** node:crypto's WebCrypto, typed as the provider @peculiar/x509's signatures expect. */
export const webCrypto = webcrypto as unknown as X509Crypto;

/** ECDSA P-256 with SHA-256: what the manufacturer CA signs with. */
export const ECDSA_P256_SHA256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
