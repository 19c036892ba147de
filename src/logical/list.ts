/** `pgark logical list`: every dump of the scope (or of the whole store without one), newest first. */
import { UserError } from '../util/errors.js';
import { listDumps } from './catalog.js';
import { readLocation, type LocationFlags } from './backup-env.js';
import { formatAge, formatBytes } from '../util/format.js';
import { openLocation } from './restore-run.js';
import { IssueList } from './settings.js';
import { LOGICAL_DIR } from './keys.js';

export async function listLogical(flags: LocationFlags, json: boolean, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const issues = new IssueList();
  const where = readLocation(flags, env, issues);
  issues.throwIfAny('logical backup settings are incomplete');
  if (!where) throw new UserError('logical backup settings are incomplete');
  const store = await openLocation(where.location);
  try {
    const dumps = await listDumps(store, `${where.scope}/${LOGICAL_DIR}/`);
    const now = Date.now();
    if (json) {
      const rows = dumps.map((d) => ({
        key: d.key,
        kind: d.kind,
        database: d.database ?? null,
        format: d.format,
        codec: d.codec,
        size: d.size,
        takenAt: d.takenAt.toISOString(),
        ageSeconds: Math.floor((now - d.takenAt.getTime()) / 1000),
        complete: d.metaKey !== undefined,
      }));
      process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
      return;
    }
    if (dumps.length === 0) {
      process.stdout.write(`no logical dumps under ${where.scope}/${LOGICAL_DIR}/ in ${store.displayUrl}\n`);
      return;
    }
    for (const d of dumps) {
      const status = d.metaKey ? '' : d.database === undefined ? '  (operator dump: no checksum)' : '  (incomplete: no sidecar)';
      process.stdout.write(`${d.takenAt.toISOString()}  ${formatAge(now - d.takenAt.getTime()).padStart(7)} old  ${formatBytes(d.size).padStart(10)}  ${d.key}${status}\n`);
    }
  } finally {
    await store.close();
  }
}
