/** The multi-timeline catalog shared by the retention tests (applied, agreement with barman, CLI). */
import { backupInfoKey, backupPrefix } from '../../src/catalog/layout.js';
import { parseBackupInfo, serializeBackupInfo } from '../../src/catalog/backup-info.js';
import { PyDateTime } from '../../src/catalog/pytime.js';
import type { WalObject } from '../../src/catalog/retention.js';
import type { ObjectStore, PutOptions } from '../../src/storage/types.js';
import { archivedWalFiles } from '../../src/wal/list.js';
import { backupIdAt, DAY, segments, walName, writeBackup, writeWals, type SyntheticBackup } from './synthetic.js';

const SERVER = 'pg';

/**
 * A catalog with three timelines, FAILED backups and a keep:standalone backup, times relative
 * to `now` and days away from the window edges.
 */
export function scenario(now: number): { backups: SyntheticBackup[]; wals: string[]; keep: Map<string, 'standalone'> } {
  const at = (daysAgo: number) => new Date(now - daysAgo * DAY);
  const b = (daysAgo: number, timeline: number, beginSeg: number, endSeg: number, extra: Partial<SyntheticBackup> = {}): SyntheticBackup => ({
    id: backupIdAt(new Date(at(daysAgo).getTime() - 3600_000)),
    timeline,
    beginSeg,
    endSeg,
    endTime: at(daysAgo),
    ...extra,
  });
  const backups = [
    b(120, 1, 2, 2),
    b(110, 1, 4, 5, { status: 'FAILED' }),
    b(100, 1, 6, 6),
    b(90, 2, 9, 9, { tablespaceOid: 16385 }),
    b(80, 2, 12, 12),
    b(45, 3, 15, 15),
    b(40, 3, 17, 17, { status: 'FAILED' }),
    b(20, 3, 19, 19),
    b(3, 3, 22, 22),
  ];
  const wals = [
    ...segments(1, 1, 8),
    `${walName(1, 2)}.00000028.backup`,
    `${walName(1, 6)}.00000028.backup`,
    '00000002.history',
    ...segments(2, 8, 14),
    `${walName(2, 9)}.00000028.backup`,
    `${walName(2, 14)}.partial`,
    '00000003.history',
    ...segments(3, 14, 23),
    `${walName(3, 15)}.00000028.backup`,
  ];
  return { backups, wals, keep: new Map([[backups[2].id, 'standalone']]) };
}

export async function populate(store: ObjectStore, s: ReturnType<typeof scenario>): Promise<void> {
  for (const b of s.backups) await writeBackup(store, SERVER, b);
  await writeWals(store, SERVER, s.wals.filter((n) => n.endsWith('.history')));
  await writeWals(store, SERVER, s.wals.filter((n) => !n.endsWith('.history')), '.gz');
  for (const id of s.keep.keys()) await store.put(`${backupPrefix(SERVER, id)}annotations/keep`, Buffer.from('standalone'));
}

export async function walObjects(store: ObjectStore): Promise<WalObject[]> {
  const out: WalObject[] = [];
  for await (const w of archivedWalFiles(store, SERVER)) out.push(w);
  return out;
}


/** Rewrites a real backup's begin/end times `daysAgo` days back, leaving every other field as it was. */
export async function backdate(store: ObjectStore, serverName: string, backupId: string, daysAgo: number, write: PutOptions = {}): Promise<void> {
  const key = backupInfoKey(serverName, backupId);
  const info = parseBackupInfo((await store.getBuffer(key)).toString('utf8'), backupId);
  const end = new Date(Date.now() - daysAgo * DAY);
  info.begin_time = PyDateTime.fromDate(new Date(end.getTime() - 60_000));
  info.end_time = PyDateTime.fromDate(end);
  await store.put(key, Buffer.from(serializeBackupInfo(info)), write);
}
