/**
 * Verifies one base backup as it sits in the store: backup.info against itself (WAL names vs
 * LSNs, timeline, offsets, times, size), every tar read back whole (readBackupObject), each
 * object's SHA-256 against backup.info's #pgark_object_sha256, and every file against the
 * backup_manifest in data.tar. The comparisons are the ones restore makes (pg/backup-manifest.ts,
 * catalog/backup-info.ts), here collecting every problem instead of stopping at the first.
 *
 * An incremental is checked with its chain, end to end: its file map's holders must all be chain
 * members that are DONE, each member's tars are read (their digests checked) for the files the map
 * says they hold, and the incremental's backup_manifest, which lists every file of the restored
 * directory, is compared with what all members together hold. A file stored block by block is
 * checked block by block: each block must be in its holder's tars (whole copy or block member),
 * and the map's size and CRC-32C of the reassembled file stand for it in the manifest comparison.
 */
import type { Transform } from 'node:stream';
import { checkObjectDigests, type BackupInfo } from '../catalog/backup-info.js';
import { mapLimit } from '../catalog/catalog.js';
import { assertDecodable, type AgeKeys } from '../codec/index.js';
import { backupObjects, type BackupObject } from '../catalog/backup-objects.js';
import { FILE_MAP, blockFilesFound, chainPath, filesByHolder, parseBlockEntry, prefixOf, readFileMap, type FileMap } from '../catalog/incremental.js';
import { checkAgainstManifest, type FileDigest } from '../pg/backup-manifest.js';
import { isLsn, parseLsn } from '../pg/lsn.js';
import { isSegmentSize, walSegmentName, walSegmentOffset } from '../pg/wal-names.js';
import type { ObjectInfo, ObjectStore } from '../storage/types.js';
import { readBackupObject } from './read-object.js';
import type { BackupResult, ObjectResult, Problem } from './report.js';

/** A file read from a tar, and the object it came from (a manifest problem names that object). */
interface FoundFile extends FileDigest {
  key: string;
}

/** What is wrong with backup.info on its own: fields that contradict each other. */
export function backupInfoProblems(info: BackupInfo): string[] {
  const out: string[] = [];
  if (info.status !== 'DONE') out.push(`its status is ${info.status}, not DONE`);
  if (!isSegmentSize(info.xlog_segment_size)) out.push(`xlog_segment_size ${info.xlog_segment_size} is not a WAL segment size`);
  if (!info.systemid) out.push('it records no systemid');
  if (info.timeline === null || info.timeline < 1) out.push('it records no timeline');
  const lsns: Record<'begin' | 'end', bigint | undefined> = { begin: undefined, end: undefined };
  for (const side of ['begin', 'end'] as const) {
    const xlog = info[`${side}_xlog`];
    const wal = info[`${side}_wal`];
    const offset = info[`${side}_offset`];
    if (!xlog || !isLsn(xlog)) {
      out.push(`${side}_xlog ${xlog ?? 'None'} is not an LSN`);
      continue;
    }
    const lsn = parseLsn(xlog);
    lsns[side] = lsn;
    if (info.timeline === null || !isSegmentSize(info.xlog_segment_size)) continue;
    const expected = walSegmentName(info.timeline, lsn, info.xlog_segment_size);
    if (wal !== expected) out.push(`${side}_wal is ${wal ?? 'None'}, but ${side}_xlog ${xlog} on timeline ${info.timeline} is in ${expected}`);
    const at = walSegmentOffset(lsn, info.xlog_segment_size);
    if (offset !== null && offset !== at) out.push(`${side}_offset is ${offset}, but ${side}_xlog ${xlog} is at offset ${at} of its segment`);
  }
  if (lsns.begin !== undefined && lsns.end !== undefined && lsns.end < lsns.begin) out.push(`end_xlog ${info.end_xlog} is before begin_xlog ${info.begin_xlog}`);
  if (info.begin_time && info.end_time && info.end_time.toDate() < info.begin_time.toDate()) out.push('end_time is before begin_time');
  return out;
}

export interface BackupCheckOptions {
  jobs: number;
  /** A byte counter for each object read (the progress display). */
  counter: () => Transform;
  /** Every object of the backup's folder, from the catalog's listing. */
  listed: ObjectInfo[];
  /** For an incremental: its chain, full first, the incremental last (catalog/incremental.ts chainOf), or the error that broke it. */
  chain?: BackupInfo[] | Error;
  /** The store's age keys, for encrypted tars. */
  age?: AgeKeys;
}

export async function verifyBackup(store: ObjectStore, serverName: string, info: BackupInfo, opts: BackupCheckOptions): Promise<BackupResult> {
  const prefix = prefixOf(serverName, info);
  const infoKey = `${prefix}backup.info`;
  const problems: Problem[] = backupInfoProblems(info).map((what) => ({ key: infoKey, what: `backup.info: ${what}` }));
  const notChecked: string[] = [];
  const recorded = info.pgark_object_sha256;
  const result: BackupResult = {
    backupId: info.backup_id,
    backupName: info.backup_name,
    writer: recorded ? 'pgark' : 'barman-cloud',
    timeline: info.timeline,
    beginWal: info.begin_wal,
    endWal: info.end_wal,
    beginLsn: info.begin_xlog,
    endLsn: info.end_xlog,
    endTime: info.end_time ? info.end_time.toDate().toISOString() : null,
    ok: false,
    objects: [],
    manifestFiles: null,
    problems,
    notChecked,
  };

  let objects: BackupObject[] = [];
  try {
    objects = await backupObjects(store, serverName, { backupId: info.backup_id, tablespaces: info.tablespaces ?? [] }, prefix);
  } catch (err) {
    problems.push({ key: prefix, what: (err as Error).message });
  }
  const known = new Set([infoKey, `${prefix}${FILE_MAP}`, ...objects.map((o) => o.key)]);
  for (const o of opts.listed) {
    if (!known.has(o.key) && !o.key.startsWith(`${prefix}annotations/`)) notChecked.push(`${o.key}: not a tar of this backup, not read`);
  }
  // Without a single tar there is nothing to match the digests with; the missing tar is reported above.
  const digests = recorded && objects.length ? checkObjectDigests(recorded, objects) : undefined;
  problems.push(...(digests?.problems ?? []));
  if (info.size !== null && recorded) {
    const stored = objects.reduce((n, o) => n + o.size, 0);
    if (stored !== info.size) problems.push({ key: infoKey, what: `backup.info: size is ${info.size} bytes, but its tars hold ${stored}` });
  }

  // Missing keys are the command's configuration, not damage: refuse before reading anything.
  for (const o of objects) assertDecodable(o, opts.age, o.key);
  const found = new Map<string, FoundFile>();
  let manifest: { text: string; key: string } | undefined;
  result.objects = objects.map((o): ObjectResult => ({ key: o.key, size: o.size, codec: o.codec, entries: 0, sha256: 'not-read' }));
  const readTar = (o: BackupObject) => readBackupObject(store, o.key, o, opts.age, opts.counter());
  await mapLimit(objects, opts.jobs, async (o) => {
    const entry = result.objects.find((r) => r.key === o.key)!;
    const read = await readTar(o);
    entry.entries = read.entries;
    if (read.problem) problems.push({ key: o.key, what: read.problem });
    const want = digests?.expected.get(o.key);
    if (!recorded) entry.sha256 = 'not-recorded';
    else if (read.sha256 !== undefined && want !== undefined) {
      entry.sha256 = read.sha256 === want ? 'match' : 'mismatch';
      if (read.sha256 !== want) problems.push({ key: o.key, what: `its SHA-256 is ${read.sha256}, backup.info recorded ${want} when it was stored` });
    }
    // backup_manifest names tablespace files as PGDATA would reach them.
    const under = o.base === 'data' ? '' : `pg_tblspc/${o.base}/`;
    for (const [path, f] of read.files) found.set(chainPath(under, path), { ...f, key: o.key });
    if (read.manifest !== undefined && o.base === 'data') manifest = { text: read.manifest, key: o.key };
  });

  if (opts.chain) await readChainMembers(store, serverName, info, opts.chain, { jobs: opts.jobs, readTar, found, problems });

  if (manifest) result.writer = 'pgark';
  if (manifest) {
    const check = checkAgainstManifest(manifest.text, found);
    result.manifestFiles = check.files;
    for (const p of check.problems) problems.push({ key: (p.path && found.get(p.path)?.key) ?? manifest.key, what: `backup_manifest: ${p.message}` });
  } else if (recorded && !problems.some((p) => p.key === objects.find((o) => o.base === 'data')?.key)) {
    // An unreadable data.tar is reported already; its manifest may be in the part that was not read.
    problems.push({ key: objects.find((o) => o.base === 'data')?.key ?? prefix, what: 'pgark writes a backup_manifest into data.tar, but this backup has none' });
  } else {
    notChecked.push(
      'no backup_manifest (barman-cloud writes none): file contents are only as good as the tar and codec checks; a flipped byte inside a member that keeps the tar and the compressed stream valid is not detected',
      'no object digests in backup.info: an object replaced whole by another valid tar is not detected',
    );
  }
  if (!recorded && info.size === null) notChecked.push('backup.info records no size');
  result.ok = problems.length === 0;
  return result;
}

/**
 * The other members of an incremental's chain: each must be DONE, its tars present and as its
 * backup.info recorded them, and hold the files the incremental's map names it for; those files
 * join `found` for the manifest check.
 */
async function readChainMembers(
  store: ObjectStore,
  serverName: string,
  info: BackupInfo,
  chain: BackupInfo[] | Error,
  ctx: { jobs: number; readTar: (o: BackupObject) => ReturnType<typeof readBackupObject>; found: Map<string, FoundFile>; problems: Problem[] },
): Promise<void> {
  const own = prefixOf(serverName, info);
  if (chain instanceof Error) {
    ctx.problems.push({ key: `${own}backup.info`, what: chain.message });
    return;
  }
  let held: Map<string, Set<string>>;
  let map: FileMap | undefined;
  try {
    map = await readFileMap(store, serverName, info);
    if (!map) throw new Error(`incremental backup ${info.backup_id} has no ${FILE_MAP}`);
    held = filesByHolder(map, chain);
  } catch (err) {
    ctx.problems.push({ key: own + FILE_MAP, what: (err as Error).message });
    return;
  }
  const blocked = new Set(map!.files.filter((f) => f.blocks?.runs).map((f) => f.path));
  const pieces = new Map<string, Set<string>>(chain.map((m) => [m.backup_id, new Set()]));
  for (const member of chain.slice(0, -1)) {
    const prefix = prefixOf(serverName, member);
    const mine = held.get(member.backup_id)!;
    if (member.status !== 'DONE') ctx.problems.push({ key: `${prefix}backup.info`, what: `chain member of ${info.backup_id} has status ${member.status}, not DONE` });
    if (mine.size === 0) continue;
    let objects: BackupObject[];
    try {
      objects = await backupObjects(store, serverName, { backupId: member.backup_id, tablespaces: member.tablespaces ?? [] }, prefix);
    } catch (err) {
      ctx.problems.push({ key: prefix, what: `chain member of ${info.backup_id}: ${(err as Error).message}` });
      continue;
    }
    const digests = member.pgark_object_sha256 ? checkObjectDigests(member.pgark_object_sha256, objects) : undefined;
    ctx.problems.push(...(digests?.problems ?? []));
    await mapLimit(objects, ctx.jobs, async (o) => {
      const read = await ctx.readTar(o);
      if (read.problem) ctx.problems.push({ key: o.key, what: read.problem });
      const want = digests?.expected.get(o.key);
      if (want !== undefined && read.sha256 !== undefined && read.sha256 !== want) ctx.problems.push({ key: o.key, what: `its SHA-256 is ${read.sha256}, backup.info recorded ${want} when it was stored` });
      const under = o.base === 'data' ? '' : `pg_tblspc/${o.base}/`;
      for (const [path, f] of read.files) {
        pieces.get(member.backup_id)!.add(chainPath(under, path));
        if (mine.has(under + path) && !blocked.has(under + path)) ctx.found.set(under + path, { ...f, key: o.key });
      }
    });
  }
  // Files stored block by block: their blocks checked against the members' tars, the map's digest standing for the reassembled file.
  pieces.set(info.backup_id, new Set([...ctx.found.keys()].filter((k) => parseBlockEntry(k) || blocked.has(k))));
  for (const k of [...ctx.found.keys()]) if (parseBlockEntry(k)) ctx.found.delete(k);
  const blocks = blockFilesFound(map!, pieces);
  for (const [path, f] of blocks.found) ctx.found.set(path, { size: f.size, crc32c: f.crc32c, key: `${prefixOf(serverName, chain.find((m) => m.backup_id === f.holder) ?? info)}${FILE_MAP}` });
  for (const p of blocks.problems) ctx.problems.push({ key: `${own}${FILE_MAP}`, what: p.what });
}
