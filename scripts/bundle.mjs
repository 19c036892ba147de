#!/usr/bin/env node
// Bundles the compiled program (dist/src) into dist/bundle, which bin/pgark.js runs when it is at
// least as new as dist/src (so a plain `tsc` never leaves a stale bundle in use).
//
// Why: Node 20 has no module compile cache, and its ES module loader costs about a millisecond a
// file. `pgark backup list` loaded 241 files (zod 95, yaml 72, pgark 66, commander 8) and took
// 0.40-0.47 CPU s; bundled, 0.30 s. Every pgark command, WAL daemon, backup child and codec worker
// starts that way (docs/architecture.md "How the program is loaded").
//
// Entries are flat and keep the names other code finds them by: a module locates the daemon, the
// backup child and the codec workers as siblings of its own file (`import.meta.url`), which in the
// bundle is a chunk in the same directory. Packages stay external (loaded from node_modules as
// before) except the small pure ones every command loads; the cloud SDKs, gRPC and the native
// codecs are loaded on demand, and bundling them saved nothing measurable (their cost is running
// their modules, not finding them).
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const OUT = 'dist/bundle';
const BUNDLED_PACKAGES = new Set(['zod', 'yaml', 'commander', 'tar-stream']);

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const external = Object.keys(pkg.dependencies).filter((name) => !BUNDLED_PACKAGES.has(name));

/**
 * zod's namespace re-exports every locale it ships (`z.locales`), so the bundle held all 64 of them:
 * 361 of the 811 KB chunk every command that reads a manifest loads and compiles. pgark's messages are
 * English and it never reads z.locales, so that namespace keeps `en` alone.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[/\\]zod[/\\]/.test(args.importer) ? { path: join(args.resolveDir, '../locales/index.js'), namespace: 'zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: join(args.path, '..'),
    }));
  },
};

rmSync(OUT, { recursive: true, force: true });
await build({
  entryPoints: {
    cli: 'dist/src/cli/main.js',
    'barman-cloud': 'dist/src/cli/barman-cloud/main.js',
    'wal-client': 'dist/src/wal/client.js',
    'finish-recovery': 'dist/src/cli/finish-recovery.js',
    gc: 'dist/src/util/gc.js',
    'daemon-main': 'dist/src/wal/daemon-main.js',
    'backup-child': 'dist/src/agent/backup-child.js',
    'decode-worker': 'dist/src/codec/decode-worker.js',
    'compress-worker': 'dist/src/codec/compress-worker.js',
  },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: [...external, ...external.map((name) => `${name}/*`)],
  // CommonJS code inside the bundle (tar-stream's) requires Node's built-ins through this.
  banner: { js: "import { createRequire as __pgarkCreateRequire } from 'node:module'; const require = __pgarkCreateRequire(import.meta.url);" },
  sourcemap: 'linked',
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
// A bundled CommonJS package reached by import() comes out of a split bundle as a chunk with a
// default export only, so `const { parse } = await import('yaml')` finds no parse: import those
// packages statically (they are small, and the bundle is loaded in one piece anyway).
const defaultOnly = readdirSync(OUT).filter((f) => f.endsWith('.js') && /^export default require_\w+\(\);$/m.test(readFileSync(join(OUT, f), 'utf8')));
if (defaultOnly.length > 0) {
  console.error(`scripts/bundle.mjs: a bundled CommonJS package is imported with import(): ${defaultOnly.join(', ')}; import it statically`);
  process.exit(1);
}
writeFileSync(`${OUT}/.built`, `${new Date().toISOString()}\n`);
