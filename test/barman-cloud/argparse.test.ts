/**
 * The drop-ins' argv parser against Python argparse's behaviour as barman 3.17 shows it
 * (barman-cloud-cli-contract.md §1.2, checked there by running barman's parsers), and the
 * environment → store resolution of §1.3/§1.5. Pure functions: no store is reached here (wal.test.ts
 * and contract-table.test.ts run the same code against s3rver, Azurite and barman-cloud 3.4).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgv, parseTag, parseTags, refusedOptions, type ParsedArgs } from '../../src/cli/barman-cloud/argparse.js';
import { BARMAN_COMPAT_VERSION, COMMAND_SPECS, type BarmanCommand } from '../../src/cli/barman-cloud/specs.js';
import { resolveBarmanStore } from '../../src/config/barman-env.js';
import { UserError } from '../../src/util/errors.js';
import { scratchDir } from '../harness/tmp.js';

function parse(command: BarmanCommand, argv: string[]): ParsedArgs {
  const r = parseArgv(COMMAND_SPECS[command], argv, BARMAN_COMPAT_VERSION);
  assert.equal(r.kind, 'args', r.kind === 'exit' ? r.stderr : '');
  return (r as { args: ParsedArgs }).args;
}

function refusal(command: BarmanCommand, argv: string[]): string {
  const r = parseArgv(COMMAND_SPECS[command], argv, BARMAN_COMPAT_VERSION);
  assert.equal(r.kind, 'exit', `accepted: ${JSON.stringify(argv)}`);
  const e = r as { code: number; stderr?: string; stdout?: string };
  assert.equal(e.code, 3);
  assert.equal(e.stdout, undefined);
  assert.match(e.stderr!, new RegExp(`^usage: ${command} `));
  return e.stderr!;
}

describe('argparse semantics', () => {
  test('options between positionals: CNPG wal-restore and restore shapes fill positionals left to right', () => {
    const a = parse('barman-cloud-wal-restore', ['--endpoint-url', 'http://m:9000', 's3://b/p', 'c1', '--read-timeout=60', '000000010000000000000005', 'pg_wal/RECOVERYXLOG', '--cloud-provider', 'aws-s3']);
    assert.deepEqual(
      [a.values.source_url, a.values.server_name, a.values.wal_name, a.values.wal_dest, a.values.readTimeout, a.values.cloudProvider],
      ['s3://b/p', 'c1', '000000010000000000000005', 'pg_wal/RECOVERYXLOG', 60, 'aws-s3'],
    );
    const r = parse('barman-cloud-restore', ['s3://b/p', 'c1', '20240102T030405', '--cloud-provider', 'aws-s3', '--read-timeout=60', '/pgdata']);
    assert.deepEqual([r.values.backup_id, r.values.recovery_dir], ['20240102T030405', '/pgdata']);
  });

  test('--opt=value equals --opt value; the last repeat wins; a repeated flag does not conflict with itself', () => {
    const a = parse('barman-cloud-wal-archive', ['--endpoint-url=http://user', '-e', 'AES256', '--gzip', '--gzip', '--encryption=aws:kms', '--endpoint-url', 'http://cnpg', 's3://b', 's', 'pg_wal/x']);
    assert.equal(a.values.endpointUrl, 'http://cnpg');
    assert.equal(a.values.encryption, 'aws:kms');
    assert.equal(a.values.compression, 'gzip');
    assert.equal(parse('barman-cloud-wal-archive', ['-eAES256', 's3://b', 's']).values.encryption, 'AES256');
    // Unique prefixes of long options, as argparse's allow_abbrev.
    assert.equal(parse('barman-cloud-wal-archive', ['--endpoint=http://e', 's3://b', 's']).values.endpointUrl, 'http://e');
    assert.match(refusal('barman-cloud-wal-archive', ['--max', '1', 's3://b', 's']), /ambiguous option: --max could match/);
  });

  test('counts and short clusters: -vv, -v -v; -v with -q is a conflict', () => {
    assert.equal(parse('barman-cloud-wal-archive', ['-vv', 's3://b', 's']).values.verbose, 2);
    assert.equal(parse('barman-cloud-wal-archive', ['-v', 's3://b', '--verbose', 's']).values.verbose, 2);
    assert.match(refusal('barman-cloud-wal-archive', ['-v', '-q', 's3://b', 's']), /argument -q\/--quiet: not allowed with argument -v\/--verbose/);
  });

  test('mutually exclusive groups exit 3: compression flags, --tags|--tag, --history-tags|--history-tag', () => {
    assert.match(refusal('barman-cloud-wal-archive', ['--bzip2', '--gzip', 's3://b', 's', 'pg_wal/x']), /argument -z\/--gzip: not allowed with argument -j\/--bzip2/);
    refusal('barman-cloud-wal-archive', ['--tags', 'a,b', '--tag', 'c,d', 's3://b', 's']);
    refusal('barman-cloud-wal-archive', ['--history-tag', 'a,b', '--history-tags', 'c,d', 's3://b', 's']);
    for (const flag of ['--gzip', '--bzip2', '--snappy', '--lz4', '--xz', '--zstd']) {
      assert.equal(parse('barman-cloud-wal-archive', [flag, 's3://b', 's']).values.compression, flag.slice(2));
    }
  });

  test('--tags takes every argument up to the next option; items are csv: "a,b",c is one tag, a,b,c is invalid', () => {
    const a = parse('barman-cloud-wal-archive', ['--tags', 'env,prod', '"a,b",c', '--history-tags', 'keep,yes', '--cloud-provider', 'aws-s3', 's3://b', 's', 'pg_wal/x']);
    assert.deepEqual(parseTags(a.values.tags as string[]), { env: 'prod', 'a,b': 'c' });
    assert.deepEqual(parseTags(a.values.historyTags as string[]), { keep: 'yes' });
    assert.equal(a.values.wal_path, 'pg_wal/x');
    assert.deepEqual(parseTag('"say ""hi""",x'), ['say "hi"', 'x']);
    assert.equal(parseTag('a,b,c'), undefined);
    assert.equal(parseTag('a'), undefined);
    assert.throws(() => parseTags(['a,b,c']), /Invalid tag format/);
    // --tag is repeatable, each one K,V.
    assert.deepEqual(parseTags(parse('barman-cloud-wal-archive', ['--tag', 'a,1', '--tag=b,2', 's3://b', 's']).values.tags as string[]), { a: '1', b: '2' });
  });

  test('unknown option, bad choice, bad type, missing value, missing or extra positional: usage and exit 3', () => {
    assert.match(refusal('barman-cloud-wal-archive', ['--bogus', 's3://b', 's']), /error: unrecognized arguments: --bogus/);
    assert.match(refusal('barman-cloud-wal-archive', ['--cloud-provider', 'gcs', 's3://b', 's']), /invalid choice: 'gcs'/);
    assert.match(refusal('barman-cloud-wal-archive', ['--read-timeout', 'soon', 's3://b', 's']), /argument --read-timeout: invalid int value: 'soon'/);
    assert.match(refusal('barman-cloud-wal-archive', ['s3://b', 's', '-e']), /argument -e\/--encryption: expected one argument/);
    assert.match(refusal('barman-cloud-wal-restore', ['s3://b', 's', '000000010000000000000001']), /the following arguments are required: wal_dest/);
    assert.match(refusal('barman-cloud-wal-archive', ['s3://b', 's', 'pg_wal/a', 'pg_wal/b']), /unrecognized arguments: pg_wal\/b/);
    // backup-delete needs exactly one of -b / -r.
    assert.match(refusal('barman-cloud-backup-delete', ['s3://b', 's']), /one of the arguments -b\/--backup-id -r\/--retention-policy is required/);
  });

  test('an argv element with a space is a positional that does not fit: "--read-timeout 60" exits 3', () => {
    assert.match(refusal('barman-cloud-wal-restore', ['s3://b', 's', '--read-timeout 60', '000000010000000000000001', 'pg_wal/RECOVERYXLOG']), /unrecognized arguments: pg_wal\/RECOVERYXLOG/);
    assert.match(refusal('barman-cloud-wal-archive', ['s3://b', 's', '--read-timeout 60', 'pg_wal/x']), /unrecognized arguments: pg_wal\/x/);
    // A value with a space after '=' is still that option's value.
    assert.equal(parse('barman-cloud-wal-archive', ['--endpoint-url=http://a b', 's3://b', 's']).values.endpointUrl, 'http://a b');
  });

  test('-V/--version prints "<prog> <version>" only, exit 0; --help exits 0; -h is no help (it is --host in backup)', () => {
    for (const flag of ['-V', '--version']) {
      const r = parseArgv(COMMAND_SPECS['barman-cloud-wal-archive'], [flag], BARMAN_COMPAT_VERSION);
      assert.deepEqual(r, { kind: 'exit', code: 0, stdout: `barman-cloud-wal-archive ${BARMAN_COMPAT_VERSION}\n` });
    }
    // The regexp old CNPG releases apply to the output, with a version >= 3.4.
    assert.match(`barman-cloud-wal-archive ${BARMAN_COMPAT_VERSION}`, /barman-cloud.* (3\.(?:[4-9]|\d\d+)\.\d+)$/);
    const help = parseArgv(COMMAND_SPECS['barman-cloud-wal-restore'], ['--help'], BARMAN_COMPAT_VERSION, 'pgark 0.1.0\n');
    assert.equal(help.kind, 'exit');
    assert.equal((help as { code: number }).code, 0);
    assert.match((help as { stdout: string }).stdout, /--no-partial[\s\S]*pgark 0\.1\.0/);
    refusal('barman-cloud-wal-restore', ['-h']);
    assert.equal(parse('barman-cloud-backup', ['-h', '/run', 's3://b', 's']).values.host, '/run');
  });

  test('options pgark cannot honour are named; tuning knobs are accepted', () => {
    const a = parse('barman-cloud-wal-archive', ['--sse-kms-key-id', 'k', '--max-concurrency=1', '--compression-level', '9', 's3://b', 's']);
    assert.match(refusedOptions(COMMAND_SPECS['barman-cloud-wal-archive'], a)!, /--sse-kms-key-id is not supported by pgark/);
    assert.equal(refusedOptions(COMMAND_SPECS['barman-cloud-wal-archive'], parse('barman-cloud-wal-archive', ['--max-concurrency=1', '-P', 'p', '--credential', 'default', 's3://b', 's'])), undefined);
  });
});

describe('environment → store options', () => {
  const base = { destinationUrl: 's3://bucket/path', serverName: 'c1' };

  test('S3: static keys with session token and region; none = the default chain; a profile wins over keys', () => {
    const env = { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'sekrit', AWS_SESSION_TOKEN: 'tok', AWS_DEFAULT_REGION: 'eu-west-1' };
    const s = resolveBarmanStore({ ...base, endpointUrl: 'http://127.0.0.1:9000' }, env);
    assert.deepEqual(s.options.s3, { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'sekrit', sessionToken: 'tok', region: 'eu-west-1' });
    assert.equal(s.options.endpointURL, 'http://127.0.0.1:9000');
    assert.doesNotMatch(s.description, /sekrit|AKIA/);
    assert.deepEqual(resolveBarmanStore(base, { AWS_ROLE_ARN: 'arn', AWS_WEB_IDENTITY_TOKEN_FILE: '/t' }).options.s3, { inheritFromIAMRole: true, region: undefined });
    assert.deepEqual(resolveBarmanStore({ ...base, awsProfile: 'p' }, env).options.s3, { inheritFromIAMRole: true, region: 'eu-west-1' });
    const partial = () => resolveBarmanStore(base, { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' });
    assert.throws(partial, (e: UserError) => e.exitCode === 3 && /AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY/.test(e.message) && !e.message.includes('AKIAEXAMPLE'));
  });

  test('CA bundles: AWS_CA_BUNDLE for S3, REQUESTS_CA_BUNDLE for Azure; an unreadable one is a clear error', () => {
    const scratch = scratchDir('barman-env');
    const dir = scratch.path;
    const pem = join(dir, 'ca.pem');
    writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    assert.match(resolveBarmanStore(base, { AWS_CA_BUNDLE: pem }).options.endpointCA!, /BEGIN CERTIFICATE/);
    const az = { destinationUrl: 'https://acct.blob.core.windows.net/cont/p', serverName: 'c1', cloudProvider: 'azure-blob-storage' as const };
    assert.match(resolveBarmanStore(az, { REQUESTS_CA_BUNDLE: pem, AZURE_STORAGE_KEY: 'k' }).options.endpointCA!, /BEGIN CERTIFICATE/);
    assert.throws(() => resolveBarmanStore(base, { AWS_CA_BUNDLE: join(dir, 'missing.pem') }), /AWS_CA_BUNDLE names .*missing\.pem, which cannot be read/);
    scratch.cleanup();
  });

  test('Azure: --credential > connection string > SAS > key > DefaultAzureCredential; the account comes from the URL host', () => {
    const az = { destinationUrl: 'https://acct.blob.core.windows.net/cont/p', serverName: 'c1', cloudProvider: 'azure-blob-storage' as const };
    const all = { AZURE_STORAGE_CONNECTION_STRING: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5', AZURE_STORAGE_SAS_TOKEN: 'sv=1', AZURE_STORAGE_KEY: 'a2V5', AZURE_STORAGE_ACCOUNT: 'other' };
    assert.deepEqual(resolveBarmanStore({ ...az, azureCredential: 'default' }, all).options.azure, { useDefaultAzureCredentials: true });
    assert.deepEqual(resolveBarmanStore({ ...az, azureCredential: 'managed-identity' }, all).options.azure, { inheritFromAzureAD: true });
    assert.deepEqual(resolveBarmanStore(az, all).options.azure, { connectionString: all.AZURE_STORAGE_CONNECTION_STRING });
    assert.deepEqual(resolveBarmanStore(az, { ...all, AZURE_STORAGE_CONNECTION_STRING: '' }).options.azure, { storageAccount: 'acct', storageSasToken: 'sv=1' });
    assert.deepEqual(resolveBarmanStore(az, { AZURE_STORAGE_KEY: 'a2V5' }).options.azure, { storageAccount: 'acct', storageKey: 'a2V5' });
    assert.deepEqual(resolveBarmanStore(az, {}).options.azure, { useDefaultAzureCredentials: true });
    // --endpoint-url is S3's; CNPG passes it to Azure too and barman ignores it there.
    assert.equal(resolveBarmanStore({ ...az, endpointUrl: 'http://x' }, { AZURE_STORAGE_KEY: 'k' }).options.endpointURL, undefined);
    assert.throws(() => resolveBarmanStore({ ...az, azureCredential: 'azure-cli' }, {}), /azure-cli is not supported by pgark/);
  });

  test('an emulator URL needs the connection string; GCS and mismatched URLs are refused with exit 3', () => {
    const emu = { destinationUrl: 'http://127.0.0.1:10000/devstoreaccount1/cont/p', serverName: 'c1', cloudProvider: 'azure-blob-storage' as const };
    assert.throws(() => resolveBarmanStore(emu, { AZURE_STORAGE_KEY: 'k' }), (e: UserError) => e.exitCode === 3 && /needs AZURE_STORAGE_CONNECTION_STRING/.test(e.message));
    assert.ok(resolveBarmanStore(emu, { AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }).options.azure?.connectionString);
    const gcs = () => resolveBarmanStore({ destinationUrl: 'gs://b/p', serverName: 'c1', cloudProvider: 'google-cloud-storage' }, {});
    assert.throws(gcs, (e: UserError) => e.exitCode === 3 && /Google Cloud Storage is not supported by pgark/.test(e.message));
    assert.throws(() => resolveBarmanStore({ ...emu, cloudProvider: 'aws-s3' }, {}), (e: UserError) => e.exitCode === 3 && /is not an S3 URL/.test(e.message));
    assert.throws(() => resolveBarmanStore({ destinationUrl: 'not a url', serverName: 'c1' }, {}), (e: UserError) => e.exitCode === 3);
  });
});
