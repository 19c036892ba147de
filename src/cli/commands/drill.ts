/** `pgark drill`: restore a Cluster's backup into a scratch server, replay, promote, check, report RTO/RPO. */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import { flagValue, setting } from '../../util/options.js';

interface DrillFlags extends ConfigOptions {
  cluster?: string;
  target: string;
  backup?: string;
  checks?: string;
  keep?: boolean;
  scratch?: string;
  history?: boolean;
  jobs?: string;
  pguser?: string;
}

export function register(program: Command): void {
  const cmd = program
    .command('drill')
    .description('restore drill: recover the newest (or chosen) backup into a private scratch server, replay to the target, promote, run checks, report RTO by step and RPO, store the report; --history lists past drills');
  withOptions(cmd, 'drill').action(
    action(async (flags: DrillFlags) => {
      const files = configFiles(flags);
      const { drillCommand, drillHistoryCommand } = await import('../../commands/drill.js');
      if (flags.history) {
        await drillHistoryCommand({ files, secretsDir: flags.secretsDir, cluster: flags.cluster, json: Boolean(flags.json) });
        return;
      }
      await drillCommand({
        files,
        secretsDir: flags.secretsDir,
        cluster: flags.cluster,
        target: flags.target,
        backup: flags.backup,
        checks: flags.checks,
        keep: Boolean(flags.keep),
        scratch: flags.scratch,
        pguser: flags.pguser ?? setting('pguser'),
        jobs: flagValue('restoreJobs', flags.jobs),
        json: Boolean(flags.json),
      });
    }),
  );
}
