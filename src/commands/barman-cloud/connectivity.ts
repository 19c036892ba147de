/**
 * -t/--test of every drop-in, and the check-wal-archive's first step: open the store and reach it.
 * Exit 0 when the endpoint answers (a missing bucket included, as barman's head_bucket test), 2
 * when it cannot be reached, 3 when the arguments name a store pgark cannot use, 4 otherwise.
 */
import { applyAwsProfile, resolveBarmanStore, type BarmanStoreArgs } from '../../config/barman-env.js';
import type { ObjectStore } from '../../storage/types.js';
import { EXIT, exitForError, testConnectivity, type BarmanLog } from './common.js';

/** The opened store and whether its bucket exists, or the exit code after logging why not. */
export async function reachStore(args: BarmanStoreArgs, log: BarmanLog): Promise<{ store: ObjectStore; bucketExists: boolean } | { exit: number }> {
  let store: ObjectStore | undefined;
  try {
    const resolved = resolveBarmanStore(args);
    applyAwsProfile(resolved);
    const { openObjectStore } = await import('../../storage/open.js');
    store = await openObjectStore(resolved.options);
    return { store, bucketExists: await testConnectivity(store, resolved.serverName) };
  } catch (err) {
    await store?.close();
    const exit = exitForError(err);
    log.error(exit === EXIT.network ? `Can't connect to cloud provider: ${(err as Error).message}` : `Barman cloud exception: ${(err as Error).message}`);
    return { exit };
  }
}

export async function connectivityOnly(args: BarmanStoreArgs, log: BarmanLog): Promise<number> {
  const r = await reachStore(args, log);
  if ('exit' in r) return r.exit;
  await r.store.close();
  return EXIT.ok;
}
