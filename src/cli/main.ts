/**
 * The pgark command line. Each command lives in src/cli/commands/<name>.ts and exports
 * register(program). Command modules import only light modules at top level and load their
 * implementation lazily inside the action, so that `pgark wal-archive` starts fast.
 */
import { Command } from 'commander';
import { register as registerCheck } from './commands/check.js';
import { register as registerWal } from './commands/wal.js';
import { register as registerBackup } from './commands/backup.js';
import { register as registerRestore } from './commands/restore.js';
import { register as registerApply } from './commands/apply.js';
import { register as registerRetention } from './commands/retention.js';
import { register as registerSchedule } from './commands/schedule.js';
import { register as registerAgent } from './commands/agent.js';
import { register as registerLogical } from './commands/logical.js';
import { register as registerBarmanCloud } from './barman-cloud/register.js';
import { environmentHelp } from './options.js';

export function buildProgram(): Command {
  const program = new Command('pgark')
    .description('PostgreSQL backup and recovery for CloudNativePG manifests (barman-cloud compatible)')
    .version('0.1.0')
    .showSuggestionAfterError(true)
    .addHelpText('after', environmentHelp())
    .exitOverride();
  for (const register of [
    registerCheck,
    registerWal,
    registerBackup,
    registerRestore,
    registerApply,
    registerRetention,
    registerSchedule,
    registerAgent,
    registerLogical,
    registerBarmanCloud,
  ]) {
    register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `pgark barman-cloud barman-cloud-<tool> ARGS`: barman's argv grammar, not commander's.
  if (argv[2] === 'barman-cloud' && argv[3]?.startsWith('barman-cloud-')) {
    const barman = await import('./barman-cloud/main.js');
    return barman.main(argv[3], argv.slice(4));
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // commander reports its own usage errors (and --help/--version) through exitOverride.
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
      return;
    }
    throw err;
  }
}
