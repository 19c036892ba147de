/**
 * barman-cloud-backup: pgark's parallel base backup (backup/run.ts) into barman's layout, with
 * backup.info written last, from barman's argv. The connection follows libpq as barman's does:
 * -h/-p/-U/-d, else PGHOST (a directory is a Unix socket), PGPORT, PGUSER; dbname postgres.
 * The backup reads PGDATA from disk when $PGDATA is the server's own directory (the instance pod),
 * otherwise it streams BASE_BACKUP. No temporary file is written, so TMPDIR is never used.
 *
 * Unlike barman, the backup is committed only once its end WAL segment is in the store, so a DONE
 * backup is always restorable; the wait is bounded (WAL_WAIT_SECONDS covers CNPG's 5 minute
 * archive_timeout on a standby, whose WAL only the primary archives).
 */
import type { ResolvedObjectStore } from '../../config/types.js';
import type { CodecName } from '../../codec/types.js';
import type { PgConnectionOptions } from '../../pg/connect.js';
import { checkBackupName } from '../../backup/commit.js';
import { takeBackupWithin } from '../../backup/run.js';
import { backupMemory } from '../../config/memory.js';
import { PgarkError } from '../../util/errors.js';
import { BarmanExit, parseBarmanSize, runCommand, textArg } from './shared.js';
import { EXIT, type BarmanInvocation, type BarmanLog } from './common.js';

export interface BackupOptions {
  target: ResolvedObjectStore;
  name?: string;
  compression: Extract<CodecName, 'none' | 'gzip' | 'bzip2' | 'snappy' | 'lz4'>;
  immediateCheckpoint: boolean;
  /** Compression workers and parts uploaded at once (barman's upload processes, default 2). */
  jobs: number;
  /** Multipart part size floor in bytes (--min-chunk-size). */
  minChunkSize?: number;
  /** -e/--encryption: S3 server-side encryption of every object. */
  encryption?: 'AES256' | 'aws:kms';
  /** --tags/--tag, parsed by the cli layer (barman's csv rule). */
  tags?: Record<string, string>;
  pg: Pick<PgConnectionOptions, 'pghost' | 'pgport' | 'pguser' | 'pgdatabase'>;
}

const WAL_WAIT_SECONDS = 900;
/** barman's own session name: monitoring that looks for it in pg_stat_activity keeps working. */
const APPLICATION_NAME = 'barman_cloud_backup';
const MAX_TAGS = 10;

/** S3 allows 10 tags per object; barman refuses more with a ValueError (exit 4). */
function checkTags(tags: Record<string, string>): void {
  const n = Object.keys(tags).length;
  if (n > MAX_TAGS) throw new BarmanExit(`Too many tags: ${n} (at most ${MAX_TAGS})`, EXIT.general);
}

export async function backup(opts: BackupOptions, log: BarmanLog): Promise<void> {
  if (opts.name !== undefined) {
    try {
      checkBackupName(opts.name);
    } catch (err) {
      throw new BarmanExit(`argument -n/--name: ${(err as Error).message}`, EXIT.cli, (err as PgarkError).hint);
    }
  }
  const config = { ...opts.target.config };
  if (opts.tags) {
    checkTags(opts.tags);
    config.tags = opts.tags;
  }
  if (opts.encryption) config.data = { compression: undefined, ...config.data, encryption: opts.encryption };
  try {
    const result = await takeBackupWithin(backupMemory(), {
      store: { ...opts.target, config },
      pg: { ...opts.pg, pgdata: process.env.PGDATA || undefined },
      name: opts.name,
      immediateCheckpoint: opts.immediateCheckpoint,
      compression: opts.compression,
      jobs: opts.jobs,
      method: 'auto',
      walTimeoutSeconds: WAL_WAIT_SECONDS,
      partSize: opts.minChunkSize,
      progress: false,
      applicationName: APPLICATION_NAME,
    });
    const r = result.record;
    log.info(`Backup completed (backup ID: ${r.backupId}${r.backupName ? `, name: ${r.backupName}` : ''}, WAL ${r.beginWal} .. ${r.endWal}, ${result.method})`);
  } catch (err) {
    if (err instanceof BarmanExit) throw err;
    // barman exits 1 whenever the backup itself fails (connection, upload, backup.info).
    throw new BarmanExit(`Backup failed: ${(err as Error).message}`, EXIT.operation, (err as PgarkError).hint);
  }
}

/** barman-cloud-backup's argv (tags already read by the cli layer) to a backup. */
export function runBackup(inv: BarmanInvocation): Promise<number> {
  const { values } = inv;
  return runCommand(inv, 'destination_url', async (target, io) => {
    // -S/--max-archive-size is validated and otherwise moot: pgark splits data.tar by its own rule (one part per 256 MiB, up to
    // --jobs, for a restore that decodes them at once), never into parts larger than barman's 100GB default; barman's restore reads either.
    if (values.maxArchiveSize !== undefined) parseBarmanSize(String(values.maxArchiveSize));
    await backup(
      {
        target,
        name: textArg(values.backupName),
        compression: (textArg(values.compression) ?? 'none') as BackupOptions['compression'],
        immediateCheckpoint: values.immediateCheckpoint === true,
        jobs: values.jobs === undefined ? 2 : Number(values.jobs),
        minChunkSize: values.minChunkSize === undefined ? undefined : parseBarmanSize(String(values.minChunkSize)),
        encryption: textArg(values.encryption) as BackupOptions['encryption'],
        tags: inv.tags,
        pg: { pghost: textArg(values.host), pgport: textArg(values.port), pguser: textArg(values.user), pgdatabase: textArg(values.dbname) },
      },
      io.log,
    );
  });
}
