/**
 * The timeline model over a real file:// store holding the representative archive (archive.ts):
 * coverage ranges, gaps, timeline switches, the retention window, each backup's recoverability,
 * the first and last recoverable points, verify runs and drills, all exact; and `--since`, the
 * CLI's --json and its refusal of a bad --since.
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { backupInfoKey } from '../../src/catalog/layout.js';
import { loadTimeline } from '../../src/timeline/load.js';
import type { TimelineModel } from '../../src/timeline/model.js';
import { walName } from '../catalog/synthetic.js';
import { GAPS, LAST_SEGMENT, pgark, representativeArchive, SERVER } from './archive.js';

const DAY = 86_400_000;
const lsnAt = (k: number) => `0/${(k * 0x1000000).toString(16).toUpperCase()}`;

test('timeline model: 60 backups, 3 timelines, 2 gaps in a file:// store, every range, gap, window and recoverable point exact', async () => {
  const a = await representativeArchive();
  try {
    const m = await loadTimeline(a.store, SERVER, { now: a.now, retentionPolicy: '30d' });
    const iso = (k: number) => a.archivedAt(k).toISOString();

    assert.deepEqual(
      m.lanes.map((l) => ({ tl: l.timeline, parent: l.parent, ranges: l.coverage.map((c) => [c.firstSegment, c.lastSegment, c.segments]) })),
      [
        { tl: 1, parent: null, ranges: [[walName(1, 1), walName(1, 28), 28], [walName(1, 32), walName(1, 60), 29]] },
        { tl: 2, parent: 1, ranges: [[walName(2, 61), walName(2, 120), 60]] },
        { tl: 3, parent: 2, ranges: [[walName(3, 121), walName(3, 149), 29], [walName(3, 152), walName(3, LAST_SEGMENT), 28]] },
      ],
    );
    // Range ends are segment ends: the segment's archive time exactly.
    assert.deepEqual(m.lanes[0].coverage[1].to, { lsn: lsnAt(61), time: iso(60), timeSource: 'archived' });
    assert.deepEqual(m.lanes[2].coverage[1].to, { lsn: lsnAt(LAST_SEGMENT + 1), time: iso(LAST_SEGMENT), timeSource: 'archived' });

    const gaps = m.lanes.flatMap((l) => l.gaps);
    assert.equal(gaps.length, 2);
    gaps.forEach((g, i) => {
      const want = GAPS[i];
      assert.equal(g.timeline, want.timeline);
      assert.equal(g.firstMissing, walName(want.timeline, want.first));
      assert.equal(g.lastMissing, walName(want.timeline, want.last));
      assert.equal(g.missing, want.last - want.first + 1);
      assert.deepEqual(g.start, { lsn: lsnAt(want.first), time: iso(want.first - 1), timeSource: 'archived' });
      assert.equal(g.end.lsn, lsnAt(want.last + 1));
      assert.equal(g.end.timeSource, 'interpolated');
      assert.ok(g.end.time! > g.start.time! && g.end.time! < iso(want.last + 1), `gap end ${g.end.time} lies inside the gap's segments' time`);
    });

    // Switch points come from the history files' mtimes.
    assert.deepEqual(m.lanes[1].switchPoint, { lsn: '0/3D000000', time: iso(60), timeSource: 'history' });
    assert.deepEqual(m.lanes[2].switchPoint, { lsn: '0/79000000', time: iso(120), timeSource: 'history' });
    assert.equal(m.lanes[2].reason, 'no recovery target specified');

    assert.deepEqual(m.retention, { policy: '30d', barman: 'RECOVERY WINDOW OF 30 DAYS', days: 30, windowStart: new Date(a.now.getTime() - 30 * DAY).toISOString() });

    assert.equal(m.backups.length, 60);
    const byDay = (d: number) => m.backups.find((b) => b.backupId === a.ids[d])!;
    assert.equal(byDay(a.failedDay).status, 'FAILED');
    assert.equal(byDay(a.failedDay).recoverability, null);
    assert.deepEqual(byDay(a.strandedDay).recoverability, { consistent: false, targetTimeline: 3, to: null, endsAt: 'not-consistent' });
    assert.deepEqual(byDay(0).recoverability, { consistent: true, targetTimeline: 3, to: { lsn: lsnAt(29), time: iso(28), timeSource: 'archived' }, endsAt: 'gap' });
    assert.deepEqual(byDay(10).recoverability?.to, { lsn: lsnAt(150), time: iso(149), timeSource: 'archived' });
    assert.equal(byDay(49).recoverability?.endsAt, 'gap');
    assert.equal(byDay(50).recoverability?.endsAt, 'end-of-archive');
    assert.equal(byDay(59).backupName, 'before-upgrade');
    assert.equal(byDay(59).codec, 'gzip');
    assert.equal(byDay(59).storedBytes, 1024 * (1 + (59 % 9)) + (await a.store.head(backupInfoKey(SERVER, a.ids[59])))!.size, 'data.tar.gz and backup.info');
    assert.equal(byDay(59).size, 99 * 1024 * 1024);

    assert.deepEqual(m.firstRecoverable, { time: a.endTimes[0].toISOString(), timeSource: 'backup', lsn: '0/2000100', timeline: 1, backupId: a.ids[0] });
    assert.deepEqual(m.lastRecoverable, { time: iso(LAST_SEGMENT), timeSource: 'archived', lsn: lsnAt(LAST_SEGMENT + 1), timeline: 3, backupId: a.ids[50] });
    assert.deepEqual(
      m.recoverable.map((s) => [s.from, s.to]),
      [
        [a.endTimes[0].toISOString(), iso(28)],
        [a.endTimes[10].toISOString(), iso(149)],
        [a.endTimes[50].toISOString(), iso(LAST_SEGMENT)],
      ],
    );

    assert.deepEqual(m.verifyRuns.map((v) => v.ok), [true, false]);
    assert.deepEqual(m.drills.map((d) => [d.ok, d.rtoSeconds]), [[true, 252], [true, 318], [true, 197], [false, 604]]);
    assert.equal(m.drills[3].failedStep, 'checks');
    // A drill is placed at its start, which its id records.
    assert.deepEqual(m.drills.map((d) => d.at), [22, 36, 50, 57].map((day) => new Date(a.archivedAt(0).getTime() + day * DAY).toISOString()));
    assert.equal(m.notes.length, 1, m.notes.join('\n'));
    assert.match(m.notes[0], /pgark\/drills\/.*\.json: not a drill report this pgark reads \(report version 2, this pgark reads 1\)/);
    assert.equal(m.view.to, a.now.toISOString());
    // The oldest segment's start has no anchor before it: the range's time starts at its end.
    assert.deepEqual(m.lanes[0].coverage[0].from, { lsn: lsnAt(2), time: iso(1), timeSource: 'archived' });
    assert.equal(m.view.from, iso(1));

    // --since keeps the facts about recoverability but shows only the last days.
    const recent: TimelineModel = await loadTimeline(a.store, SERVER, { now: a.now, since: new Date(a.now.getTime() - 9 * DAY), retentionPolicy: '30d' });
    assert.equal(recent.view.from, new Date(a.now.getTime() - 9 * DAY).toISOString());
    assert.deepEqual(recent.backups.map((b) => b.backupId), a.ids.slice(51));
    assert.ok(recent.backups.every((b) => b.endTime! >= recent.view.from));
    assert.deepEqual(recent.lanes.map((l) => l.coverage.length), [0, 0, 1]);
    assert.deepEqual(recent.firstRecoverable, m.firstRecoverable);
    assert.deepEqual(recent.drills.map((d) => d.rtoSeconds), [604]);
    assert.deepEqual(recent.lanes[2].gaps, []);
  } finally {
    await a.cleanup();
  }
});

test('pgark timeline: --json prints the model, the text summary names the gaps, a bad --since changes nothing (exit 2)', async () => {
  const a = await representativeArchive();
  try {
    const json = pgark(['timeline', '-f', a.manifest, '--json']);
    assert.equal(json.status, 0, json.stderr);
    const m = JSON.parse(json.stdout) as TimelineModel;
    assert.equal(m.version, 1);
    assert.equal(m.backups.length, 60);
    assert.equal(m.retention?.policy, '30d');
    assert.equal(m.lastRecoverable?.lsn, lsnAt(LAST_SEGMENT + 1));

    const text = pgark(['timeline', '-f', a.manifest]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /first recoverable: \S+ \(end of backup \d{8}T\d{6}, LSN 0\/2000100\)/);
    assert.match(text.stdout, new RegExp(`GAP ${walName(1, 29)} \\.\\. ${walName(1, 31)} \\(3 missing\\)`));
    assert.match(text.stdout, new RegExp(`GAP ${walName(3, 150)} \\.\\. ${walName(3, 151)} \\(2 missing\\)`));
    assert.match(text.stdout, /timeline 3, from timeline 2 at 0\/79000000: 57 segment\(s\)/);
    assert.match(text.stdout, /backups: 60 \(59 DONE, 1 FAILED\)/);
    assert.match(text.stdout, new RegExp(`not recoverable, WAL missing: ${a.ids[a.strandedDay]}`));

    const html = join(a.dir, 'out.html');
    const bad = pgark(['timeline', '-f', a.manifest, '--since', '3 days', '--html', html]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--since "3 days" is not a duration in hours, days or weeks/);
    assert.match(bad.stderr, /hint: e\.g\. --since 36h/);
    assert.equal(existsSync(html), false, 'no file written');
  } finally {
    await a.cleanup();
  }
});
