/**
 * The timeline drawn and opened in a real browser: `pgark timeline --html/--svg` over the
 * representative archive (archive.ts), then Debian's headless chromium, offline, opens the page.
 * A copy of the page with a small measuring script added at its end reports, through
 * --dump-dom, how many marks of each kind were drawn, every element outside the SVG or the
 * 1400x900 viewport, and every pair of labels whose boxes overlap; --screenshot keeps the picture
 * (PGARK_TEST_SCREENSHOT=path copies it, which is how docs/timeline.png is made).
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pgark, representativeArchive } from './archive.js';

const run = promisify(execFile);

/** Headless chromium with a fresh profile and nothing that reaches the network. */
async function chromium(dir: string, args: string[]): Promise<string> {
  const profile = join(dir, `profile-${Math.random().toString(36).slice(2)}`);
  mkdirSync(profile);
  const { stdout } = await run(
    '/usr/bin/chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--window-size=1400,900',
      ...args,
    ],
    { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** Runs in the page after it is drawn; its findings land in <body data-measure>. */
const MEASURE = `<script>
(() => {
  const svg = document.querySelector('svg');
  const box = svg.getBoundingClientRect();
  const count = (k) => svg.querySelectorAll('[data-kind="' + k + '"]').length;
  const out = (r, b) => r.left < b.left - 0.5 || r.right > b.right + 0.5 || r.top < b.top - 0.5 || r.bottom > b.bottom + 0.5;
  const view = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
  const drawn = [...svg.querySelectorAll('rect, circle, line, path, text')];
  const outsideSvg = drawn.filter((e) => out(e.getBoundingClientRect(), box)).map((e) => e.outerHTML.slice(0, 100));
  const outsideViewport = drawn.filter((e) => out(e.getBoundingClientRect(), view)).map((e) => e.outerHTML.slice(0, 100));
  const labels = [...svg.querySelectorAll('text')].map((t) => ({ text: t.textContent, r: t.getBoundingClientRect() }));
  const overlaps = [];
  for (let i = 0; i < labels.length; i++)
    for (let j = i + 1; j < labels.length; j++) {
      const a = labels[i].r, b = labels[j].r;
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) overlaps.push([labels[i].text, labels[j].text]);
    }
  document.body.setAttribute('data-measure', JSON.stringify({
    backups: count('backup'), gaps: count('gap'), retention: count('retention'), wal: count('wal'), drills: count('drill'), verify: count('verify'),
    recoverable: count('recoverable'), first: count('first-recoverable'), last: count('last-recoverable'), switches: count('switch'),
    labels: labels.length, backupLabels: svg.querySelectorAll('text.label').length, outsideSvg, outsideViewport, overlaps,
    page: { width: document.documentElement.scrollWidth, viewport: innerWidth }, svgBox: { right: box.right, bottom: box.bottom },
  }));
})();
</script>`;

const unescapeAttr = (s: string) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

test('pgark timeline --html/--svg: chromium draws 60 backups, 2 gaps and the retention window, nothing overflows, no label overlaps another, nothing is fetched', async () => {
  const a = await representativeArchive();
  try {
    const htmlFile = join(a.dir, 'timeline.html');
    const svgFile = join(a.dir, 'timeline.svg');
    const r = pgark(['timeline', '-f', a.manifest, '--html', htmlFile, '--svg', svgFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`written: ${htmlFile}\\nwritten: ${svgFile}`));

    const html = readFileSync(htmlFile, 'utf8');
    assert.doesNotMatch(html, /https?:\/\//, 'no URL: the page needs no network');
    assert.doesNotMatch(html, /<script|<link|<img|@import|url\(|@font-face/);
    const svg = readFileSync(svgFile, 'utf8');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 1360 \d+"/);
    assert.deepEqual(svg.match(/https?:\/\/[^"]*/g), ['http://www.w3.org/2000/svg'], 'the namespace is the only URL of the SVG');
    assert.equal(svg.match(/data-kind="backup"/g)?.length, 60);
    // Hover text carries exact values: the stranded backup says why it cannot be recovered.
    assert.match(html, new RegExp(`backup ${a.ids[a.strandedDay]}: DONE[^<]*NOT recoverable: WAL between its begin and end is missing`));

    const probe = join(a.dir, 'probe.html');
    writeFileSync(probe, html.replace('</body>', `${MEASURE}\n</body>`));
    const dom = await chromium(a.dir, ['--dump-dom', `file://${probe}`]);
    const attr = /data-measure="([^"]*)"/.exec(dom);
    assert.ok(attr, `the measuring script ran: ${dom.slice(0, 300)}`);
    const m = JSON.parse(unescapeAttr(attr[1]));
    assert.equal(m.backups, 60);
    assert.equal(m.gaps, 2);
    assert.equal(m.retention, 1);
    assert.equal(m.wal, 5, 'five archived ranges: 2 on timeline 1, 1 on 2, 2 on 3');
    assert.equal(m.switches, 2);
    assert.equal(m.drills, 4);
    assert.equal(m.verify, 2);
    assert.equal(m.recoverable, 3);
    assert.deepEqual([m.first, m.last], [1, 1]);
    assert.ok(m.backupLabels >= 8 && m.backupLabels < 60, `${m.backupLabels} backup labels: some, not all`);
    assert.deepEqual(m.outsideSvg, []);
    assert.deepEqual(m.outsideViewport, []);
    assert.deepEqual(m.overlaps, []);
    assert.ok(m.page.width <= m.page.viewport, `no horizontal scrolling (${m.page.width} > ${m.page.viewport})`);

    const png = join(a.dir, 'timeline.png');
    await chromium(a.dir, [`--screenshot=${png}`, `file://${htmlFile}`]);
    const bytes = readFileSync(png);
    assert.deepEqual([...bytes.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    assert.ok(statSync(png).size > 20_000, 'a picture, not a blank page');
    if (process.env.PGARK_TEST_SCREENSHOT) copyFileSync(png, process.env.PGARK_TEST_SCREENSHOT);
  } finally {
    await a.cleanup();
  }
});
