/** What an agent's /status answers, and fetching it (`pgark status` prints it). */
import { PgarkError } from '../util/errors.js';
import type { BackupEntry, DrillEntry } from './state.js';
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
  scheduledDrills: ScheduleView[];
  /** Restore drills, newest first. */
  drills: DrillEntry[];
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
