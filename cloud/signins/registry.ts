/**
 * One sign-in store per cloud, shared by the token service (writer) and the Graph route
 * (reader): opened on first use at `<data>/cloud/signins.sqlite`, or the store a caller set.
 * A store opened here is flushed and closed when the cloud closes; a caller's store stays the
 * caller's to close.
 */
import { join } from 'node:path';
import type { CloudServices } from '../services.ts';
import { SIGNINS_DB_NAME, SignInStore } from './store.ts';

const stores = new WeakMap<CloudServices, SignInStore>();

/** Makes `store` the sign-in store of `cloud` (tests, embedding). */
export function setSignInStore(cloud: CloudServices, store: SignInStore): void {
  stores.set(cloud, store);
}

export function signInStoreFor(cloud: CloudServices): SignInStore {
  let s = stores.get(cloud);
  if (!s) {
    const opened = new SignInStore(join(cloud.paths.root, SIGNINS_DB_NAME));
    stores.set(cloud, opened);
    cloud.onClose(() => {
      opened.close();
      if (stores.get(cloud) === opened) stores.delete(cloud);
    });
    s = opened;
  }
  return s;
}
