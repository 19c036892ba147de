/**
 * Fetching one WAL file from the archive for restore_command. Looks up the exact name with any
 * known compression suffix (never a .partial or .backup object for a plain segment name),
 * decompresses, writes to a temp file in the target directory, checks that the bytes can be what
 * the name says, and renames it into place, so a kill at any point leaves either nothing or the
 * complete, checked file under its final name.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { count } from '../io/count.js';
import { CorruptDataError } from '../codec/errors.js';
import { parseHistoryFile } from '../pg/history.js';
import { NotFoundError, PgarkError, UserError } from '../util/errors.js';
import { logger } from '../util/log.js';
import { findStoredWal, type ArchivedWalIndex, type StoredWal } from './stored-wal.js';
import { classifyWalName, parseWalName, type ParsedWalName } from '../pg/wal-names.js';
import { ABORT_RECOVERY_EXIT, ABORT_RECOVERY_MARK } from './restore-exit.js';
import { readSegmentHeaderOf, segmentContentProblem } from './segment.js';
import type { WalTarget } from './target.js';

/** A WAL object that exists but cannot be the file its name says: PostgreSQL must not end the recovery on it. */
export class DamagedWalError extends PgarkError {
  constructor(object: string, problem: string) {
    super(
      `${ABORT_RECOVERY_MARK} WAL object ${object} is damaged: ${problem}`,
      ABORT_RECOVERY_EXIT,
      'restore_command failed so that PostgreSQL stops instead of promoting on partial data; restore the object from another copy, or set a recovery target before it',
    );
  }
}

/** Why a history file's text cannot be the history of its timeline, or undefined when it can. */
function historyProblem(name: string, wal: ParsedWalName, text: string): string | undefined {
  try {
    const entries = parseHistoryFile(text, name);
    if (entries.length === 0) return 'it lists no parent timeline';
    const late = entries.find((e) => e.timeline >= wal.timeline);
    return late ? `it lists timeline ${late.timeline} as an ancestor of timeline ${wal.timeline}` : undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

async function contentProblem(name: string, path: string, size: number): Promise<string | undefined> {
  const wal = parseWalName(name);
  if (wal.kind === 'segment' || wal.kind === 'partial') return segmentContentProblem(wal.base, size, await readSegmentHeaderOf(path));
  if (wal.kind === 'history') return historyProblem(name, wal, await readFile(path, 'utf8'));
  return undefined;
}

/**
 * Writes WAL file `name` to `dest`; resolves with its size. Throws NotFoundError when absent and
 * DamagedWalError when the stored object does not decode to a file that fits its name.
 * With `index` (the daemon's prefetch), a name its folder listing holds is fetched without a LIST
 * of its own; "absent" is only ever said after a LIST of the name itself, so a listing up to a
 * second old can never end replay early, and a listed object gone since is looked up again.
 */
export async function fetchWalFile(target: WalTarget, name: string, dest: string, index?: ArchivedWalIndex): Promise<number> {
  if (!classifyWalName(name)) throw new UserError(`"${name}" is not a WAL file name`, 'restore_command must pass %f %p', 3);
  const listed = index && (await index.find(target.store, target.serverName, name).catch(() => undefined));
  if (listed) {
    try {
      return await fetchStoredWal(target, name, dest, listed, 0);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      index.forget(target.store, listed.key);
    }
  }
  const t0 = performance.now();
  const found = await findStoredWal(target.store, target.serverName, name);
  if (!found) throw new NotFoundError(`WAL file ${name} not found in ${target.description}`);
  return fetchStoredWal(target, name, dest, found, performance.now() - t0);
}

async function fetchStoredWal(target: WalTarget, name: string, dest: string, found: StoredWal, lookupMs: number): Promise<number> {
  const t1 = performance.now();
  const object = `${found.key} in ${target.description}`;
  const temp = join(dirname(dest), `.${name}.pgark-tmp-${randomBytes(4).toString('hex')}`);
  const counter = count();
  try {
    try {
      const { decodeStreams } = await import('../codec/index.js');
      await pipeline([await target.store.get(found.key), ...decodeStreams(found, target.age, object), counter, createWriteStream(temp, { mode: 0o600 })]);
    } catch (err) {
      // Transport failures are retried and resumed below this; what reaches here undecoded is the stored bytes.
      if (err instanceof CorruptDataError) throw new DamagedWalError(object, err.message);
      throw err;
    }
    const t2 = performance.now();
    const problem = await contentProblem(name, temp, counter.bytes);
    if (problem) throw new DamagedWalError(object, problem);
    await rename(temp, dest);
    // Where a segment's time goes (PGARK_LOG_LEVEL=debug): the lookup, then GET + decode + write as one stream, then the check.
    logger().debug({ wal: name, lookupMs: Math.round(lookupMs), transferMs: Math.round(t2 - t1), checkMs: Math.round(performance.now() - t2), bytes: counter.bytes }, 'WAL file fetched');
    return counter.bytes;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
