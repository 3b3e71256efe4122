/**
 * The one place the cloud loads @peculiar/x509. That library resolves its internals through
 * tsyringe, which needs a Reflect metadata polyfill installed before the library is evaluated
 * (its README requires one); importing the polyfill first in this module guarantees the order for
 * every cloud module that goes through here. Crypto is passed explicitly on each call (node's
 * WebCrypto, backed by OpenSSL) instead of registering a global provider at import time.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

export { x509 };

/** The Crypto type @peculiar/x509 takes (the DOM one, which this project's lib setting omits). */
type X509Crypto = NonNullable<Parameters<typeof x509.X509CertificateGenerator.create>[1]>;

/** node:crypto's WebCrypto, typed as the provider @peculiar/x509's signatures expect. */
export const webCrypto = webcrypto as unknown as X509Crypto;
