/** `pgark agent` (scheduled backups, retention, WAL fast path, metrics) and `pgark status` (what an agent reports). */
import type { Command } from 'commander';
import { action, configFiles, type ConfigOptions } from '../common.js';
import { withOptions } from '../options.js';
import type { PgConnectionOptions } from '../../pg/connect.js';

interface AgentCliOptions extends ConfigOptions, PgConnectionOptions {
  listen: string;
  retentionInterval: string;
  refreshInterval: string;
  stateDir?: string;
}

export function register(program: Command): void {
  withOptions(
    program
      .command('agent')
      .description(
        'run every ScheduledBackup in the manifests (CNPG semantics), apply retentionPolicy after each backup and periodically, serve the WAL archive fast path for --pgdata, and expose /metrics, /healthz, /readyz and /status',
      ),
    'agent',
  ).action(
    action(async (opts: AgentCliOptions) => {
      const { agentCommand } = await import('../../commands/agent.js');
      await agentCommand({
        files: configFiles(opts),
        secretsDir: opts.secretsDir,
        pg: { pghost: opts.pghost, pgport: opts.pgport, pguser: opts.pguser, pgpassword: opts.pgpassword, pgdatabase: opts.pgdatabase, pgdata: opts.pgdata },
        listen: opts.listen,
        retentionInterval: opts.retentionInterval,
        refreshInterval: opts.refreshInterval,
        stateDir: opts.stateDir,
      });
    }),
  );

  withOptions(
    program
      .command('status')
      .description("print a running agent's status: each backup's phase (pending, running, walArchivingFailing, completed, failed) and error, schedules, catalogs"),
    'status',
  ).action(
      action(async (opts: { agent: string; json?: boolean }) => {
        const { statusCommand } = await import('../../commands/agent.js');
        await statusCommand(opts.agent, Boolean(opts.json));
      }),
    );
}
