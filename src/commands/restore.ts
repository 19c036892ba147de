/** `pgark restore`: bootstrap.recovery of a Cluster manifest into a local data directory, and its summary. */
import { summaryText, type RecoveryOptions, type RecoveryResult } from '../recovery/apply.js';
import { finishRecoveryFromManifests, recoverFromManifests } from '../recovery/cli.js';

export interface RecoverCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  json: boolean;
  recovery: RecoveryOptions;
}

/** Progress goes to stderr as the recovery runs; the summary (or JSON) to stdout at the end. */
export function printRecoveryResult(result: RecoveryResult, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(result, null, 2)}\n` : summaryText(result));
}

export async function recoverCommand(opts: RecoverCommandOptions): Promise<void> {
  printRecoveryResult(await recoverFromManifests(opts), opts.json);
}

/** recovery_end_command: what PostgreSQL runs when the replay ends. */
export async function finishRecoveryCommand(opts: Parameters<typeof finishRecoveryFromManifests>[0]): Promise<void> {
  await finishRecoveryFromManifests(opts);
}
