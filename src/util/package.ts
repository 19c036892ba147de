/**
 * Where the pgark package is installed, and its package.json. Found by walking up from this
 * module's file: compiled, it is dist/src/util/package.js, bundled (scripts/bundle.mjs) a chunk in
 * dist/bundle, one level higher, so no fixed number of `..` fits both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRootAbove(dir: string): string {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'package.json'))) return at;
    if (dirname(at) === at) throw new Error(`no package.json above ${dir}`);
  }
}

/** Root of the pgark package: package.json, bin/, proto/ and node_modules live here. */
export const PACKAGE_ROOT = packageRootAbove(dirname(fileURLToPath(import.meta.url)));

export interface PackageJson {
  version: string;
  license: string;
  description: string;
}

let pkg: PackageJson | undefined;
/** pgark's package.json, read once. */
export function packageJson(): PackageJson {
  return (pkg ??= JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageJson);
}
