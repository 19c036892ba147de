/**
 * How to read the server: from its data directory on this host, or streamed with BASE_BACKUP.
 */
import { realpath } from 'node:fs/promises';
import type { ServerFacts } from './types.js';
import { UserError } from '../util/errors.js';

export type BackupMethod = 'auto' | 'local' | 'remote';

async function sameDirectory(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([realpath(a).catch(() => a), realpath(b).catch(() => b)]);
  return ra === rb;
}

/**
 * auto: local when --pgdata/PGDATA names the server's own data directory (so pgark is on the
 * server's host), remote otherwise.
 */
export async function chooseMethod(requested: BackupMethod, pgdata: string | undefined, facts: ServerFacts): Promise<'local' | 'remote'> {
  const isServerDir = pgdata !== undefined && (await sameDirectory(pgdata, facts.pgdata));
  if (requested === 'remote') return 'remote';
  if (requested === 'local') {
    if (!pgdata) throw new UserError('--method local needs the data directory', 'pass --pgdata or set PGDATA');
    if (!isServerDir) {
      throw new UserError(`--pgdata ${pgdata} is not the data directory of the server (${facts.pgdata})`, 'point --pgdata at the server\'s data directory, or use --method remote');
    }
    return 'local';
  }
  return isServerDir ? 'local' : 'remote';
}
