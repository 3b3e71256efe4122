/**
 * Which TPM a device uses, as `--tpm` names it:
 *
 *   builtin                        prtlab's simulator, its state sealed in the device directory
 *   swtpm[:host=H,port=P]          a TPM over TCP with swtpm's raw framing (swtpm, prtlab tpm serve)
 *   mssim[:host=H,port=P]          a TPM over TCP with the MS simulator framing
 *   device[:/dev/tpmrm0]           a kernel TPM device (Linux)
 *   none                           no TPM: software keys sealed with the OS keystore
 *
 * The TCP forms follow the tpm2-tss TCTI option syntax (host 127.0.0.1 and port 2321 when left out).
 */
import { AgentDeviceError } from './errors.ts';

export type TpmSpec =
  | { readonly kind: 'builtin' }
  | { readonly kind: 'swtpm' | 'mssim'; readonly host: string; readonly port: number }
  | { readonly kind: 'device'; readonly path: string }
  | { readonly kind: 'none' };

export const DEFAULT_TPM_HOST = '127.0.0.1';
export const DEFAULT_TPM_PORT = 2321;
export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[?[0-9A-Fa-f:.]+\]?)$/;

function bad(text: string, why: string): AgentDeviceError {
  return new AgentDeviceError(
    `bad --tpm '${text}': ${why} (builtin, swtpm:host=H,port=P, mssim:host=H,port=P, device:PATH or none)`,
  );
}

/** Parses a --tpm value; anything unexpected is ERR_AGENT_DEVICE naming the problem. */
export function parseTpmSpec(text: string): TpmSpec {
  if (typeof text !== 'string') throw new TypeError('the TPM spec must be a string');
  const colon = text.indexOf(':');
  const kind = colon < 0 ? text : text.slice(0, colon);
  const rest = colon < 0 ? undefined : text.slice(colon + 1);
  switch (kind) {
    case 'builtin':
    case 'none':
      if (rest !== undefined) throw bad(text, `${kind} takes no options`);
      return { kind };
    case 'device': {
      const path = rest ?? DEFAULT_TPM_DEVICE;
      if (!path.startsWith('/') || path.includes('\0'))
        throw bad(text, 'the device path must be absolute');
      return { kind, path };
    }
    case 'swtpm':
    case 'mssim': {
      let host = DEFAULT_TPM_HOST;
      let port = DEFAULT_TPM_PORT;
      const seen = new Set<string>();
      for (const option of rest === undefined || rest === '' ? [] : rest.split(',')) {
        const eq = option.indexOf('=');
        const key = eq < 0 ? option : option.slice(0, eq);
        const value = eq < 0 ? '' : option.slice(eq + 1);
        if (seen.has(key)) throw bad(text, `${key} given twice`);
        seen.add(key);
        if (key === 'host') {
          if (!HOST.test(value)) throw bad(text, 'host must be a host name or an IP address');
          host = value.replace(/^\[(.*)\]$/, '$1');
        } else if (key === 'port') {
          const max = kind === 'mssim' ? 65534 : 65535;
          port = Number(value);
          if (!/^\d{1,5}$/.test(value) || port < 1 || port > max) {
            throw bad(text, `port must be 1..${max}`);
          }
        } else {
          throw bad(text, `unknown option '${key}'`);
        }
      }
      return { kind, host, port };
    }
    default:
      throw bad(text, `unknown TPM kind '${kind}'`);
  }
}

/** The canonical text of a spec (what device.json records and status shows). */
export function formatTpmSpec(spec: TpmSpec): string {
  switch (spec.kind) {
    case 'builtin':
    case 'none':
      return spec.kind;
    case 'device':
      return `device:${spec.path}`;
    default:
      return `${spec.kind}:host=${spec.host},port=${spec.port}`;
  }
}
