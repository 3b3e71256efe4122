/** The sealed-at-rest store for the software TPM's persistent state. */
export { atomicCreateFile, atomicWriteFile, removeStaleTempFiles } from './atomic-write.ts';
export { isStateError, StateError, type StateErrorCode } from './errors.ts';
export { KeyFileSource } from './key-file-source.ts';
export {
  type GetKeyOptions,
  KEY_BYTES,
  KEY_SOURCE_KINDS,
  type KeySource,
  type KeySourceKind,
} from './key-source.ts';
export {
  MAX_SEALED_FILE_BYTES,
  MAX_STATE_BYTES,
  readSealed,
  sealingKeyId,
  sealState,
  unsealState,
  writeSealed,
} from './sealed-file.ts';
export { SecretServiceSource, type SecretServiceSourceOptions } from './secret-service-source.ts';
export {
  LOCK_FILE_NAME,
  MANIFEST_FILE_NAME,
  readStateManifest,
  STATE_FILE_NAME,
  type StateManifest,
  StateStore,
  type StateStoreOptions,
} from './state-store.ts';
