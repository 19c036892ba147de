#!/usr/bin/env node
// Thin launcher: the compiled CLI lives in dist/ (built by `npm ci` through the prepare script).
// archive_command / restore_command calls skip the CLI framework and go to the small WAL client,
// which loads no SDK (see src/wal/client.ts); --help still goes through the full CLI.
const [command, ...rest] = process.argv.slice(2);
if ((command === 'wal-archive' || command === 'wal-restore') && !rest.some((a) => a === '-h' || a === '--help')) {
  import('../dist/src/wal/client.js').then((m) => m.main(process.argv));
} else {
  import('../dist/src/cli/main.js').then((m) => m.main(process.argv));
}
