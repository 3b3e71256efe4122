/**
 * Where the cloud keeps its state. Everything lives under `<data>/cloud`, a directory that must
 * belong to the current user with mode 0700, because it holds private keys (CA, TLS, token
 * signing) and the directory database with password hashes:
 *
 *   <data>/cloud/directory.sqlite     tenant, users, groups, devices, applications, token records
 *   <data>/cloud/ca/lab-ca.pem        lab root CA certificate (clients trust this file)
 *   <data>/cloud/ca/lab-ca.key        its private key (0600)
 *   <data>/cloud/ca/device-ca.pem     CN=MS-Organization-Access, issues device certificates
 *   <data>/cloud/ca/device-ca.key     its private key (0600)
 *   <data>/cloud/tls/server.pem       HTTPS server key and certificate chain in one file (0600)
 *   <data>/cloud/keys/token-signing.pem   RS256 token-signing key (0600)
 *   <data>/cloud/keys/token-signing.crt   its certificate from the lab CA (for x5c/x5t)
 *
 * The data directory is `--data DIR`, else $PRTLAB_HOME, else ./.prtlab.
 */
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { errnoCode, type FsError, formatMode, withFsErrors } from '../lib/fs/errors.ts';
import {
  checkPrivateDir as checkDir,
  ensurePrivateDir as ensureDir,
} from '../lib/fs/private-dir.ts';
import { CloudStateError } from './errors.ts';

export { DEFAULT_DATA_DIR_NAME, resolveDataDir } from '../lib/data-dir.ts';
export { errnoCode } from '../lib/fs/errors.ts';

/** Absolute paths of the cloud's files for one data directory. */
export interface CloudPaths {
  readonly data: string;
  readonly root: string;
  readonly directoryDb: string;
  readonly caDir: string;
  readonly labCaCert: string;
  readonly labCaKey: string;
  readonly deviceCaCert: string;
  readonly deviceCaKey: string;
  readonly tlsDir: string;
  readonly serverPem: string;
  readonly keysDir: string;
  readonly tokenSigningKey: string;
  readonly tokenSigningCert: string;
}

export const CA_DIR_NAME = 'ca';
export const LAB_CA_CERT = 'lab-ca.pem';
export const LAB_CA_KEY = 'lab-ca.key';
export const DEVICE_CA_CERT = 'device-ca.pem';
export const DEVICE_CA_KEY = 'device-ca.key';

export function cloudPaths(dataDir: string): CloudPaths {
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw new TypeError('dataDir must be a non-empty path');
  }
  const data = resolve(dataDir);
  const root = join(data, 'cloud');
  const caDir = join(root, CA_DIR_NAME);
  const tlsDir = join(root, 'tls');
  const keysDir = join(root, 'keys');
  return Object.freeze({
    data,
    root,
    directoryDb: join(root, 'directory.sqlite'),
    caDir,
    labCaCert: join(caDir, LAB_CA_CERT),
    labCaKey: join(caDir, LAB_CA_KEY),
    deviceCaCert: join(caDir, DEVICE_CA_CERT),
    deviceCaKey: join(caDir, DEVICE_CA_KEY),
    tlsDir,
    serverPem: join(tlsDir, 'server.pem'),
    keysDir,
    tokenSigningKey: join(keysDir, 'token-signing.pem'),
    tokenSigningCert: join(keysDir, 'token-signing.crt'),
  });
}

/**
 * Creates (if needed) and checks `<data>/cloud` and its `tls/` and `keys/` subdirectories; `ca/`
 * is created whole by the PKI code, which checks it the same way. Fails with ERR_CLOUD_STATE.
 */
export async function ensureCloudDirs(dataDir: string): Promise<CloudPaths> {
  const paths = cloudPaths(dataDir);
  try {
    // The data directory itself may be shared with other components; only create it if missing.
    await mkdir(paths.data, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw ioFailure('create the data directory', paths.data, err);
  }
  for (const dir of [paths.root, paths.tlsDir, paths.keysDir]) await ensurePrivateDir(dir);
  return paths;
}

/**
 * Creates `dir` with mode 0700 if missing, then refuses it unless it is a real directory (not a
 * symlink), owned by the current user, with no group or other access: anyone else who could read
 * it could copy the private keys, and anyone who could write it could swap them.
 */
export const ensurePrivateDir = withFsErrors((dir: string) => ensureDir(dir), cloudDirError);

/** The checks of ensurePrivateDir, without creating anything. */
export const checkPrivateDir = withFsErrors(checkDir, cloudDirError);

/** A failed file-system call as ERR_CLOUD_STATE, keeping the original as `cause`. */
export function ioFailure(what: string, path: string, err: unknown): CloudStateError {
  const code = errnoCode(err);
  return new CloudStateError(`cannot ${what} ${path}${code ? ` (${code})` : ''}`, { cause: err });
}

/**
 * A refusal or failure from lib/fs as ERR_CLOUD_STATE, in the cloud's words: with the fix where
 * there is one. `kind` says whether the path was read as a file or checked as a directory.
 */
export function cloudFsError(err: FsError, kind: 'file' | 'directory'): CloudStateError {
  const { path, failure } = err;
  switch (failure.reason) {
    case 'symlink':
      return new CloudStateError(
        kind === 'file'
          ? `${path} is a symbolic link; point the cloud at the real file`
          : `${path} is a symbolic link; the cloud's directories must be real`,
        { cause: err.cause },
      );
    case 'mode':
      return new CloudStateError(
        kind === 'file'
          ? `${path} has mode ${formatMode(failure.mode)}, which lets group or others read a private key; run: chmod 600 ${path}`
          : `${path} has mode ${formatMode(failure.mode)}, which lets group or others in; run: chmod 700 ${path}`,
      );
    default:
      // Not a regular file or directory, another owner, too large, "cannot <op> <path> (ERRNO)":
      // the neutral wording is the cloud's own.
      return new CloudStateError(err.message, { cause: err.cause });
  }
}

function cloudDirError(err: FsError): CloudStateError {
  return cloudFsError(err, 'directory');
}
