/**
 * The argv of barman-cloud's nine commands as data: for each command, every option barman 3.17
 * accepts (barman-cloud-cli-contract.md §1.2, §2.x), its argparse action, its exclusive group, and
 * whether pgark honours, ignores or refuses it. argparse.ts parses with these; nothing else
 * here. Loaded on the archive_command path: node builtins only.
 */
import type { CommandSpec, OptionDef, PositionalDef } from './argparse.js';

/**
 * The barman-cloud version the drop-ins report for -V/--version. Older CNPG releases run
 * `barman-cloud-wal-archive --version` and need at least 3.4 for full features (§1.8); 3.17.0 is the
 * release whose parsers the contract was checked against, so it is what pgark claims to behave as.
 */
export const BARMAN_COMPAT_VERSION = '3.17.0';

export const BARMAN_COMMANDS = [
  'barman-cloud-wal-archive',
  'barman-cloud-wal-restore',
  'barman-cloud-check-wal-archive',
  'barman-cloud-backup',
  'barman-cloud-backup-list',
  'barman-cloud-backup-show',
  'barman-cloud-backup-delete',
  'barman-cloud-backup-keep',
  'barman-cloud-restore',
] as const;

export type BarmanCommand = (typeof BARMAN_COMMANDS)[number];

export const CLOUD_PROVIDERS = ['aws-s3', 'azure-blob-storage', 'google-cloud-storage'] as const;
export type CloudProvider = (typeof CLOUD_PROVIDERS)[number];
export const AZURE_CREDENTIALS = ['azure-cli', 'managed-identity', 'default'] as const;
export type AzureCredentialChoice = (typeof AZURE_CREDENTIALS)[number];

function intType(min: number) {
  return (text: string): number => {
    if (!/^\s*[-+]?\d+\s*$/.test(text)) throw new Error(`invalid int value: '${text}'`);
    const n = Number(text);
    if (n < min) throw new Error(`invalid value: '${text}' (at least ${min})`);
    return n;
  };
}

/** barman's size arguments: a number with an optional unit (5MB, 100GB, 4MiB). */
function sizeType(text: string): string {
  if (!/^\s*\d+(\.\d+)?\s*([kKmMgGtTpP]i?[bB]?|[bB])?\s*$/.test(text)) throw new Error(`invalid size value: '${text}'`);
  return text;
}

const ignored = (why: string) => ({ support: 'ignored', why }) as const;
const refused = (why: string) => ({ support: 'refused', why }) as const;

/** Options of every tool (barman's create_argument_parser). */
export const COMMON_OPTIONS: readonly OptionDef[] = [
  { flags: ['-V', '--version'], dest: 'version', action: 'version', help: "show program's version number and exit" },
  { flags: ['--help'], dest: 'help', action: 'help', help: 'show this help message and exit' },
  { flags: ['-v', '--verbose'], dest: 'verbose', action: 'count', group: 'verbosity', help: 'increase output verbosity (e.g., -vv is more than -v)' },
  { flags: ['-q', '--quiet'], dest: 'quiet', action: 'count', group: 'verbosity', help: 'decrease output verbosity (e.g., -qq is less than -q)' },
  { flags: ['-t', '--test'], dest: 'test', action: 'const', help: 'test cloud connectivity and exit' },
  {
    flags: ['--cloud-provider'],
    dest: 'cloudProvider',
    action: 'value',
    choices: CLOUD_PROVIDERS,
    help: 'the cloud provider to use as a storage backend (default aws-s3; google-cloud-storage is refused by pgark)',
  },
  { flags: ['--endpoint-url'], dest: 'endpointUrl', action: 'value', help: 'override default S3 endpoint URL with the given one' },
  { flags: ['-P', '--aws-profile', '--profile'], dest: 'awsProfile', action: 'value', metavar: 'AWS_PROFILE', help: 'profile name (e.g. INI section in AWS credentials file)' },
  {
    flags: ['--read-timeout'],
    dest: 'readTimeout',
    action: 'value',
    type: intType(0),
    help: 'the time in seconds until a timeout is raised when waiting to read from a connection (accepted; pgark keeps its own timeouts and retries)',
    pgark: ignored('pgark bounds and retries every request itself'),
  },
  {
    flags: ['--azure-credential', '--credential', '--default'],
    dest: 'azureCredential',
    action: 'value',
    choices: AZURE_CREDENTIALS,
    metavar: '{azure-cli,managed-identity,default}',
    help: 'optionally specify the type of credential to use when authenticating with Azure',
  },
];

const COMPRESSION_GROUP = 'compression';
const compressionFlag = (flags: string[], codec: string): OptionDef => ({
  flags,
  dest: 'compression',
  action: 'const',
  constValue: codec,
  group: COMPRESSION_GROUP,
  help: `${codec}-compress the ${'WAL'} while uploading to the cloud`,
});

const tagOptions = (prefix: '' | 'history-', dest: string, what: string): OptionDef[] => [
  { flags: [`--${prefix}tags`], dest, action: 'list', metavar: 'KEY,VALUE', group: dest, help: `tags to be added to ${what}` },
  { flags: [`--${prefix}tag`], dest, action: 'append', metavar: 'KEY,VALUE', group: dest, help: `a tag to be added to ${what} (repeatable)` },
];

const encryptionOption: OptionDef = {
  flags: ['-e', '--encryption'],
  dest: 'encryption',
  action: 'value',
  choices: ['AES256', 'aws:kms'],
  help: 'the encryption algorithm used when storing the uploaded data in S3',
};
const sseKmsKeyId: OptionDef = {
  flags: ['--sse-kms-key-id'],
  dest: 'sseKmsKeyId',
  action: 'value',
  help: 'the AWS KMS key ID for server-side encryption with aws:kms',
  pgark: refused('pgark stores with the bucket\'s default KMS key only; drop the option or use -e aws:kms alone'),
};
const encryptionScope: OptionDef = {
  flags: ['--encryption-scope'],
  dest: 'encryptionScope',
  action: 'value',
  help: 'the name of an encryption scope defined in the Azure Blob Storage service',
  pgark: refused('pgark does not set Azure encryption scopes; use the container\'s default scope'),
};
const kmsKeyName: OptionDef = {
  flags: ['--kms-key-name'],
  dest: 'kmsKeyName',
  action: 'value',
  help: 'the name of the GCP KMS key (Google Cloud Storage only)',
  pgark: refused('Google Cloud Storage is not supported by pgark'),
};

const WAL_ARCHIVE_OPTIONS: readonly OptionDef[] = [
  compressionFlag(['-z', '--gzip'], 'gzip'),
  compressionFlag(['-j', '--bzip2'], 'bzip2'),
  compressionFlag(['--xz'], 'xz'),
  compressionFlag(['--snappy'], 'snappy'),
  compressionFlag(['--zstd'], 'zstd'),
  compressionFlag(['--lz4'], 'lz4'),
  {
    flags: ['--compression-level'],
    dest: 'compressionLevel',
    action: 'value',
    type: intType(-2147483648),
    help: 'the compression level (accepted; pgark uses its codecs\' default levels)',
    pgark: ignored('the stored WAL decompresses to the same bytes at any level'),
  },
  ...tagOptions('', 'tags', 'each file uploaded to cloud storage'),
  ...tagOptions('history-', 'historyTags', 'each history file uploaded to cloud storage (replacing --tags for them)'),
  kmsKeyName,
  encryptionOption,
  sseKmsKeyId,
  encryptionScope,
  { flags: ['--max-block-size'], dest: 'maxBlockSize', action: 'value', type: sizeType, help: 'Azure block size (accepted, no effect)', pgark: ignored('an Azure upload tuning knob') },
  { flags: ['--max-concurrency'], dest: 'maxConcurrency', action: 'value', type: intType(1), help: 'Azure upload concurrency (accepted, no effect)', pgark: ignored('an Azure upload tuning knob') },
  { flags: ['--max-single-put-size'], dest: 'maxSinglePutSize', action: 'value', type: sizeType, help: 'Azure single-put limit (accepted, no effect)', pgark: ignored('an Azure upload tuning knob') },
];

const url = (dest: 'destination_url' | 'source_url'): PositionalDef => ({ dest, help: `URL of the cloud ${dest === 'destination_url' ? 'destination' : 'source'}, such as a bucket in AWS S3. For example: \`s3://bucket/path/to/folder\`.` });
const server: PositionalDef = { dest: 'server_name', help: 'the name of the server as configured in Barman.' };
const backupId: PositionalDef = { dest: 'backup_id', help: 'the backup ID (or name, or a shortcut such as latest)' };
const formatOption: OptionDef = { flags: ['--format'], dest: 'format', action: 'value', choices: ['json', 'console'], help: 'output format (default console)' };

const spec = (prog: BarmanCommand, description: string, positionals: PositionalDef[], options: OptionDef[], requiredGroups?: string[]): CommandSpec => ({
  prog,
  description,
  positionals,
  options: [...COMMON_OPTIONS, ...options],
  requiredGroups,
});

const BACKUP_SNAPSHOT_OPTIONS: OptionDef[] = [
  '--snapshot-instance',
  '--snapshot-disk',
  '--snapshot-zone',
  '--gcp-project',
  '--snapshot-gcp-project',
  '--gcp-zone',
  '--aws-region',
  '--aws-await-snapshots-timeout',
  '--aws-snapshot-lock-mode',
  '--aws-snapshot-lock-duration',
  '--aws-snapshot-lock-cool-off-period',
  '--aws-snapshot-lock-expiration-date',
  '--azure-subscription-id',
  '--azure-resource-group',
].map((flag) => ({
  flags: [flag],
  dest: flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
  action: flag === '--snapshot-disk' ? ('append' as const) : ('value' as const),
  help: 'snapshot backups only',
  pgark: refused('pgark takes no disk snapshots; it backs up through PostgreSQL'),
}));

/** One spec per command, by the name it is installed under. */
export const COMMAND_SPECS: Record<BarmanCommand, CommandSpec> = {
  'barman-cloud-wal-archive': spec(
    'barman-cloud-wal-archive',
    'This script can be used in the `archive_command` of a PostgreSQL server to ship WAL files to the Cloud. Currently AWS S3 and Azure Blob Storage are supported (pgark).',
    [url('destination_url'), server, { dest: 'wal_path', optional: true, help: 'the value of the \'%p\' keyword (according to \'archive_command\').' }],
    [...WAL_ARCHIVE_OPTIONS],
  ),
  'barman-cloud-wal-restore': spec(
    'barman-cloud-wal-restore',
    'This script can be used as a `restore_command` to download WAL files previously archived with barman-cloud-wal-archive command.',
    [url('source_url'), server, { dest: 'wal_name', help: "The value of the '%f' keyword (according to 'restore_command')." }, { dest: 'wal_dest', help: "The value of the '%p' keyword (according to 'restore_command')." }],
    [{ flags: ['--no-partial'], dest: 'noPartial', action: 'const', help: 'Do not download partial WAL files' }],
  ),
  'barman-cloud-check-wal-archive': spec(
    'barman-cloud-check-wal-archive',
    'Checks that the WAL archive on the specified cloud storage can be safely used for a new PostgreSQL server.',
    [url('destination_url'), server],
    [{ flags: ['--timeline'], dest: 'timeline', action: 'value', type: intType(1), help: 'The earliest timeline whose WALs should cause the check to fail' }],
  ),
  'barman-cloud-backup': spec(
    'barman-cloud-backup',
    'This script can be used to perform a backup of a local PostgreSQL instance and ship the resulting tarball(s) to the Cloud.',
    [url('destination_url'), server],
    [
      { flags: ['-n', '--name'], dest: 'backupName', action: 'value', help: 'a name which can be used to reference this backup' },
      compressionFlag(['-z', '--gzip'], 'gzip'),
      compressionFlag(['-j', '--bzip2'], 'bzip2'),
      compressionFlag(['--snappy'], 'snappy'),
      compressionFlag(['--lz4'], 'lz4'),
      { flags: ['-h', '--host'], dest: 'host', action: 'value', help: 'host or Unix socket for PostgreSQL connection (default: libpq settings)' },
      { flags: ['-p', '--port'], dest: 'port', action: 'value', help: 'port for PostgreSQL connection (default: libpq settings)' },
      { flags: ['-U', '--user'], dest: 'user', action: 'value', help: 'user name for PostgreSQL connection (default: libpq settings)' },
      { flags: ['-d', '--dbname'], dest: 'dbname', action: 'value', help: 'Database name or conninfo string for Postgres connection (default: postgres)' },
      { flags: ['--immediate-checkpoint'], dest: 'immediateCheckpoint', action: 'const', help: 'forces the initial checkpoint to be done as quickly as possible' },
      { flags: ['-J', '--jobs'], dest: 'jobs', action: 'value', type: intType(1), help: 'number of subprocesses to upload data to cloud storage (default: 2)' },
      { flags: ['-S', '--max-archive-size'], dest: 'maxArchiveSize', action: 'value', type: sizeType, help: 'maximum size of an archive when uploading to cloud storage (default: 100GB)', pgark: ignored('pgark sizes its parts for a parallel restore (docs/backups.md), which every barman-cloud-restore reads') },
      { flags: ['--min-chunk-size'], dest: 'minChunkSize', action: 'value', type: sizeType, help: 'minimum size of an individual chunk when uploading to cloud storage' },
      { flags: ['--max-bandwidth'], dest: 'maxBandwidth', action: 'value', type: sizeType, help: 'the maximum amount of data to be uploaded per second', pgark: refused('pgark does not throttle uploads; lower -J/--jobs instead') },
      ...tagOptions('', 'tags', 'each file uploaded to cloud storage'),
      encryptionOption,
      sseKmsKeyId,
      encryptionScope,
      kmsKeyName,
      ...BACKUP_SNAPSHOT_OPTIONS,
    ],
  ),
  'barman-cloud-backup-list': spec('barman-cloud-backup-list', 'This script can be used to list backups made with barman-cloud-backup command.', [url('source_url'), server], [formatOption]),
  'barman-cloud-backup-show': spec('barman-cloud-backup-show', 'This script can be used to show metadata for backups made with barman-cloud-backup command.', [url('source_url'), server, backupId], [formatOption]),
  'barman-cloud-backup-delete': spec(
    'barman-cloud-backup-delete',
    'This script can be used to delete backups made with barman-cloud-backup command.',
    [url('source_url'), server],
    [
      { flags: ['-b', '--backup-id'], dest: 'backupId', action: 'value', group: 'target', help: 'Backup ID of the backup to be deleted' },
      { flags: ['-r', '--retention-policy'], dest: 'retentionPolicy', action: 'value', group: 'target', help: 'If specified, delete all backups eligible for deletion according to the supplied retention policy.' },
      { flags: ['-m', '--minimum-redundancy'], dest: 'minimumRedundancy', action: 'value', type: intType(0), help: 'The minimum number of backups that should always be available.' },
      { flags: ['--dry-run'], dest: 'dryRun', action: 'const', help: 'Find the objects which need to be deleted but do not delete them' },
      { flags: ['--batch-size'], dest: 'batchSize', action: 'value', type: intType(1), help: 'The maximum number of objects to be deleted in a single request' },
    ],
    ['target'],
  ),
  'barman-cloud-backup-keep': spec(
    'barman-cloud-backup-keep',
    'This script can be used to tag backups in cloud storage as archival backups such that they will not be deleted.',
    [url('source_url'), server, backupId],
    [
      { flags: ['-r', '--release'], dest: 'release', action: 'const', group: 'action', help: 'If specified, the command will remove the keep annotation' },
      { flags: ['-s', '--status'], dest: 'status', action: 'const', group: 'action', help: 'If specified, the command will return the keep status' },
      { flags: ['--target'], dest: 'target', action: 'value', choices: ['full', 'standalone'], group: 'action', help: 'Specify the recovery target for this backup' },
    ],
    ['action'],
  ),
  'barman-cloud-restore': spec(
    'barman-cloud-restore',
    'This script can be used to download a backup previously made with barman-cloud-backup command.',
    [url('source_url'), server, backupId, { dest: 'recovery_dir', help: 'the path to a directory for recovery.' }],
    [
      { flags: ['--tablespace'], dest: 'tablespace', action: 'append', metavar: 'NAME:LOCATION', help: 'tablespace relocation rule' },
      { flags: ['--snapshot-recovery-instance'], dest: 'snapshotRecoveryInstance', action: 'value', help: 'snapshot backups only', pgark: refused('pgark restores no disk snapshots') },
      { flags: ['--snapshot-recovery-zone'], dest: 'snapshotRecoveryZone', action: 'value', help: 'snapshot backups only', pgark: refused('pgark restores no disk snapshots') },
      { flags: ['--aws-region'], dest: 'awsRegion', action: 'value', help: 'snapshot backups only', pgark: refused('pgark restores no disk snapshots') },
      { flags: ['--gcp-zone'], dest: 'gcpZone', action: 'value', help: 'snapshot backups only', pgark: refused('pgark restores no disk snapshots') },
      { flags: ['--azure-resource-group'], dest: 'azureResourceGroup', action: 'value', help: 'snapshot backups only', pgark: refused('pgark restores no disk snapshots') },
      { flags: ['--target-tli'], dest: 'targetTli', action: 'value', help: 'target timeline (for the `auto` backup ID)', pgark: refused('pgark restores the backup named by backup_id; it does not choose one by recovery target') },
      { flags: ['--target-lsn'], dest: 'targetLsn', action: 'value', group: 'recoveryTarget', help: 'target LSN (for the `auto` backup ID)', pgark: refused('pgark restores the backup named by backup_id; it does not choose one by recovery target') },
      { flags: ['--target-time'], dest: 'targetTime', action: 'value', group: 'recoveryTarget', help: 'target time (for the `auto` backup ID)', pgark: refused('pgark restores the backup named by backup_id; it does not choose one by recovery target') },
    ],
  ),
};

/** The spec for the program name argv[0] was installed under; undefined for other names. */
export function specFor(prog: string): CommandSpec | undefined {
  return (COMMAND_SPECS as Record<string, CommandSpec>)[prog];
}
