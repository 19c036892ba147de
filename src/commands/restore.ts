/** `pgark restore`: bootstrap.recovery of a Cluster manifest into a local data directory, and its summary. */
import { summaryText, type RecoveryOptions, type RecoveryResult } from '../recovery/apply.js';
import { finishRecoveryFromManifests, recoverFromManifests } from '../recovery/cli.js';
import { capYoungGeneration } from '../util/gc.js';

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
  // The restore's stream chunks die young: left to grow, V8's young generation was 20-30 MB of the
  // restore's peak (heapTotal 58 MB against 33 MB used, sampled at a zstd restore's peak).
  capYoungGeneration();
  printRecoveryResult(await recoverFromManifests(opts), opts.json);
}

/** recovery_end_command: what PostgreSQL runs when the replay ends. */
export async function finishRecoveryCommand(opts: Parameters<typeof finishRecoveryFromManifests>[0]): Promise<void> {
  await finishRecoveryFromManifests(opts);
}
