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
