/**
 * `pgark barman-cloud install DIR`: puts the nine drop-ins into DIR (an image's /usr/local/bin, a
 * directory early on PATH) as symbolic links to pgark's bin/barman-cloud/<name>. Running it again
 * changes nothing; a name in DIR that is not a pgark drop-in (barman's own script, say) is replaced
 * only with --force, and without it nothing at all is changed.
 */
import { lstatSync, mkdirSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from '../../util/package.js';
import { UserError } from '../../util/errors.js';

export interface InstallResult {
  linked: string[];
  unchanged: string[];
  replaced: string[];
}

/** The launcher every drop-in resolves to. */
const LAUNCHER = join(PACKAGE_ROOT, 'bin', 'pgark');

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

export function installDropins(dir: string, names: readonly string[], force: boolean): InstallResult {
  const target = resolve(dir);
  mkdirSync(target, { recursive: true });
  const launcher = realpathSync(LAUNCHER);
  const result: InstallResult = { linked: [], unchanged: [], replaced: [] };
  const foreign: string[] = [];
  const plan: { name: string; path: string; exists: boolean }[] = [];
  for (const name of names) {
    const path = join(target, name);
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) {
      plan.push({ name, path, exists: false });
    } else if (st.isSymbolicLink() && realpathOrUndefined(path) === launcher) {
      result.unchanged.push(name);
    } else {
      foreign.push(path);
      plan.push({ name, path, exists: true });
    }
  }
  if (foreign.length > 0 && !force) {
    throw new UserError(`${foreign.join(', ')} ${foreign.length > 1 ? 'exist and are' : 'exists and is'} not a pgark drop-in; nothing was changed`, 'pass --force to replace them, or install into another directory earlier on PATH');
  }
  for (const { name, path, exists } of plan) {
    // A link made beside the name and renamed over it: the name never goes missing for a running caller.
    const temp = join(target, `.${name}.pgark-${process.pid}`);
    rmSync(temp, { force: true });
    symlinkSync(join(PACKAGE_ROOT, 'bin', 'barman-cloud', name), temp);
    renameSync(temp, path);
    (exists ? result.replaced : result.linked).push(name);
  }
  return result;
}

/** `pgark barman-cloud install DIR`: one line per name, what was done. */
export function installCommand(dir: string, names: readonly string[], force: boolean): void {
  const r = installDropins(dir, names, force);
  for (const n of r.linked) process.stdout.write(`linked   ${join(resolve(dir), n)}\n`);
  for (const n of r.replaced) process.stdout.write(`replaced ${join(resolve(dir), n)}\n`);
  for (const n of r.unchanged) process.stdout.write(`kept     ${join(resolve(dir), n)}\n`);
}
