/**
 * Entry of `pgark restore --finish-recovery` (bin/pgark.js): what recovery_end_command runs, once,
 * on PostgreSQL's promotion path, so it skips commander and the command modules when its command
 * line allows (commands/finish-recovery.ts) and hands anything else to the full CLI.
 */
import { action } from './common.js';
import { finishArgs, finishRecovery } from '../commands/finish-recovery.js';

export async function main(argv: string[]): Promise<void> {
  const args = finishArgs(argv.slice(3));
  if (!args) {
    const cli = await import('./main.js');
    return cli.main(argv);
  }
  await action(async () => finishRecovery(args))();
}
