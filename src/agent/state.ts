/**
 * The agent's persistent state: every backup it queued or ran (name, phase, backup id, error,
 * times) and, per ScheduledBackup, CNPG's lastCheckTime/lastScheduleTime/nextScheduleTime.
 *
 * It lives in one JSON file in the state directory, rewritten atomically (temp file, fsync,
 * rename, fsync of the directory) on every change, so a kill -9 leaves either the old or the
 * new state, never half of one. That is what makes restarts safe: a backup recorded as pending
 * or running when the agent died is resolved on the next start (see agent.ts) and its slot,
 * already recorded, is never run again.
 *
 * A process lock (util/process-lock.ts) keeps two agents from sharing a state directory (they
 * would run every backup twice); agent.lock only names the holder's PID for humans.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgarkError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { directoryLockName, pidFileOwner, removePidFile, takeProcessLock, writePidFile, type ProcessLock } from '../util/process-lock.js';
import { advancePhase, isTerminal, type BackupPhase } from './phases.js';

/** Terminal entries kept in the state (and /status); older ones are dropped, bounding memory and file size. */
const MAX_FINISHED_ENTRIES = 200;

export interface BackupEntry {
  /** backup_name in backup.info: `<scheduledbackup>-<YYYYMMDDhhmmss>`. */
  name: string;
  cluster: string;
  scheduledBackup: string;
  /** The slot this backup stands for (ISO 8601; `now` for an immediate backup). */
  slot: string;
  immediate: boolean;
  phase: BackupPhase;
  queuedAt: string;
  /** barman backup id, once the backup process announced it. */
  backupId?: string;
  startedAt?: string;
  stoppedAt?: string;
  error?: string;
  /** Bytes stored in the object store (completed backups). */
  storedBytes?: number;
  /** The backup process, while running (to make sure it is gone after a restart). */
  pid?: number;
}

/** A restore drill the agent ran for a ScheduledDrill slot; phases as a backup's. */
export interface DrillEntry {
  /** `<scheduleddrill>-<YYYYMMDDhhmmss of the slot>`. */
  name: string;
  cluster: string;
  scheduledDrill: string;
  slot: string;
  phase: BackupPhase;
  queuedAt: string;
  startedAt?: string;
  stoppedAt?: string;
  error?: string;
  failedStep?: string;
  /** Where the drill report was stored. */
  reportKey?: string;
  rtoSeconds?: number;
}

export interface ScheduleEntry {
  cluster: string;
  schedule: string;
  lastCheckTime?: string;
  lastScheduleTime?: string;
  nextScheduleTime?: string;
}

export interface AgentStateFile {
  version: 1;
  backups: BackupEntry[];
  schedules: Record<string, ScheduleEntry>;
  /** Absent in state files written before drills existed. */
  drills?: DrillEntry[];
}

export class AgentLockedError extends PgarkError {}

/** Whether a process exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const agentLockFile = (dir: string) => join(dir, 'agent.lock');

/**
 * The agent holding the lock, from its PID file: the holder writes it just after taking the lock,
 * so for a moment the file may still name a dead agent from before. Only a live PID is named.
 */
async function lockHolder(lockFile: string): Promise<number | undefined> {
  for (let waitedMs = 0; ; waitedMs += 20) {
    const pid = pidFileOwner(lockFile);
    if (pid && processAlive(pid)) return pid;
    if (waitedMs >= 1000) return undefined;
    await sleep(20);
  }
}

/** Keeps every unfinished entry and the newest MAX_FINISHED_ENTRIES finished ones. */
function boundFinished<E extends { phase: BackupPhase }>(entries: E[]): E[] {
  const finished = entries.filter((e) => isTerminal(e.phase));
  if (finished.length <= MAX_FINISHED_ENTRIES) return entries;
  const drop = new Set(finished.slice(0, finished.length - MAX_FINISHED_ENTRIES));
  return entries.filter((e) => !drop.has(e));
}

export class AgentState {
  private data: AgentStateFile;
  private readonly file: string;
  private readonly lockFile: string;

  private constructor(
    readonly dir: string,
    private readonly processLock: ProcessLock,
  ) {
    this.file = join(dir, 'state.json');
    this.lockFile = agentLockFile(dir);
    this.data = { version: 1, backups: [], schedules: {} };
  }

  /** Opens (creating) the state directory, takes its lock and reads the state. */
  static async open(dir: string): Promise<AgentState> {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = await takeProcessLock(directoryLockName('agent', dir));
    const lockFile = agentLockFile(dir);
    if (!lock) {
      const pid = await lockHolder(lockFile);
      throw new AgentLockedError(`another pgark agent${pid ? ` (pid ${pid})` : ''} uses the state directory ${dir}`, 2, 'stop it, or give this agent its own --state-dir');
    }
    const state = new AgentState(dir, lock);
    try {
      writePidFile(lockFile);
      state.data = state.read();
    } catch (err) {
      await state.close();
      throw err;
    }
    return state;
  }

  private read(): AgentStateFile {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, backups: [], schedules: {} };
      throw err;
    }
    try {
      const parsed = JSON.parse(text) as AgentStateFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.backups)) throw new Error('unknown layout');
      return { version: 1, backups: parsed.backups, schedules: parsed.schedules ?? {}, drills: parsed.drills ?? [] };
    } catch (err) {
      // Keep the unreadable file for inspection rather than overwrite it.
      const aside = `${this.file}.unreadable-${Date.now()}`;
      renameSync(this.file, aside);
      logger().error({ file: this.file, movedTo: aside, err: (err as Error).message }, 'agent state unreadable; starting with an empty state');
      return { version: 1, backups: [], schedules: {} };
    }
  }

  private save(): void {
    this.data.backups = boundFinished(this.data.backups);
    this.data.drills = boundFinished(this.data.drills ?? []);
    const temp = `${this.file}.tmp`;
    const fd = openSync(temp, 'w', 0o600);
    try {
      writeFileSync(fd, JSON.stringify(this.data, null, 1));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, this.file);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  /** Releases the lock (the state file stays). */
  async close(): Promise<void> {
    removePidFile(this.lockFile);
    await this.processLock.release();
  }

  get backups(): readonly BackupEntry[] {
    return this.data.backups;
  }

  get schedules(): Readonly<Record<string, ScheduleEntry>> {
    return this.data.schedules;
  }

  find(name: string): BackupEntry | undefined {
    return this.data.backups.find((b) => b.name === name);
  }

  /** Records a new backup (phase pending). */
  add(entry: Omit<BackupEntry, 'phase' | 'queuedAt'>, now = new Date()): BackupEntry {
    const created: BackupEntry = { ...entry, phase: 'pending', queuedAt: now.toISOString() };
    this.data.backups.push(created);
    this.save();
    return created;
  }

  /**
   * Moves a backup forward and merges `patch`. A change that would move it backwards (or out of
   * a terminal phase) is ignored entirely, patch included, and logged.
   */
  advance(name: string, phase: BackupPhase, patch: Partial<Omit<BackupEntry, 'name' | 'phase'>> = {}): BackupEntry {
    return this.move<BackupEntry>('backup', this.find(name), name, phase, patch);
  }

  private move<E extends { phase: BackupPhase }>(what: string, entry: E | undefined, name: string, phase: BackupPhase, patch: Partial<E>): E {
    if (!entry) throw new Error(`no ${what} ${name} in the agent state`);
    if (advancePhase(entry.phase, phase) !== phase) {
      logger().warn({ [what]: name, from: entry.phase, to: phase }, `ignored a backwards ${what} phase change`);
      return entry;
    }
    Object.assign(entry, patch, { phase });
    this.save();
    return entry;
  }

  get drills(): readonly DrillEntry[] {
    return this.data.drills ?? [];
  }

  /** Records a new drill (phase pending). */
  addDrill(entry: Omit<DrillEntry, 'phase' | 'queuedAt'>, now = new Date()): DrillEntry {
    const created: DrillEntry = { ...entry, phase: 'pending', queuedAt: now.toISOString() };
    (this.data.drills ??= []).push(created);
    this.save();
    return created;
  }

  advanceDrill(name: string, phase: BackupPhase, patch: Partial<Omit<DrillEntry, 'name' | 'phase'>> = {}): DrillEntry {
    return this.move<DrillEntry>('drill', this.drills.find((d) => d.name === name), name, phase, patch);
  }

  /** Records facts about a backup in progress (process id, backup id) without touching its phase; ignored once terminal. */
  annotate(name: string, patch: Pick<Partial<BackupEntry>, 'pid' | 'backupId'>): void {
    const entry = this.find(name);
    if (!entry || isTerminal(entry.phase)) return;
    Object.assign(entry, patch);
    this.save();
  }

  setSchedule(name: string, entry: ScheduleEntry): void {
    this.data.schedules[name] = entry;
    this.save();
  }
}
