/** `pgark timeline`: backups, WAL coverage and gaps, retention and drills on one time axis. */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';

interface TimelineCliOptions extends ConfigOptions {
  cluster?: string;
  html?: string;
  svg?: string;
  since?: string;
}

export function register(program: Command): void {
  withOptions(
    program
      .command('timeline')
      .description(
        'what the store can recover, on one time axis: backups, WAL coverage and gaps per timeline, the retention window, first and last recoverable points, verify runs and restore drills; --html or --svg draws it',
      ),
    'timeline',
  ).action(
    action(async (opts: TimelineCliOptions) => {
      const { timelineCommand } = await import('../../commands/timeline.js');
      await timelineCommand({
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
        cluster: opts.cluster,
        html: opts.html,
        svg: opts.svg,
        since: opts.since,
        json: Boolean(opts.json),
      });
    }),
  );
}
