/** `pgark logical list`: every dump of the scope (or of the whole store without one), newest first. */
import { UserError } from '../util/errors.js';
import { listDumps, type DumpEntry } from './catalog.js';
import { readLocation, type LocationFlags } from './backup-env.js';
import { openLocation } from './restore-steps.js';
import { IssueList } from './settings.js';
import { LOGICAL_DIR } from './keys.js';

export interface LogicalListing {
  /** The folder listed: <scope>/<LOGICAL_DIR>/. */
  folder: string;
  displayUrl: string;
  dumps: DumpEntry[];
}

export async function listLogical(flags: LocationFlags, env: NodeJS.ProcessEnv = process.env): Promise<LogicalListing> {
  const issues = new IssueList();
  const where = readLocation(flags, env, issues);
  issues.throwIfAny('logical backup settings are incomplete');
  if (!where) throw new UserError('logical backup settings are incomplete');
  const store = await openLocation(where.location);
  try {
    const folder = `${where.scope}/${LOGICAL_DIR}/`;
    return { folder, displayUrl: store.displayUrl, dumps: await listDumps(store, folder) };
  } finally {
    await store.close();
  }
}
