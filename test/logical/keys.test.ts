import { test } from 'node:test';
import assert from 'node:assert/strict';
import { databaseKey, formatOfName, formatStamp, globalsKey, metaKey, parseDumpKey, parseStamp } from '../../src/logical/keys.js';
import { expiredKeys, parseRetention, retentionCutoff } from '../../src/logical/retention.js';
import { pickLatest, type DumpEntry } from '../../src/logical/catalog.js';
import { formatAge } from '../../src/util/format.js';

const T = new Date('2026-03-01T04:05:06.789Z');

test('keys: timestamp folders sort in time order and round-trip', () => {
  assert.equal(formatStamp(T), '20260301T040506Z');
  assert.equal(parseStamp('20260301T040506Z')?.toISOString(), '2026-03-01T04:05:06.000Z');
  assert.equal(parseStamp('20261301T000000Z'), undefined);
  const stamps = ['2025-12-31T23:59:59Z', '2026-01-01T00:00:00Z', '2026-01-10T00:00:00Z'].map((s) => formatStamp(new Date(s)));
  assert.deepEqual([...stamps].sort(), stamps);
});

test('keys: database names are encoded and never collide with the globals file', () => {
  const k = databaseKey('prod', T, 'my db/ü@x', 'plain', 'gzip');
  assert.equal(k, 'prod/logical_backups/20260301T040506Z/my%20db%2F%C3%BC%40x.sql.gz');
  assert.deepEqual(parseDumpKey(`spilo/${k}`), {
    key: `spilo/${k}`,
    scopePrefix: 'spilo/prod/',
    takenAt: new Date('2026-03-01T04:05:06Z'),
    database: 'my db/ü@x',
    kind: 'database',
    format: 'plain',
    codec: 'gzip',
    encrypted: false,
  });
  // age-encrypted dumps: .age after the codec's suffix, recognised by the parser (list, retention, restore).
  const e = databaseKey('prod', T, 'shop', 'plain', 'zstd', true);
  assert.equal(e, 'prod/logical_backups/20260301T040506Z/shop.sql.zst.age');
  assert.deepEqual([parseDumpKey(e)?.database, parseDumpKey(e)?.codec, parseDumpKey(e)?.encrypted], ['shop', 'zstd', true]);
  assert.equal(globalsKey('prod', T, 'gzip', true).endsWith('@globals.sql.gz.age'), true);
  const g = parseDumpKey(globalsKey('prod', T, 'gzip'));
  assert.equal(g?.kind, 'globals');
  assert.equal(g?.database, undefined);
  assert.equal(parseDumpKey(databaseKey('prod', T, '@globals', 'plain', 'gzip'))?.kind, 'database');
  assert.equal(parseDumpKey(databaseKey('p', T, 'd', 'custom', 'none'))?.format, 'custom');
  assert.equal(parseDumpKey(metaKey(k)), undefined);
  assert.equal(parseDumpKey('prod/other/20260301T040506Z/x.sql.gz'), undefined);
  assert.equal(parseDumpKey('prodlogical_backups/20260301T040506Z/x.sql.gz'), undefined);
});

test('keys: postgres-operator epoch keys are recognised', () => {
  const p = parseDumpKey('spilo/acid-minimal/logical_backups/1700000000.sql.gz');
  assert.equal(p?.takenAt.toISOString(), '2023-11-14T22:13:20.000Z');
  assert.equal(p?.database, undefined);
  assert.deepEqual(formatOfName('a/b/whatever.sql.zst'), { format: 'plain', codec: 'zstd', encrypted: false });
  assert.deepEqual(formatOfName('a/b/whatever.dump.age'), { format: 'custom', codec: 'none', encrypted: true });
  assert.equal(formatOfName('a/b/whatever.tar'), undefined);
});

test('retention: periods parse, bad ones are rejected, months are calendar months', () => {
  assert.deepEqual(parseRetention('7 days'), { amount: 7, unit: 'day', text: '7 days' });
  assert.equal(parseRetention('1 month').unit, 'month');
  assert.equal(parseRetention('2weeks').amount, 2);
  for (const bad of ['', 'seven days', '0 days', '7 fortnights', '-1 day']) assert.throws(() => parseRetention(bad), /retention time/);
  assert.equal(retentionCutoff(parseRetention('1 month'), new Date('2026-03-31T00:00:00Z')).toISOString(), '2026-03-03T00:00:00.000Z');
  assert.equal(retentionCutoff(parseRetention('7 days'), T).toISOString(), '2026-02-22T04:05:06.789Z');
});

function entry(stamp: string, database: string, complete = true): DumpEntry {
  const key = `s/logical_backups/${stamp}/${database}.sql.gz`;
  return { ...parseDumpKey(key)!, size: 1, metaKey: complete ? `${key}.meta.json` : undefined };
}

test('retention: old runs go (sidecars first), the newest complete run always stays', () => {
  const entries = [entry('20260110T000000Z', 'a', false), entry('20260105T000000Z', 'a'), entry('20260105T000000Z', 'b'), entry('20260101T000000Z', 'a')];
  // Everything is older than the cutoff: the newest *complete* run (Jan 5) survives, the incomplete newer one goes.
  assert.deepEqual(expiredKeys(entries, new Date('2026-02-01T00:00:00Z')), [
    's/logical_backups/20260101T000000Z/a.sql.gz.meta.json',
    's/logical_backups/20260110T000000Z/a.sql.gz',
    's/logical_backups/20260101T000000Z/a.sql.gz',
  ]);
  assert.deepEqual(expiredKeys(entries, new Date('2026-01-02T00:00:00Z')), ['s/logical_backups/20260101T000000Z/a.sql.gz.meta.json', 's/logical_backups/20260101T000000Z/a.sql.gz']);
  assert.deepEqual(expiredKeys(entries, new Date('2025-01-01T00:00:00Z')), []);
});

test('latest: own database first, else the newest complete dump of any database', () => {
  const entries = [entry('20260110T000000Z', 'a', false), entry('20260108T000000Z', 'b'), entry('20260105T000000Z', 'a')];
  assert.equal(pickLatest(entries, 'a', 'x').key, 's/logical_backups/20260105T000000Z/a.sql.gz');
  assert.equal(pickLatest(entries, 'other', 'x').key, 's/logical_backups/20260108T000000Z/b.sql.gz');
  assert.throws(() => pickLatest([entry('20260110T000000Z', 'a', false)], 'a', 'x'), /no complete logical dump/);
});

test('format: ages show the two largest units', () => {
  assert.equal(formatAge(93_784_000), '1d 2h');
  assert.equal(formatAge(61_000), '1m 1s');
  assert.equal(formatAge(500), '0s');
});
