/**
 * One dump, streamed: pg_dump (or pg_dumpall --globals-only), ending only after a zero exit -> compressor ->
 * age encryption (when configured) -> byte count -> SHA-256 -> ObjectStore.put as a multipart / block-list upload. No temporary file.
 *
 * Memory: the S3 store holds queueSize + 1 part buffers for one upload (3 x 5 MiB; the part size grows
 * for very large databases so the object fits the provider's part limit), plus the ~64 KiB stream
 * buffers between the stages, whatever the database size (docs/logical-backups.md "Memory").
 *
 * A dump counts only when its sidecar exists, and the sidecar is written after put() resolved. If
 * pg_dump fails midway its stream fails, the upload is aborted, and anything that may have
 * reached the store under the dump's key is deleted.
 */
import { pipeline } from 'node:stream';
import type { Encryption } from '../config/types.js';
import { ChildStream } from '../io/child.js';
import { count } from '../io/count.js';
import { cryptoHasher, hash } from '../io/hash.js';
import { ProgressDisplay } from '../io/progress.js';
import { clientTool } from '../pg/binaries.js';
import { logger } from '../util/log.js';
import type { ObjectStore } from '../storage/types.js';
import type { DumpCodec, DumpFormat } from './keys.js';
import { metaKey } from './keys.js';
import { writeMeta, type DumpMeta } from './meta.js';
import { toolEnv, type PgConn } from './pgconn.js';
import { compressor } from './streams.js';
import { encryptStream, type AgeKeys } from '../codec/age.js';

const PART_SIZE = 5 * 1024 * 1024;
const QUEUE = 2;

export interface DumpRequest {
  store: ObjectStore;
  key: string;
  kind: 'database' | 'globals';
  /** Required for kind 'database'. */
  database?: string;
  format: DumpFormat;
  codec: DumpCodec;
  conn: PgConn;
  scope: string;
  serverVersion: string;
  pgDumpVersion: string;
  /** Upper estimate of the dump size, used to size upload parts. */
  expectedBytes: number;
  /** Leave ownership out of the dump (pg_dump --no-owner). */
  noOwner?: boolean;
  /** S3 server-side encryption for the dump and its sidecar. */
  encryption?: Encryption;
  /** Client-side age encryption of the dump (after compression); the sidecar stays readable. */
  age?: AgeKeys;
}

function dumpCommand(req: DumpRequest): { tool: string; args: string[]; database: string } {
  if (req.kind === 'globals') return { tool: 'pg_dumpall', args: ['--globals-only', '--no-password'], database: req.conn.database };
  const args = ['--no-password', req.format === 'custom' ? '--format=custom' : '--format=plain'];
  if (req.noOwner) args.push('--no-owner');
  // The database goes through PGDATABASE: a name containing '=' would be read as a conninfo string by -d.
  return { tool: 'pg_dump', args, database: req.database! };
}

export async function dumpToStore(req: DumpRequest): Promise<DumpMeta> {
  const startedAt = new Date();
  const { tool: name, args, database } = dumpCommand(req);
  const tool = new ChildStream(clientTool(name), args, { label: name, env: toolEnv(req.conn, database), stdin: false });
  const counter = count();
  const digest = hash(cryptoHasher('sha256'));
  const abort = new AbortController();
  const zip = compressor(req.codec);
  // A bar on a terminal only: off one, the sidecar and the command's summary are the record.
  const progress = new ProgressDisplay({ label: `dumping ${req.kind === 'globals' ? 'globals' : database}`, total: req.expectedBytes, estimate: true });
  let streamError: Error | undefined;
  // The store's put reads the last stage: it is this pipeline's sink.
  pipeline([tool, progress.filter(), ...(zip ? [zip] : []), ...(req.age ? [encryptStream(req.age)] : []), counter, digest], (err) => {
    if (err) {
      streamError = err;
      abort.abort(err);
    }
  });
  try {
    const result = await req.store.put(req.key, digest, {
      partSize: PART_SIZE,
      // Twice the database size leaves room for a dump larger than the data on disk (bytea as hex, no codec).
      sizeHint: req.expectedBytes * 2,
      queueSize: QUEUE,
      contentType: req.format === 'custom' ? 'application/octet-stream' : req.codec === 'gzip' ? 'application/gzip' : 'application/sql',
      signal: abort.signal,
      encryption: req.encryption,
    });
    await tool.success();
    if (streamError) throw streamError;
    if (result.size !== counter.bytes) throw new Error(`stored ${result.size} bytes for "${req.key}" but produced ${counter.bytes}`);
    const meta: DumpMeta = {
      version: 1,
      kind: req.kind,
      ...(req.kind === 'database' ? { database: req.database } : {}),
      format: req.format,
      codec: req.codec,
      size: counter.bytes,
      sha256: digest.digest,
      serverVersion: req.serverVersion,
      pgDumpVersion: req.pgDumpVersion,
      scope: req.scope,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
    };
    await writeMeta(req.store, metaKey(req.key), meta, req.encryption);
    return meta;
  } catch (err) {
    tool.kill();
    await req.store.delete([req.key]).catch((e) => logger().warn({ key: req.key, err: (e as Error).message }, 'could not remove an incomplete dump'));
    // The tool's own message says more than the aborted upload does.
    throw streamError ?? err;
  } finally {
    progress.stop();
  }
}
