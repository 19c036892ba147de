/** `pgark status`: fetches an agent's /status and prints it (a table, or the JSON with --json). */
import { PgarkError } from '../util/errors.js';
import type { BackupEntry } from './state.js';
import type { ClusterView } from './cluster-worker.js';
import type { ScheduleView } from './scheduler.js';

export interface AgentStatus {
  agent: { pid: number; startedAt: string; url: string; stateDir: string; pgdata: string | null; walFastPath: boolean; ready: boolean };
  /** pg_wal/archive_status of the served data directory, and why archiving fails (if it does). */
  walArchive: { ready: number; done: number; oldestReadySeconds: number; problem: string | null } | null;
  clusters: ClusterView[];
  scheduledBackups: ScheduleView[];
  /** Newest first. */
  backups: BackupEntry[];
}

export async function fetchStatus(agentUrl: string): Promise<AgentStatus> {
  const url = `${agentUrl.replace(/\/+$/, '')}/status`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new PgarkError(`no pgark agent answers at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 1, 'is `pgark agent` running? pass its address with --agent http://HOST:PORT');
  }
  if (!res.ok) throw new PgarkError(`${url} answered HTTP ${res.status}`, 1);
  return (await res.json()) as AgentStatus;
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
