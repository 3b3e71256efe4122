/**
 * Choosing the scheme of a command that uses a key with a caller-given inScheme: TPM2_Sign
 * (Part 3 §20.2; the reference's CryptSelectSignScheme) and TPM2_RSA_Encrypt / TPM2_RSA_Decrypt
 * (Part 3 §14.2, §14.3; CryptRsaSelectScheme). Both apply the same rule; each caller then checks
 * that the result is a scheme it can run and answers TPM_RC_SCHEME otherwise.
 */
import { TPM_ALG } from '../wire/constants.ts';
import type { Scheme } from '../wire/structures.ts';

/**
 * The key's own scheme unless it is TPM_ALG_NULL, in which case the caller's (which may be NULL
 * too). When both name a scheme they must agree in scheme and hash; undefined when they do not.
 */
export function mergeSchemes(own: Scheme, requested: Scheme): Scheme | undefined {
  if (own.scheme === TPM_ALG.NULL) return requested;
  if (requested.scheme === TPM_ALG.NULL) return own;
  return own.scheme === requested.scheme && own.hashAlg === requested.hashAlg
    ? requested
    : undefined;
}
