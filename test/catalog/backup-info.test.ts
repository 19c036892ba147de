// barman reads naive times as local time; pin the zone so the expectations hold anywhere.
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backupInfoToJson,
  emptyBackupInfo,
  parseBackupInfo,
  serializeBackupInfo,
  type BackupInfo,
} from '../../src/catalog/backup-info.js';
import { parsePyLiteral, pyRepr, reprFloat, PyFloat, PyTuple } from '../../src/catalog/pyliteral.js';
import { PyDateTime } from '../../src/catalog/pytime.js';
import { runBarmanPython } from './barman-python.js';

// Strings that exercise every branch of CPython's str repr.
const TRICKY_STRINGS = [
  '',
  'plain',
  "it's",
  'say "hi"',
  `both ' and "`,
  'back\\slash',
  'tab\tnew\nline\rcr',
  'nul\x00 bell\x07 esc\x1b del\x7f',
  'latin é ñ ß',
  'nbsp\u00a0 shy\u00ad',
  'cjk 日本 emoji 😀',
  'line sep\u2028 zwsp\u200b',
  'private \ue000',
  'c1 \u0085\u009f',
];

const FLOATS = [0.5, 1.5, 4.53, 1e-5, 0.0001, 123456789.125, 1e16, 1.5e16, 9999999999999998, 1e22, 2.5e-7, -3.25, 0.1 + 0.2, 1 / 3];

test('repr of strings and floats is byte-identical to CPython', () => {
  const py = runBarmanPython('out = {"s": [repr(s) for s in inp["s"]], "f": [repr(float(f)) for f in inp["f"]]}', {
    s: TRICKY_STRINGS,
    f: FLOATS,
  });
  assert.deepEqual(TRICKY_STRINGS.map((s) => pyRepr(s)), py.s);
  assert.deepEqual(FLOATS.map(reprFloat), py.f);
  assert.equal(pyRepr(new PyFloat(3)), '3.0');
  assert.equal(pyRepr(new PyFloat(-0)), '-0.0');
});

test('Python literals written by CPython parse back to the same values', () => {
  const literals: string[] = runBarmanPython(
    `vals = [None, True, False, 0, -17, 2**70, 1.0, -2.5e-08, "x'y", 'a"b', "\\x00\\u20ac\\U0001F600\\n",
             [], [1, [2, (3,)]], (), ("tbs1", 16385, "/path"), {"16385": 0, "data": 3.1, "n": {"k": [1, 2]}},
             {'total_time': 4.53, 'number_of_workers': 2, 'analysis_time': 0}]
out = [repr(v) for v in vals]`,
    null,
  );
  for (const text of literals) {
    assert.equal(pyRepr(parsePyLiteral(text)), text, `round trip of ${text}`);
  }
  // Forms repr() never produces but literal_eval accepts.
  assert.equal(parsePyLiteral(`u'a' "b" '''c'd'''`), "abc'd");
  assert.equal(parsePyLiteral(String.raw`r'a\nb'`), 'a\\nb');
  assert.equal(parsePyLiteral(String.raw`'\101\x41\u0041\q'`), 'AAA\\q');
  assert.deepEqual(parsePyLiteral('[1, 2,]'), [1, 2]);
  assert.equal(parsePyLiteral('(5)'), 5);
  assert.ok(parsePyLiteral('(5,)') instanceof PyTuple);
  assert.equal(parsePyLiteral('0x1f'), 31);
  assert.equal(parsePyLiteral('1_000'), 1000);
  const integralFloat = parsePyLiteral('-1.5e3');
  assert.ok(integralFloat instanceof PyFloat && integralFloat.value === -1500);
  assert.equal(parsePyLiteral('- 2.5'), -2.5);
});

test('malformed literals are rejected with the offending offset', () => {
  for (const [text, message] of [
    ["'unterminated", /unterminated string/],
    ['[1, 2', /expected "," or "\]"/],
    ['{1: 2}', /only str dict keys/],
    ['os.system', /unsupported name "os"/],
    ['007', /leading zeros/],
    ['1j', /complex/],
    ["'a' junk", /unexpected text after the literal at offset 4/],
  ] as const) {
    assert.throws(() => parsePyLiteral(text), message, text);
  }
});

function sampleInfo(): BackupInfo {
  return {
    ...emptyBackupInfo('20240102T030405'),
    backup_label:
      "START WAL LOCATION: 0/6000028 (file 000000010000000000000006)\nCHECKPOINT LOCATION: 0/6000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2024-01-02 03:04:05 UTC\nLABEL: Barman backup cloud 20240102T030405 it's\nSTART TIMELINE: 1\n",
    backup_name: 'backup-20240102030405',
    begin_offset: 40,
    begin_time: PyDateTime.parse('2024-01-02 03:04:05.123456+00:00'),
    begin_wal: '000000010000000000000006',
    begin_xlog: '0/6000028',
    config_file: '/var/lib/postgresql/data/pgdata/postgresql.conf',
    copy_stats: {
      total_time: 4.53,
      number_of_workers: 2,
      analysis_time: 0,
      analysis_time_per_item: { '16385': 0, data: 0 },
      copy_time_per_item: { '16385': 0.4, data: 3.1 },
      copy_time: new PyFloat(3),
    },
    end_offset: 312,
    end_time: PyDateTime.parse('2024-01-02 03:04:09+00:00'),
    end_wal: '000000010000000000000006',
    end_xlog: '0/6000138',
    hba_file: '/var/lib/postgresql/data/pgdata/pg_hba.conf',
    ident_file: '/var/lib/postgresql/data/pgdata/pg_ident.conf',
    included_files: ['/var/lib/postgresql/data/pgdata/custom.conf', "/etc/o'dd\tname.conf"],
    pgdata: '/var/lib/postgresql/data/pgdata',
    server_name: 'cloud',
    status: 'DONE',
    systemid: '7319880513431879705',
    tablespaces: [
      { name: 'tbs1', oid: 16385, location: '/var/lib/postgresql/tablespaces/tbs1/data' },
      { name: "tb'2", oid: 16390, location: '/t/é' },
    ],
    timeline: 1,
    version: 160001,
  };
}

// barman 3.4 loads the file, saves it again, and reports its to_json() plus the *_iso keys of barman >= 3.12.1.
const BARMAN_LOAD_SAVE = `
b = BackupInfo(inp["id"])
b.load(file_object=io.BytesIO(inp["text"].encode("utf-8")))
buf = io.BytesIO()
b.save(file_object=buf)
j = b.to_json()
if b.begin_time is not None: j["begin_time_iso"] = b.begin_time.isoformat()
if b.end_time is not None: j["end_time_iso"] = b.end_time.isoformat()
out = {"saved": buf.getvalue().decode("utf-8"), "json": j}
`;

test('barman 3.4 loads our backup.info and saves the identical bytes; JSON matches to_json()', () => {
  for (const info of [sampleInfo(), { ...emptyBackupInfo('20240101T000000'), status: 'FAILED' as const, error: 'failure uploading data (boom)' }]) {
    const text = serializeBackupInfo(info);
    const py = runBarmanPython(BARMAN_LOAD_SAVE, { id: info.backup_id, text });
    assert.equal(py.saved, text);
    assert.deepEqual(JSON.parse(JSON.stringify(backupInfoToJson(info))), py.json);
    assert.deepEqual(Object.keys(backupInfoToJson(info)), Object.keys(py.json), 'same key order as barman');
  }
  const text = serializeBackupInfo(sampleInfo());
  assert.match(text, /^backup_label="START WAL.*it's\\nSTART TIMELINE: 1\\n"$/m, 'double quotes because the label contains a single quote');
  assert.match(text, /^tablespaces=\[\('tbs1', 16385, '\/var\/lib\/postgresql\/tablespaces\/tbs1\/data'\), \("tb'2", 16390, '\/t\/é'\)\]$/m);
  assert.match(text, /^begin_time=2024-01-02 03:04:05.123456\+00:00$/m);
  assert.match(text, /^end_time=2024-01-02 03:04:09\+00:00$/m);
  assert.doesNotMatch(serializeBackupInfo(emptyBackupInfo('20240101T000000')), /backup_name|snapshots_info/);
});

test('a backup.info saved by barman 3.4 parses and re-serializes byte for byte', () => {
  const py = runBarmanPython(
    `
tz = dateutil.tz.tzoffset(None, 5400)
b = BackupInfo("20231231T235959", status="DONE", server_name="cloud", backup_name="nightly",
    begin_time=datetime.datetime(2023, 12, 31, 23, 59, 59, 1, tzinfo=tz),
    end_time=datetime.datetime(2024, 1, 1, 0, 1, 2, tzinfo=dateutil.tz.tzutc()),
    backup_label="LABEL: x\\\\y\\n\\x01", begin_wal="000000020000000000000003", end_wal="000000020000000000000004",
    timeline=2, version=150004, tablespaces=[Tablespace("ts", 16400, "/a b")],
    copy_stats={"total_time": 1.0, "copy_time": 1e-05, "big": 1e16, "data": {"16400": 0.25}},
    included_files=["/x"], systemid="1", xlog_segment_size=1048576, size=123456789)
buf = io.BytesIO(); b.save(file_object=buf)
j = b.to_json(); j["begin_time_iso"] = b.begin_time.isoformat(); j["end_time_iso"] = b.end_time.isoformat()
out = {"text": buf.getvalue().decode("utf-8"), "json": j}
`,
    null,
  );
  const info = parseBackupInfo(py.text, '20231231T235959');
  assert.equal(info.status, 'DONE');
  assert.equal(info.begin_time!.offsetMinutes, 90);
  assert.equal(info.begin_time!.toDate().toISOString(), '2023-12-31T22:29:59.000Z');
  assert.equal(info.begin_time!.ctime(), 'Sun Dec 31 23:59:59 2023');
  assert.deepEqual(info.tablespaces, [{ name: 'ts', oid: 16400, location: '/a b' }]);
  assert.equal(info.backup_label, 'LABEL: x\\y\n\x01');
  assert.equal(serializeBackupInfo(info), py.text);
  assert.deepEqual(JSON.parse(JSON.stringify(backupInfoToJson(info))), py.json);
});

test('parsing tolerates later barman keys, unknown keys, comments and naive times', () => {
  const text = [
    '# written by barman 3.19',
    'backup_label=None',
    'begin_time=2024-05-06 07:08:09',
    'children_backup_ids=20240101T000000,20240102T000000',
    'cluster_size=987654',
    'data_checksums=on',
    'encryption=None',
    'parent_backup_id=None',
    'some_future_key=whatever = with equals',
    'status=DONE',
    'summarize_wal=off',
    '',
  ].join('\n');
  const info = parseBackupInfo(text, '20240506T070809');
  assert.deepEqual(info.children_backup_ids, ['20240101T000000', '20240102T000000']);
  assert.equal(info.cluster_size, 987654);
  assert.equal(info.data_checksums, 'on');
  assert.equal(info.encryption, null);
  assert.equal(info.begin_time!.toString(), '2024-05-06 07:08:09+00:00', 'naive time is local (TZ=UTC in tests)');
  const written = serializeBackupInfo(info);
  assert.doesNotMatch(written, /children_backup_ids|cluster_size|data_checksums|encryption|parent_backup_id|summarize_wal|some_future_key/);
  const json = backupInfoToJson(info);
  assert.equal(json.cluster_size, 987654);
  assert.equal(json.children_backup_ids, '20240101T000000,20240102T000000');
  assert.equal(json.encryption, null);
  assert.ok(!('some_future_key' in json));
  // barman 3.4 reads what we write back.
  const py = runBarmanPython(BARMAN_LOAD_SAVE, { id: info.backup_id, text: written });
  assert.equal(py.saved, written);
});

test('bad backup.info content is rejected with the field named', () => {
  assert.throws(() => parseBackupInfo('status=DONE\nversion=abc\n', 'x'), /field version: not an integer/);
  assert.throws(() => parseBackupInfo('status=WHATEVER\n', 'x'), /unknown status/);
  assert.throws(() => parseBackupInfo('no equals sign\n', 'x'), /invalid line/);
  assert.throws(() => parseBackupInfo("tablespaces=[('a', 1)]\n", 'x'), /\(name, oid, location\)/);
  assert.throws(() => parseBackupInfo('begin_time=yesterday\n', 'x'), /unrecognised time/);
  assert.throws(() => serializeBackupInfo({ ...emptyBackupInfo('x'), error: 'two\nlines' }), /error must be a single line/);
});
