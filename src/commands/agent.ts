/** `pgark agent` runs the agent; `pgark status` fetches a running agent's /status and prints it (a table, or the JSON with --json). */
import type { AgentOptions } from '../agent/agent.js';
import { fetchStatus, type AgentStatus } from '../agent/status-cli.js';

export async function agentCommand(opts: AgentOptions): Promise<void> {
  // Loaded here so that `pgark status` does not load the agent.
  const { runAgent } = await import('../agent/agent.js');
  await runAgent(opts);
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

const time = (iso?: string) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-');

export function renderStatus(s: AgentStatus): string {
  let out = `agent pid ${s.agent.pid} at ${s.agent.url}, up since ${time(s.agent.startedAt)}, ${s.agent.ready ? 'ready' : 'NOT READY'}; `;
  out += `WAL fast path: ${s.agent.walFastPath ? `serving ${s.agent.pgdata}` : 'off'}\n`;
  if (s.walArchive) {
    out += `WAL archive: ${s.walArchive.ready} segment(s) waiting${s.walArchive.ready > 0 ? `, oldest for ${Math.round(s.walArchive.oldestReadySeconds)} s` : ''}`;
    out += s.walArchive.problem ? `; ${s.walArchive.problem}\n` : '\n';
  }
  out += '\n';
  out += table([
    ['CLUSTER', 'SERVER', 'FIRST RECOVERABILITY', 'LAST BACKUP', 'LAST FAILED', 'RETENTION', 'STORE'],
    ...s.clusters.map((c) => [
      c.name,
      c.serverName,
      time(c.firstRecoverabilityPoint),
      time(c.lastSuccessfulBackup),
      time(c.lastFailedBackup),
      c.retentionPolicy ? `${c.retentionPolicy}${c.lastRetention ? (c.lastRetention.ok ? ` (${c.lastRetention.deleted} deleted ${time(c.lastRetention.at)})` : ' (last run FAILED)') : ''}` : '-',
      c.lastError ? `ERROR ${c.lastError}` : `ok ${time(c.lastContact)}`,
    ]),
  ]);
  if (s.scheduledBackups.length > 0) {
    out += '\n' + table([
      ['SCHEDULEDBACKUP', 'CLUSTER', 'SCHEDULE', 'LAST SCHEDULE', 'NEXT SCHEDULE'],
      ...s.scheduledBackups.map((b) => [b.name, b.cluster, b.schedule, time(b.lastScheduleTime), b.suspend ? 'suspended' : time(b.nextScheduleTime)]),
    ]);
  }
  out += '\n';
  if (s.backups.length === 0) return out + 'no backups run by this agent yet\n';
  out += table([
    ['BACKUP', 'CLUSTER', 'PHASE', 'BACKUP ID', 'STARTED', 'STOPPED', 'ERROR'],
    ...s.backups.map((b) => [b.name, b.cluster, b.phase, b.backupId ?? '-', time(b.startedAt), time(b.stoppedAt), b.error ?? '']),
  ]);
  return out;
}

export async function statusCommand(agentUrl: string, json: boolean): Promise<void> {
  const status = await fetchStatus(agentUrl);
  process.stdout.write(json ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status));
}
