/** pgBackRest 2.45 set up the way the benchmarks run it: one TLS s3rver repository, one stanza "bench". */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PgServer } from '../test/harness/postgres.js';
import type { S3rver } from '../test/harness/s3rver.js';

/** The [global] repository lines that point pgBackRest 2.45 at the (TLS) s3rver of a benchmark. */
export function pgbackrestS3RepoLines(s3: S3rver, repoPath: string): string[] {
  return [
    '[global]',
    'repo1-type=s3',
    `repo1-path=${repoPath}`,
    `repo1-s3-bucket=${s3.bucket}`,
    'repo1-s3-endpoint=127.0.0.1',
    `repo1-storage-port=${s3.port}`,
    'repo1-s3-uri-style=path',
    'repo1-storage-verify-tls=n',
    `repo1-s3-key=${s3.accessKeyId}`,
    `repo1-s3-key-secret=${s3.secretAccessKey}`,
    `repo1-s3-region=${s3.region}`,
  ];
}

/** pgbackrest.conf in `dir` for stanza "bench" on `pg` (lock and log directories beside it, open to the server's user). */
export function pgbackrestConfig(dir: string, s3: S3rver, pg: PgServer, repoPath: string, processMax: number): string {
  const conf = join(dir, 'pgbackrest.conf');
  writeFileSync(
    conf,
    [
      ...pgbackrestS3RepoLines(s3, repoPath),
      'repo1-retention-full=100',
      `process-max=${processMax}`,
      'start-fast=y',
      `lock-path=${join(dir, 'lock')}`,
      `log-path=${join(dir, 'log')}`,
      `spool-path=${join(dir, 'spool')}`,
      'log-level-file=off',
      'log-level-console=warn',
      '',
      '[bench]',
      `pg1-path=${pg.pgdata}`,
      `pg1-port=${pg.port}`,
      `pg1-socket-path=${join(pg.baseDir, 'sock')}`,
      'pg1-user=postgres',
      '',
    ].join('\n'),
  );
  chmodSync(conf, 0o644);
  for (const d of ['lock', 'log', 'spool']) {
    mkdirSync(join(dir, d), { recursive: true });
    chmodSync(join(dir, d), 0o777);
  }
  return conf;
}
