/**
 * Recovery writes only into directories that are empty or absent (seed: "Initial Bootstrap
 * Only"): the data directory and every tablespace location. On failure it removes exactly what
 * it created, so a refused or failed recovery leaves the machine as it found it.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../util/errors.js';

export function assertEmptyOrAbsent(dir: string, what: string): void {
  const path = resolve(dir);
  if (!existsSync(path)) return;
  if (!statSync(path).isDirectory()) throw new UserError(`${what} ${path} exists and is not a directory`, 'point it at an empty or absent directory');
  const entries = readdirSync(path);
  if (entries.length === 0) return;
  const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, ... (${entries.length} entries)` : '');
  throw new UserError(
    `${what} ${path} is not empty (${shown}); recovery only bootstraps a new cluster (Initial Bootstrap Only)`,
    'recover into an empty or absent directory; pgark never overwrites an existing data directory',
  );
}

/** Directories to clean up if the recovery fails: removed when created by us, emptied when they existed empty. */
export class CreatedDirectories {
  private readonly entries: { path: string; existed: boolean }[] = [];

  track(path: string): void {
    this.entries.push({ path: resolve(path), existed: existsSync(path) });
  }

  removeAll(): void {
    for (const { path, existed } of this.entries) {
      if (!existsSync(path)) continue;
      if (existed) for (const name of readdirSync(path)) rmSync(resolve(path, name), { recursive: true, force: true });
      else rmSync(path, { recursive: true, force: true });
    }
  }
}
