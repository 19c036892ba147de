/**
 * barman-cloud-check-wal-archive as pgark (contract §2.2): reach the store (exit 2 when it cannot
 * be reached; -t stops there), pass on a missing bucket, then refuse a WAL archive that already
 * holds WAL files with barman's own message, which CloudNativePG's documentation quotes:
 * "WAL archive check failed for server <server>: Expected empty archive" (exit 1).
 */
import { archivedWalFiles } from '../../wal/list.js';
import { findArchivedWal } from '../../wal/empty-check.js';
import { reachStore } from './connectivity.js';
import { EXIT, exitForError, storeArgs, type BarmanInvocation } from './common.js';

export async function checkWalArchive(inv: BarmanInvocation): Promise<number> {
  const { values, log } = inv;
  const args = storeArgs(values, 'destination_url');
  const reached = await reachStore(args, log);
  if ('exit' in reached) return reached.exit;
  const { store, bucketExists } = reached;
  try {
    // barman <= 3.16.0 passes on a missing bucket; the first wal-archive then needs the bucket to exist.
    if (values.test || !bucketExists) return EXIT.ok;
    const timeline = typeof values.timeline === 'number' ? values.timeline : undefined;
    let problem: string | undefined;
    if (timeline === undefined) {
      if ((await findArchivedWal(store, args.serverName)).timelines.length > 0) problem = 'Expected empty archive';
    } else {
      let n = 0;
      for await (const wal of archivedWalFiles(store, args.serverName)) if (wal.timeline >= timeline) n++;
      if (n > 0) problem = `Found ${n} file${n > 1 ? 's' : ''} in WAL archive equal to or newer than timeline ${timeline}`;
    }
    if (!problem) return EXIT.ok;
    log.error(`WAL archive check failed for server ${args.serverName}: ${problem}`);
    return EXIT.operation;
  } catch (err) {
    log.error(`Barman cloud WAL archive check exception: ${(err as Error).message}`);
    return exitForError(err);
  } finally {
    await store.close();
  }
}
