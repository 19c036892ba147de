/**
 * Which modules a pgark process loaded, for the tests that hold commands to a light start: a
 * preload (NODE_OPTIONS=--import) records every module file as the process loads it (ES modules
 * through a load hook) and, as it exits, the CommonJS files in require's cache. A file of
 * scripts/bundle.mjs's bundle stands for the modules its source map names, so the answer is the
 * same whether the process ran the bundle or dist/src.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The variable naming the file the preload appends to. */
export const TRACE_OUT = 'PGARK_TEST_MODULE_TRACE';

/** Writes the preload into `dir`; returns the NODE_OPTIONS value that loads it. */
export function modulePreload(dir: string): string {
  const file = join(dir, 'module-trace.mjs');
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
const out = process.env.${TRACE_OUT};
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(\${JSON.stringify(out)}, url + '\\\\n');
  return next(url, context);
}\`));
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => appendFileSync(out, Object.keys(cache).map((f) => 'file://' + f + '\\n').join('')));
`,
  );
  return `--import=${pathToFileURL(file).href}`;
}

/** The module files a traced process loaded, bundle files expanded into their sources. */
export function tracedModules(out: string): string[] {
  const files = new Set(
    readFileSync(out, 'utf8')
      .split('\n')
      .filter((url) => url.startsWith('file:'))
      .map((url) => fileURLToPath(url)),
  );
  return [...files].flatMap((file) => {
    if (!file.includes('/dist/bundle/')) return [file];
    const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] };
    return map.sources.map((source) => resolve(dirname(file), source));
  });
}

/** The npm packages among `modules`. */
export function packagesOf(modules: string[]): string[] {
  return [...new Set(modules.map((m) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(m)?.[1]).filter((p): p is string => p !== undefined))];
}
