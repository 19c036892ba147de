/**
 * Fetching one WAL file from the archive for restore_command. Looks up the exact name with any
 * known compression suffix (never a .partial or .backup object for a plain segment name),
 * decompresses, writes to a temp file in the target directory and renames it into place, so a
 * kill at any point leaves either nothing or the complete file under its final name.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { decompressStream } from '../codec/index.js';
import { count } from '../io/count.js';
import { CorruptDataError } from '../codec/errors.js';
import { NotFoundError, UserError } from '../util/errors.js';
import { findStoredWal } from './stored-wal.js';
import { classifyWalName, isSegmentSize, parseWalName } from '../pg/wal-names.js';
import type { WalTarget } from './target.js';

/** Writes WAL file `name` to `dest`; resolves with its size. Throws NotFoundError when absent. */
export async function fetchWalFile(target: WalTarget, name: string, dest: string, opts: { fsync?: boolean } = {}): Promise<number> {
  if (!classifyWalName(name)) throw new UserError(`"${name}" is not a WAL file name`, 'restore_command must pass %f %p', 3);
  const wal = parseWalName(name);
  const found = await findStoredWal(target.store, target.serverName, name);
  if (!found) throw new NotFoundError(`WAL file ${name} not found in ${target.description}`);
  const temp = join(dirname(dest), `.${name}.pgark-tmp-${randomBytes(4).toString('hex')}`);
  const counter = count();
  try {
    await pipeline(await target.store.get(found.key), decompressStream(found.codec), counter, createWriteStream(temp, { mode: 0o600 }));
    if (wal.kind === 'segment' && !isSegmentSize(counter.bytes)) {
      throw new CorruptDataError(found.codec, `${found.key} decompresses to ${counter.bytes} bytes, which is not a WAL segment size`);
    }
    if (opts.fsync) {
      const fh = await open(temp, 'r');
      await fh.sync().finally(() => fh.close());
    }
    await rename(temp, dest);
    return counter.bytes;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
