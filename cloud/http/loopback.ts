/**
 * Listen-address policy: the cloud's endpoints trust whoever can reach them (the lab has no real
 * users to protect), so they bind to loopback unless the operator explicitly allows otherwise.
 * Same rule as `prtlab tpm serve`.
 */
import { BlockList, isIP } from 'node:net';
import { CloudConfigError } from '../errors.ts';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True for an address that never leaves the machine: 127.0.0.0/8, ::1 (also IPv4-mapped 127/8)
 * and the name 'localhost'. Other names are not resolved here, so they count as remote.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** Throws ERR_CLOUD_CONFIG for an empty host, or a non-loopback one unless allowRemote. */
export function checkListenHost(host: string, allowRemote: boolean): void {
  if (typeof host !== 'string') throw new TypeError('host must be a string');
  if (host === '') throw new CloudConfigError('host must not be empty');
  if (!allowRemote && !isLoopbackHost(host)) {
    throw new CloudConfigError(
      `refusing to listen on non-loopback address ${host}: the lab cloud issues tokens to anyone ` +
        'who can reach it (use --allow-remote to override)',
    );
  }
}

export function checkListenPort(port: number): void {
  if (typeof port !== 'number') throw new TypeError('port must be a number');
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CloudConfigError(`port must be an integer in 0..65535, got ${port}`);
  }
}
