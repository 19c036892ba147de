#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
// archive_command / restore_command calls skip the CLI framework and go to the small WAL client,
// which loads no SDK (see src/wal/client.ts), recovery_end_command to src/cli/finish-recovery.ts;
// --help still goes through the full CLI.
import { statSync } from 'node:fs';

const [command, ...rest] = process.argv.slice(2);
const help = rest.some((a) => a === '-h' || a === '--help');
const walCommand = (command === 'wal-archive' || command === 'wal-restore') && !help;
// recovery_end_command (`pgark restore --finish-recovery`) has what it needs on its command line: no CLI framework.
const finishRecovery = command === 'restore' && rest.includes('--finish-recovery') && !help;
// bin/barman-cloud/<name> (through bin/pgark): `barman-cloud <name> ARGS`, straight to the drop-ins' entry.
const barmanTool = command === 'barman-cloud' && rest[0]?.startsWith('barman-cloud-') ? rest[0] : undefined;

// Loading the program takes well under a second, yet under heavy load one load was seen to stall
// for good (a file read of Node's module loader never completed, its worker threads idle). An
// archive_command that never returns stops all archiving, so a load that stalls gives up and lets
// PostgreSQL call again. restore_command exits 255: PostgreSQL reads 1-125 as "not in the
// archive" and would end the recovery there, while above 125 it stops instead.
const LOAD_LIMIT_MS = 60_000;
const stalled = setTimeout(() => {
  process.stderr.write(`pgark ${command ?? ''}: loading the program stalled for ${LOAD_LIMIT_MS / 1000} s; giving up so that it is called again\n`);
  // barman's callers know exit codes 0-4 only; 4 is its retried "general error".
  process.exit(barmanTool ? 4 : command === 'wal-restore' ? 255 : 1);
}, LOAD_LIMIT_MS);

// scripts/bundle.mjs's bundle of dist/src, when it was built after dist/src: the same program in
// fewer files, which Node loads faster (`pgark backup list`: 0.30 CPU s against 0.40-0.47; see that script).
const bundled = (() => {
  try {
    return statSync(new URL('../dist/bundle/.built', import.meta.url)).mtimeMs >= statSync(new URL('../dist/src/cli/main.js', import.meta.url)).mtimeMs;
  } catch {
    return false;
  }
})();
/** The program's module `entry` (a scripts/bundle.mjs entry name), bundled or as compiled at `compiled`. */
const program = (entry, compiled) => (bundled ? `../dist/bundle/${entry}.js` : `../dist/src/${compiled}`);

// A backup, restore or logical dump streams for as long as the database takes: its young generation
// is capped before the program loads, since V8 never gives back what it grew (src/util/gc.ts; a zstd
// restore's V8 heap at its peak: 58 MB without, 9 MB with).
const streaming = barmanTool ? barmanTool === 'barman-cloud-backup' || barmanTool === 'barman-cloud-restore' : ['backup', 'restore', 'apply', 'logical'].includes(command) && !finishRecovery;
const lean = streaming && !help ? import(program('gc', 'util/gc.js')).then((m) => m.capYoungGeneration()) : Promise.resolve();

if (barmanTool) {
  lean.then(() => import(program('barman-cloud', 'cli/barman-cloud/main.js'))).then((m) => {
    clearTimeout(stalled);
    return m.main(barmanTool, rest.slice(1));
  });
} else {
  const entry = walCommand ? program('wal-client', 'wal/client.js') : finishRecovery ? program('finish-recovery', 'cli/finish-recovery.js') : program('cli', 'cli/main.js');
  lean.then(() => import(entry)).then((m) => {
    clearTimeout(stalled);
    return m.main(process.argv);
  });
}
