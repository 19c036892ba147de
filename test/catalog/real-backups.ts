/** Real backups of a real PostgreSQL for the retention tests that restore what retention kept. */
import { archiveCurrentWal, backupOrigin, insertBatch, type Origin } from '../recovery/helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes `count` backups of `origin`, inserting batch i before backup i, then inserts batch
 * count + 1 and waits until its WAL is archived. Returns the backup ids, oldest first.
 */
export async function takeBackups(origin: Origin, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= count; i++) {
    if (i > 1) await sleep(1100); // backup IDs have one-second resolution
    await insertBatch(origin.pg, i);
    ids.push(await backupOrigin(origin));
  }
  await insertBatch(origin.pg, count + 1);
  await archiveCurrentWal(origin.pg);
  return ids;
}
