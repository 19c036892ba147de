/**
 * A representative archive for the timeline tests, written into a real file:// store: 60 daily
 * backups over 60 days on 3 timelines (promotions on day 20 and day 40), 2 WAL gaps, one FAILED
 * backup, verify results, restore drill reports (one of them unreadable) and a 30d retention
 * policy. Segment k is "archived" (its file's mtime) at t0 + k * 8 h, so every time the model
 * derives can be worked out by hand. The expected facts are returned beside the store.
 */
import { spawnSync } from 'node:child_process';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serializeBackupInfo } from '../../src/catalog/backup-info.js';
import { backupInfoKey, backupPrefix, walKey } from '../../src/catalog/layout.js';
import { openObjectStore } from '../../src/storage/open.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { DRILL_STEPS, drillId, drillReportKey, storeDrillReport, type DrillReport } from '../../src/drill/report.js';
import type { VerifyResult } from '../../src/verify/report.js';
import { verifyResultKey } from '../../src/verify/results.js';
import { startStore, type TestStore } from '../harness/stores.js';
import { scratchDir } from '../harness/tmp.js';
import { backupIdAt, DAY, syntheticInfo, walName } from '../catalog/synthetic.js';

export const SERVER = 'pg';
const HOUR = 3_600_000;

export interface Representative {
  ts: TestStore;
  store: ObjectStore;
  now: Date;
  /** When segment k was archived (the end of its WAL). */
  archivedAt(k: number): Date;
  /** Backup ids by day (0 = oldest). */
  ids: string[];
  endTimes: Date[];
  /** The day whose backup lies inside the first gap (no WAL to make it consistent). */
  strandedDay: number;
  failedDay: number;
  /** Cluster (retentionPolicy 30d) + Secret manifest file of the store, in `dir`. */
  manifest: string;
  dir: string;
  /** Closes the store, stops it and removes `dir`. */
  cleanup(): Promise<void>;
}

/** `pgark ARGS` as a child process, in UTC. */
export function pgark(args: string[]) {
  return spawnSync(process.execPath, ['bin/pgark.js', ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, timeout: 120_000 });
}

/** Timeline of segment k: 1 up to 60, 2 up to 120, 3 after. */
export const timelineOf = (k: number) => (k <= 60 ? 1 : k <= 120 ? 2 : 3);
export const LAST_SEGMENT = 179;
export const GAPS = [
  { timeline: 1, first: 29, last: 31 },
  { timeline: 3, first: 150, last: 151 },
];

export async function representativeArchive(): Promise<Representative> {
  const ts = await startStore('file');
  const store = await openObjectStore(ts.resolved(SERVER));
  const root = ts.destinationPath.slice('file://'.length);
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const t0 = now.getTime() - LAST_SEGMENT * 8 * HOUR;
  const archivedAt = (k: number) => new Date(t0 + k * 8 * HOUR);
  const touch = (key: string, at: Date) => utimesSync(join(root, key), at, at);

  for (let k = 1; k <= LAST_SEGMENT; k++) {
    if (GAPS.some((g) => k >= g.first && k <= g.last)) continue;
    const key = walKey(SERVER, walName(timelineOf(k), k));
    await store.put(key, Buffer.alloc(256 + (k % 5) * 64, k));
    touch(key, archivedAt(k));
  }
  // The old primary's last, partial segment on timeline 1 after the first promotion: not replayed.
  await store.put(walKey(SERVER, `${walName(1, 61)}.partial`), Buffer.alloc(64));
  const histories = {
    2: '1\t0/3D000000\tno recovery target specified\n',
    3: '1\t0/3D000000\tno recovery target specified\n2\t0/79000000\tno recovery target specified\n',
  };
  for (const [tl, text] of Object.entries(histories)) {
    const key = walKey(SERVER, `0000000${tl}.history`);
    await store.put(key, Buffer.from(text));
    touch(key, archivedAt(tl === '2' ? 60 : 120));
  }

  const ids: string[] = [];
  const endTimes: Date[] = [];
  const failedDay = 30;
  for (let d = 0; d < 60; d++) {
    const seg = 3 * d + 2;
    const endTime = new Date(archivedAt(seg - 1).getTime() + 2 * HOUR);
    const id = backupIdAt(new Date(endTime.getTime() - HOUR));
    const info = syntheticInfo({ id, timeline: timelineOf(seg), beginSeg: seg, endSeg: seg, endTime, status: d === failedDay ? 'FAILED' : 'DONE', name: d === 59 ? 'before-upgrade' : undefined });
    info.size = (40 + d) * 1024 * 1024;
    await store.put(`${backupPrefix(SERVER, id)}data.tar.gz`, Buffer.alloc(1024 * (1 + (d % 9)), d));
    await store.put(backupInfoKey(SERVER, id), Buffer.from(serializeBackupInfo(info)));
    ids.push(id);
    endTimes.push(endTime);
  }

  for (const [day, ok] of [
    [15, true],
    [55, false],
  ] as const) {
    const at = new Date(t0 + day * DAY);
    await store.put(verifyResultKey(SERVER, at), Buffer.from(JSON.stringify(verifyResult(at, ok, ids[day - 1]))));
  }
  const drills: [number, boolean, number][] = [
    [22, true, 252],
    [36, true, 318],
    [50, true, 197],
    [57, false, 604],
  ];
  for (const [day, ok, rto] of drills) await storeDrillReport(store, drillReport(new Date(t0 + day * DAY), ok, rto, ids[day - 2]), {});
  // A report of a later layout: the timeline leaves it out with a note.
  await store.put(drillReportKey(SERVER, drillId(new Date(t0 + 58 * DAY))), Buffer.from(JSON.stringify({ version: 2, ok: true })));

  const dir = scratchDir('timeline');
  const manifest = join(dir.path, 'cluster.yaml');
  writeFileSync(manifest, ts.manifest({ clusterName: SERVER, backup: { retentionPolicy: '30d' } }));
  const cleanup = async () => {
    dir.cleanup();
    await store.close();
    await ts.stop();
  };
  return { ts, store, now, archivedAt, ids, endTimes, strandedDay: 9, failedDay, manifest, dir: dir.path, cleanup };
}

/** A drill report as pgark drill stores it (drill/report.ts), with the RTO split over its steps. */
function drillReport(startedAt: Date, ok: boolean, rto: number, backupId: string): DrillReport {
  const steps = { plan: 1, download: rto * 0.4, replay: rto * 0.4, promotion: 2, checks: rto * 0.2 - 3 };
  return {
    version: 1,
    id: drillId(startedAt),
    cluster: SERVER,
    serverName: SERVER,
    ok,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date(startedAt.getTime() + rto * 1000).toISOString(),
    target: { requested: 'latest', description: 'end of the WAL archive', time: null },
    backup: { id: backupId, name: null, endTime: null, bytes: 1024 },
    steps: DRILL_STEPS.map((step) => ({ step, seconds: steps[step], ok: ok || step !== 'checks' })),
    rto: { ...steps, total: rto },
    recoveryPoint: { time: startedAt.toISOString(), lsn: '0/1000000', timeline: 1 },
    rpo: { newestWal: null, newestWalStored: null, ageSeconds: null },
    recoverableWindow: { from: null, to: null, seconds: null },
    wal: { gapSegments: 0, gaps: [] },
    bytes: { downloaded: 1024, downloadBytesPerSecond: null, walSegmentsReplayed: 1, walBytes: 0, replayBytesPerSecond: null },
    checks: [],
    failure: ok ? null : { step: 'checks', message: 'row count differs after recovery', fatal: null },
    scratch: { dir: null, kept: false },
  };
}

function verifyResult(at: Date, ok: boolean, backupId: string): VerifyResult {
  return {
    version: 1,
    serverName: SERVER,
    store: 'file:///synthetic',
    startedAt: new Date(at.getTime() - 60_000).toISOString(),
    finishedAt: at.toISOString(),
    ok,
    request: { backup: 'latest', wal: true, sinceLast: false, jobs: 4 },
    since: null,
    objectsRead: 3,
    bytesRead: 4096,
    backups: [],
    wal: null,
    problems: ok ? [] : [{ key: `${SERVER}/wals/x`, what: 'missing (synthetic)' }],
    coverage: { newestBackupId: backupId, lastSegments: {} },
  };
}
