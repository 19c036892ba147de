/**
 * Entry of the nine barman-cloud drop-ins (bin/barman-cloud/<name> → bin/pgark → here, or
 * `pgark barman-cloud <name> ARGS`): parses argv with barman's grammar, refuses what pgark cannot
 * honour, and runs the command, which it loads alone so that archive_command stays fast. stdout
 * carries only what the caller parses (--version, --help, the commands' own output); everything
 * else goes to stderr in barman's log format.
 */
import { barmanLog, EXIT, type BarmanInvocation } from '../../commands/barman-cloud/common.js';
import { checkEnvironment } from '../../util/options.js';
import { packageJson } from '../../util/package.js';
import { parseArgv, parseTags, refusedOptions, usage } from './argparse.js';
import { BARMAN_COMMANDS, BARMAN_COMPAT_VERSION, specFor, type BarmanCommand } from './specs.js';

type Run = (inv: BarmanInvocation) => Promise<number>;

/** Each command's implementation, loaded on use. */
const COMMANDS: Partial<Record<BarmanCommand, () => Promise<Run>>> = {
  'barman-cloud-wal-archive': async () => (await import('../../commands/barman-cloud/wal-archive.js')).walArchive,
  'barman-cloud-wal-restore': async () => (await import('../../commands/barman-cloud/wal-restore.js')).walRestore,
  'barman-cloud-check-wal-archive': async () => (await import('../../commands/barman-cloud/check-wal-archive.js')).checkWalArchive,
  'barman-cloud-backup': async () => (await import('../../commands/barman-cloud/backup.js')).runBackup,
  'barman-cloud-backup-list': async () => (await import('../../commands/barman-cloud/backup-list.js')).runBackupList,
  'barman-cloud-backup-show': async () => (await import('../../commands/barman-cloud/backup-show.js')).runBackupShow,
  'barman-cloud-backup-delete': async () => (await import('../../commands/barman-cloud/backup-delete.js')).runBackupDelete,
  'barman-cloud-backup-keep': async () => (await import('../../commands/barman-cloud/backup-keep.js')).runBackupKeep,
  'barman-cloud-restore': async () => (await import('../../commands/barman-cloud/restore.js')).runRestore,
};

function helpExtra(): string {
  return `\nThis is pgark ${packageJson().version} standing in for barman-cloud ${BARMAN_COMPAT_VERSION} (same object-store layout); see docs/barman-cloud-compatibility.md.\n`;
}

/** Runs drop-in `prog` with argv (after the program name); sets process.exitCode. */
export async function main(prog: string, argv: string[]): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const spec = specFor(prog);
  if (!spec) {
    process.stderr.write(`pgark barman-cloud: "${prog}" is not a barman-cloud command; one of: ${BARMAN_COMMANDS.join(', ')}\n`);
    process.exitCode = EXIT.cli;
    return;
  }
  const outcome = parseArgv(spec, argv, BARMAN_COMPAT_VERSION, helpExtra());
  if (outcome.kind === 'exit') {
    if (outcome.stdout) process.stdout.write(outcome.stdout);
    if (outcome.stderr) process.stderr.write(outcome.stderr);
    process.exitCode = outcome.code;
    return;
  }
  const { values } = outcome.args;
  let tags: Record<string, string> | undefined;
  let historyTags: Record<string, string> | undefined;
  try {
    tags = parseTags(values.tags as string[] | undefined);
    historyTags = parseTags(values.historyTags as string[] | undefined);
  } catch (err) {
    // barman's tag type= check fails inside argparse: usage and exit 3.
    process.stderr.write(`${usage(spec)}${prog}: error: ${(err as Error).message}\n`);
    process.exitCode = EXIT.cli;
    return;
  }
  const log = barmanLog(Number(values.verbose ?? 0), Number(values.quiet ?? 0));
  const refused = refusedOptions(spec, outcome.args);
  if (refused) {
    log.error(refused);
    process.exitCode = EXIT.cli;
    return;
  }
  try {
    checkEnvironment();
    const load = COMMANDS[prog as BarmanCommand];
    if (!load) {
      log.error(`${prog} is not implemented by pgark yet`);
      process.exitCode = EXIT.general;
      return;
    }
    process.exitCode = await (await load())({ prog, argv, values, tags, historyTags, log });
  } catch (err) {
    log.error(`${prog} exception: ${(err as Error).message}`);
    process.exitCode = (err as { exitCode?: number }).exitCode === 2 ? EXIT.cli : EXIT.general;
  }
}
