/**
 * The restore drill report: one JSON document per drill, stored at
 * <server>/pgark/drills/<UTC time>.json beside base/ and wals/ (barman-cloud lists only those two),
 * so the history survives the machine that ran it. `version` names the layout for readers such as
 * `pgark timeline`.
 */
import type { CatalogWriteOptions } from '../catalog/catalog.js';
import type { ObjectStore } from '../storage/types.js';
import type { WalGap } from '../wal/list.js';

export const DRILL_REPORT_VERSION = 1;

/** The steps of a drill, in order; RTO is measured per step. */
export const DRILL_STEPS = ['plan', 'download', 'replay', 'promotion', 'checks'] as const;
export type DrillStep = (typeof DRILL_STEPS)[number];

export interface StepResult {
  step: DrillStep;
  seconds: number;
  ok: boolean;
}

export interface CheckResult {
  /** amcheck, connect, or the probe's name (its SQL when unnamed). */
  name: string;
  kind: 'amcheck' | 'connect' | 'sql';
  database?: string;
  status: 'passed' | 'failed' | 'skipped';
  detail: string;
  seconds: number;
}

export interface DrillReport {
  version: typeof DRILL_REPORT_VERSION;
  id: string;
  cluster: string;
  serverName: string;
  ok: boolean;
  startedAt: string;
  finishedAt: string;
  target: {
    /** As asked for: latest, random, a time or an LSN. */
    requested: string;
    /** What the drill recovered to ("end of the WAL archive", "time ..."). */
    description: string;
    /** The time a time target asked for (reports of earlier pgark: the time a random target drew). */
    time: string | null;
    /** The LSN an LSN or random target asked for, and for random why there; absent in reports of earlier pgark. */
    lsn?: string | null;
    reason?: string | null;
  };
  backup: { id: string; name: string | null; endTime: string | null; bytes: number | null } | null;
  steps: StepResult[];
  /** Seconds per step and in total: the measured recovery time. */
  rto: Record<DrillStep | 'total', number>;
  /** Where the restored server stood when it promoted. */
  recoveryPoint: { time: string | null; lsn: string | null; timeline: number | null } | null;
  /** Recovery point objective at drill time: the age of the newest archived WAL. */
  rpo: { newestWal: string | null; newestWalStored: string | null; ageSeconds: number | null };
  /** From the end of the oldest DONE backup to the newest archived WAL. */
  recoverableWindow: { from: string | null; to: string | null; seconds: number | null };
  wal: { gapSegments: number; gaps: WalGap[] };
  bytes: {
    downloaded: number;
    downloadBytesPerSecond: number | null;
    walSegmentsReplayed: number;
    walBytes: number;
    replayBytesPerSecond: number | null;
  };
  checks: CheckResult[];
  failure: { step: DrillStep; message: string; fatal: string | null } | null;
  scratch: { dir: string | null; kept: boolean };
}

export function drillReportsPrefix(serverName: string): string {
  return `${serverName}/pgark/drills/`;
}

/** 2026-12-05T13:20:00.123Z -> 20261205T132000.123Z: keys sort by time, and no ':' (awkward in some stores' consoles). */
export function drillId(at: Date): string {
  return at.toISOString().replace(/[-:]/g, '');
}

export function drillReportKey(serverName: string, id: string): string {
  return `${drillReportsPrefix(serverName)}${id}.json`;
}

export async function storeDrillReport(store: ObjectStore, report: DrillReport, write: CatalogWriteOptions): Promise<string> {
  const key = drillReportKey(report.serverName, report.id);
  await store.put(key, Buffer.from(`${JSON.stringify(report, null, 2)}\n`), { ...write, contentType: 'application/json' });
  return key;
}

/** One line of `pgark drill --history`. */
export interface DrillHistoryEntry {
  key: string;
  id: string;
  ok: boolean | null;
  target: string | null;
  recoveryPoint: string | null;
  rtoSeconds: number | null;
  failedStep: DrillStep | null;
  /** Why the entry could not be read, when it could not. */
  unreadable?: string;
}

/** Past drills, oldest first; each report is read and reduced to its summary line, one at a time. */
export async function drillHistory(store: ObjectStore, serverName: string): Promise<DrillHistoryEntry[]> {
  const keys: string[] = [];
  for await (const e of store.list(drillReportsPrefix(serverName))) if (e.object?.key.endsWith('.json')) keys.push(e.object.key);
  keys.sort();
  const out: DrillHistoryEntry[] = [];
  for (const key of keys) {
    const id = key.slice(key.lastIndexOf('/') + 1, -'.json'.length);
    try {
      const r = JSON.parse((await store.getBuffer(key)).toString('utf8')) as DrillReport;
      if (r.version !== DRILL_REPORT_VERSION) throw new Error(`report version ${String(r.version)}, this pgark reads ${DRILL_REPORT_VERSION}`);
      out.push({
        key,
        id,
        ok: r.ok,
        target: r.target.description,
        recoveryPoint: r.recoveryPoint?.time ?? r.recoveryPoint?.lsn ?? null,
        rtoSeconds: r.rto.total,
        failedStep: r.failure?.step ?? null,
      });
    } catch (err) {
      out.push({ key, id, ok: null, target: null, recoveryPoint: null, rtoSeconds: null, failedStep: null, unreadable: (err as Error).message });
    }
  }
  return out;
}
