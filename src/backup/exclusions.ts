/**
 * Which PGDATA and tablespace paths a local backup stores, with barman's rules
 * (barman/postgres_plumbing.py, barman/fs.py path_allowed) so that a pgark backup holds exactly
 * the files a barman-cloud backup would. Paths are relative to the directory being copied,
 * POSIX-style, without a leading "./".
 *
 * Rule syntax (rsync-like): a rule starting with "/" is anchored at the root, otherwise it
 * matches any suffix made of whole path components; "*" matches within one component.
 */
import { GENERATED_SOURCE_MANIFEST, RECOVERY_LOG, RUNTIME_DIR_NAME } from '../util/cnpg.js';

/** Excluded only under PGDATA (barman's PGDATA_EXCLUDE_LIST). global/pg_control is added last, separately. */
export const PGDATA_EXCLUDES = ['/pg_log/*', '/log/*', '/pg_xlog/*', '/pg_wal/*', '/global/pg_control'];

/** Excluded everywhere (barman's EXCLUDE_LIST, itself PostgreSQL's excludeFiles/excludeDirContents). */
export const COMMON_EXCLUDES = [
  'pgsql_tmp*',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'pg_internal.init',
  'postmaster.pid',
  'postmaster.opts',
  'recovery.conf',
  'standby.signal',
  'pg_dynshmem/*',
  'pg_notify/*',
  'pg_replslot/*',
  'pg_serial/*',
  'pg_stat_tmp/*',
  'pg_snapshots/*',
  'pg_subtrans/*',
];

function ruleToRegExp(rule: string): RegExp {
  const anchored = rule.startsWith('/');
  const body = (anchored ? rule.slice(1) : rule)
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  return new RegExp(`${anchored ? '^' : '(?:^|/)'}${body}$`);
}

export interface PathFilter {
  /** True when the path (relative, no leading "./") is stored. Rules are matched on whole paths, so a
   * "dir/*" rule also drops everything below dir's children, as barman's os.walk filter does. */
  allows(path: string): boolean;
}

/** barman's path_allowed: an include match wins, then an exclude match rejects, else accepted. */
export function pathFilter(exclude: string[], include: string[] = []): PathFilter {
  const ex = exclude.map(ruleToRegExp);
  const inc = include.map(ruleToRegExp);
  const matches = (res: RegExp[], path: string) => res.some((re) => re.test(path));
  return {
    allows(path) {
      // A path below an excluded directory entry is excluded too: check every ancestor.
      const parts = path.split('/');
      for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        if (matches(inc, prefix)) continue;
        if (matches(ex, prefix)) return false;
      }
      return true;
    },
  };
}

/**
 * pgark's own files in PGDATA are never backed up: the WAL runtime directory (sockets, spool
 * markers) and what a recovery leaves (its server log, which a BASE_BACKUP would otherwise carry
 * into the next generation, the generated source manifest, and the backup_manifest of the backup
 * the server was restored from: each backup appends its own, and PostgreSQL's BASE_BACKUP leaves
 * the old one out too).
 */
export const PGARK_EXCLUDES = [`/${RUNTIME_DIR_NAME}`, `/${RECOVERY_LOG}`, `/${GENERATED_SOURCE_MANIFEST}`, '/backup_manifest'];

/** The PGDATA filter: barman's lists plus the tablespace links and any tablespace stored inside PGDATA. */
export function pgdataFilter(tablespaceOids: number[], tablespaceDirsInsidePgdata: string[]): PathFilter {
  return pathFilter([
    ...PGDATA_EXCLUDES,
    ...PGARK_EXCLUDES,
    ...COMMON_EXCLUDES,
    ...tablespaceOids.map((oid) => `/pg_tblspc/${oid}`),
    ...tablespaceDirsInsidePgdata.map((d) => `/${d}`),
  ]);
}

/** A tablespace directory keeps only this major's PG_<major>_* folder (barman's include rule). */
export function tablespaceFilter(major: number): PathFilter {
  return pathFilter(['/*', ...COMMON_EXCLUDES], [`/PG_${major}_*`]);
}
