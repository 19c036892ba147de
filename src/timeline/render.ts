/**
 * Draws the recoverability timeline (model.ts) as a plain SVG and as a self-contained HTML page:
 * time on the x axis, one lane per timeline with its backups above a WAL bar (gaps in red), the
 * retention window shaded, the recoverable spans with the first and last recoverable points, verify
 * runs and restore drills. Every mark carries a <title> with its exact values (hover text).
 *
 * Nothing is fetched: inline CSS, no script, no font but the generic families. Labels are placed
 * greedily from the newest backwards, and one that would overlap its neighbour is left out (its
 * mark keeps the tooltip), so 60 daily backups stay readable.
 */
import { formatBytes, formatDuration } from '../util/format.js';
import type { BackupMark, Lane, TimelineModel, TimePoint } from './model.js';

const W = 1360;
const PLOT_LEFT = 130;
const PLOT_RIGHT = W - 40;
const LANE_H = 100;
const FONT = 11;
const LABEL_GAP = 10;

const COLOR = {
  done: '#2563eb',
  failed: '#dc2626',
  other: '#d97706',
  wal: '#86c99a',
  walStroke: '#3f8f57',
  gap: '#dc2626',
  retention: '#dbeafe',
  recoverable: '#16a34a',
  grid: '#e5e7eb',
  text: '#1f2937',
  muted: '#6b7280',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number) => (Math.round(n * 10) / 10).toString();
/** A conservative width of a label in the generic sans-serif (DejaVu Sans, Debian's default, is wide). */
const textWidth = (s: string, size = FONT) => s.length * size * 0.68;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** 2026-10-07T01:00:00.000Z -> 2026-10-07 01:00:00 UTC (exact values in tooltips). */
const exact = (iso: string | null) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : 'unknown');
const day = (d: Date) => `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
const hhmm = (d: Date) => d.toISOString().slice(11, 16);

interface Scale {
  x(iso: string): number;
  from: number;
  to: number;
}

function scaleOf(model: TimelineModel): Scale {
  const from = Date.parse(model.view.from);
  const end = Date.parse(model.view.to);
  // A little room after "now" so the newest marks are not on the edge.
  const to = end + Math.max(60_000, (end - from) * 0.01);
  const x = (iso: string) => PLOT_LEFT + ((Math.min(Math.max(Date.parse(iso), from), to) - from) / (to - from)) * (PLOT_RIGHT - PLOT_LEFT);
  return { x, from, to };
}

interface Label {
  x: number;
  text: string;
}

/** The centre of a label at `x` moved so that the label stays inside the plot. */
const inPlot = (x: number, label: string, size = FONT) => Math.min(Math.max(x, PLOT_LEFT + textWidth(label, size) / 2), PLOT_RIGHT - textWidth(label, size) / 2);

/** Centred labels kept only where they do not overlap the one placed before (newest first). */
function placeLabels(items: Label[], size = FONT): Label[] {
  const placed: Label[] = [];
  let leftEdge = Infinity;
  for (const item of [...items].sort((a, b) => b.x - a.x)) {
    const w = textWidth(item.text, size);
    const x = inPlot(item.x, item.text, size);
    if (x + w / 2 + LABEL_GAP > leftEdge) continue;
    placed.push({ x, text: item.text });
    leftEdge = x - w / 2;
  }
  return placed;
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${num(x)}" y="${num(y)}"${attrs ? ' ' + attrs : ''}>${esc(s)}</text>`;
}

const TICK_STEPS = [1, 2, 3, 6, 12, 24, 48, 7 * 24, 14 * 24, 30 * 24, 90 * 24].map((h) => h * 3_600_000);

function axis(scale: Scale, y: number, top: number): string {
  const span = scale.to - scale.from;
  const days = span >= 3 * 86_400_000;
  const minSpacing = days ? 80 : 100;
  const step = TICK_STEPS.find((s) => ((PLOT_RIGHT - PLOT_LEFT) * s) / span >= minSpacing) ?? TICK_STEPS.at(-1)!;
  const out = [`<line x1="${PLOT_LEFT}" y1="${y}" x2="${PLOT_RIGHT}" y2="${y}" stroke="${COLOR.muted}"/>`];
  for (let t = Math.ceil(scale.from / step) * step; t <= scale.to; t += step) {
    const d = new Date(t);
    const x = scale.x(d.toISOString());
    const label = step >= 86_400_000 ? day(d) : `${day(d)} ${hhmm(d)}`;
    if (x - textWidth(label) / 2 < PLOT_LEFT - 20 || x + textWidth(label) / 2 > W) continue;
    out.push(`<line x1="${num(x)}" y1="${top}" x2="${num(x)}" y2="${y}" stroke="${COLOR.grid}"/>`);
    out.push(`<line x1="${num(x)}" y1="${y}" x2="${num(x)}" y2="${y + 5}" stroke="${COLOR.muted}"/>`);
    out.push(text(x, y + 18, label, 'text-anchor="middle" class="tick"'));
  }
  return out.join('\n');
}

const pointText = (p: TimePoint) => `${exact(p.time)} (${p.timeSource}), LSN ${p.lsn}`;

function backupTitle(b: BackupMark): string {
  const r = b.recoverability;
  const lines = [
    `backup ${b.backupId}${b.backupName ? ` (${b.backupName})` : ''}: ${b.status}`,
    `timeline ${b.timeline ?? '?'}`,
    `begin ${exact(b.beginTime)}, WAL ${b.beginWal ?? '?'} (${b.beginLsn ?? '?'})`,
    `end ${exact(b.endTime)}, WAL ${b.endWal ?? '?'} (${b.endLsn ?? '?'})`,
    `data ${b.size === null ? '?' : formatBytes(b.size)}, stored ${formatBytes(b.storedBytes)}${b.codec ? `, ${b.codec}` : ''}`,
  ];
  if (b.keep) lines.push(`keep: ${b.keep}`);
  if (b.error) lines.push(`error: ${b.error}`);
  if (r) {
    lines.push(
      r.consistent && r.to
        ? `recoverable to ${pointText(r.to)} on timeline ${r.targetTimeline}, then ${r.endsAt === 'gap' ? 'a WAL gap' : 'the end of the archive'}`
        : 'NOT recoverable: WAL between its begin and end is missing',
    );
  }
  return lines.join('\n');
}

function backupColor(b: BackupMark): { fill: string; stroke: string } {
  if (b.status === 'DONE') return b.recoverability?.consistent === false ? { fill: '#ffffff', stroke: COLOR.failed } : { fill: COLOR.done, stroke: '#1e3a8a' };
  if (b.status === 'FAILED') return { fill: COLOR.failed, stroke: '#7f1d1d' };
  return { fill: COLOR.other, stroke: '#78350f' };
}

const shortLabel = (b: BackupMark) => b.backupName ?? (b.endTime ? day(new Date(b.endTime)) : b.backupId);

function lane(l: Lane, y: number, model: TimelineModel, scale: Scale, laneY: Map<number, number>): string {
  const out: string[] = [];
  const barY = y + 56;
  out.push(text(12, barY + 11, `timeline ${l.timeline}`, 'class="row"'));
  out.push(`<line x1="${PLOT_LEFT}" y1="${barY + 7}" x2="${PLOT_RIGHT}" y2="${barY + 7}" stroke="${COLOR.grid}" stroke-dasharray="2 3"/>`);
  for (const c of l.coverage) {
    const from = c.from.time ?? c.to.time;
    const to = c.to.time ?? c.from.time;
    if (!from || !to) continue;
    const x1 = scale.x(from);
    const x2 = Math.max(scale.x(to), x1 + 2);
    out.push(
      `<rect data-kind="wal" x="${num(x1)}" y="${barY}" width="${num(x2 - x1)}" height="14" fill="${COLOR.wal}" stroke="${COLOR.walStroke}"><title>${esc(
        `WAL archived on timeline ${c.timeline}: ${c.firstSegment} .. ${c.lastSegment} (${c.segments} segments, ${formatBytes(c.bytes)})\nfrom ${pointText(c.from)}\nto ${pointText(c.to)}`,
      )}</title></rect>`,
    );
  }
  const under: Label[] = [];
  for (const g of l.gaps) {
    const from = g.start.time ?? g.end.time;
    const to = g.end.time ?? g.start.time;
    if (!from || !to) continue;
    const x1 = scale.x(from);
    const w = Math.max(scale.x(to) - x1, 5);
    out.push(
      `<rect data-kind="gap" x="${num(x1)}" y="${barY - 3}" width="${num(w)}" height="20" fill="${COLOR.gap}"><title>${esc(
        `WAL GAP on timeline ${g.timeline}: ${g.missing} segment(s) missing, ${g.firstMissing} .. ${g.lastMissing}\nfrom ${pointText(g.start)}\nto ${pointText(g.end)}\nno recovery can replay across it`,
      )}</title></rect>`,
    );
    under.push({ x: x1 + w / 2, text: `gap: ${g.missing} segment${g.missing === 1 ? '' : 's'}` });
  }
  if (l.switchPoint?.time && l.parent !== null) {
    const x = scale.x(l.switchPoint.time);
    const parentBar = (laneY.get(l.parent) ?? y) + 56 + 7;
    out.push(
      `<g data-kind="switch"><line x1="${num(x)}" y1="${parentBar}" x2="${num(x)}" y2="${barY + 7}" stroke="${COLOR.muted}" stroke-dasharray="4 3"/><circle cx="${num(x)}" cy="${barY + 7}" r="3" fill="${COLOR.muted}"/><title>${esc(
        `timeline ${l.timeline} branched from timeline ${l.parent} at ${pointText(l.switchPoint)}${l.reason ? `\n${l.reason}` : ''}`,
      )}</title></g>`,
    );
    under.push({ x, text: `from timeline ${l.parent}` });
  }
  for (const lab of placeLabels(under)) out.push(text(lab.x, barY + 33, lab.text, 'text-anchor="middle" class="note"'));

  const marks = model.backups.filter((b) => (b.timeline ?? 1) === l.timeline && (b.endTime ?? b.beginTime));
  const maxBytes = Math.max(1, ...model.backups.map((b) => b.storedBytes));
  const labels: Label[] = [];
  for (const b of marks) {
    const x = scale.x((b.endTime ?? b.beginTime)!);
    const r = 4 + 5 * Math.sqrt(b.storedBytes / maxBytes);
    const { fill, stroke } = backupColor(b);
    out.push(
      `<g data-kind="backup" data-status="${esc(b.status)}"><circle cx="${num(x)}" cy="${y + 34}" r="${num(r)}" fill="${fill}" stroke="${stroke}" stroke-width="1.5"/><title>${esc(backupTitle(b))}</title></g>`,
    );
    labels.push({ x, text: shortLabel(b) });
  }
  for (const lab of placeLabels(labels)) out.push(text(lab.x, y + 17, lab.text, 'text-anchor="middle" class="label"'));
  return out.join('\n');
}

interface Legend {
  swatch: string;
  label: string;
}

function legend(y: number): { svg: string; height: number } {
  const items: Legend[] = [
    { swatch: `<circle cx="6" cy="0" r="5" fill="${COLOR.done}"/>`, label: 'backup (size: stored bytes)' },
    { swatch: `<circle cx="6" cy="0" r="5" fill="#fff" stroke="${COLOR.failed}" stroke-width="1.5"/>`, label: 'backup without its WAL' },
    { swatch: `<circle cx="6" cy="0" r="5" fill="${COLOR.failed}"/>`, label: 'failed backup' },
    { swatch: `<circle cx="6" cy="0" r="5" fill="${COLOR.other}"/>`, label: 'other status' },
    { swatch: `<rect x="0" y="-6" width="14" height="12" fill="${COLOR.wal}" stroke="${COLOR.walStroke}"/>`, label: 'WAL archived' },
    { swatch: `<rect x="0" y="-7" width="14" height="14" fill="${COLOR.gap}"/>`, label: 'WAL gap' },
    { swatch: `<rect x="0" y="-6" width="14" height="12" fill="${COLOR.retention}" stroke="#93c5fd"/>`, label: 'retention window' },
    { swatch: `<rect x="0" y="-4" width="14" height="8" fill="${COLOR.recoverable}"/>`, label: 'recoverable' },
    { swatch: `<circle cx="6" cy="0" r="5" fill="${COLOR.recoverable}"/>`, label: 'drill passed' },
    { swatch: `<circle cx="6" cy="0" r="5" fill="${COLOR.failed}"/>`, label: 'drill failed' },
    { swatch: `<rect x="1" y="-5" width="10" height="10" fill="${COLOR.recoverable}"/>`, label: 'verify OK / failed (red)' },
  ];
  const out: string[] = [];
  let x = 12;
  let row = 0;
  for (const item of items) {
    const w = 20 + textWidth(item.label) + 22;
    if (x + w > W - 12) {
      x = 12;
      row++;
    }
    const cy = y + row * 20;
    out.push(`<g transform="translate(${num(x)} ${cy})">${item.swatch}${text(20, 4, item.label, 'class="legend"')}</g>`);
    x += w;
  }
  return { svg: out.join('\n'), height: (row + 1) * 20 };
}

/** The timeline as an SVG document (standalone when `standalone`, else for inlining in HTML). */
export function renderSvg(model: TimelineModel, standalone = true): string {
  const scale = scaleOf(model);
  const parts: string[] = [];
  const fr = model.firstRecoverable;
  const lr = model.lastRecoverable;
  parts.push(text(12, 24, `Recoverability of server "${model.serverName}"`, 'class="title"'));
  const subtitle = [
    `first recoverable ${fr ? exact(fr.time) : 'none'}`,
    `last recoverable ${lr ? exact(lr.time) : 'none'}`,
    model.retention ? `retention ${model.retention.policy} (from ${exact(model.retention.windowStart)})` : 'no retention policy',
    `${model.store}, generated ${exact(model.generatedAt)}`,
  ].join('   ·   ');
  parts.push(text(12, 46, subtitle, 'class="subtitle"'));

  const recY = 74;
  const lanesTop = recY + 56;
  const laneY = new Map(model.lanes.map((l, i) => [l.timeline, lanesTop + i * LANE_H]));
  const lanesBottom = lanesTop + Math.max(1, model.lanes.length) * LANE_H;
  const verifyY = lanesBottom + 6;
  const drillY = verifyY + 36;
  const axisY = drillY + 52;
  const gridTop = recY - 4;

  parts.push(axis(scale, axisY, gridTop));
  if (model.retention) {
    const x1 = scale.x(model.retention.windowStart);
    const x2 = scale.x(model.generatedAt);
    parts.push(
      `<rect data-kind="retention" x="${num(x1)}" y="${gridTop}" width="${num(Math.max(0, x2 - x1))}" height="${axisY - gridTop}" fill="${COLOR.retention}" fill-opacity="0.55" stroke="#93c5fd"><title>${esc(
        `retention window ${model.retention.policy} (${model.retention.barman}): from ${exact(model.retention.windowStart)} to now`,
      )}</title></rect>`,
    );
  }
  const nowX = scale.x(model.generatedAt);
  parts.push(`<line data-kind="now" x1="${num(nowX)}" y1="${gridTop}" x2="${num(nowX)}" y2="${axisY}" stroke="${COLOR.muted}" stroke-dasharray="1 3"><title>now: ${esc(exact(model.generatedAt))}</title></line>`);

  // Recoverable spans and the first / last recoverable points.
  parts.push(text(12, recY + 12, 'recoverable', 'class="row"'));
  for (const s of model.recoverable) {
    const x1 = scale.x(s.from);
    const w = Math.max(scale.x(s.to) - x1, 2);
    parts.push(
      `<rect data-kind="recoverable" x="${num(x1)}" y="${recY + 4}" width="${num(w)}" height="10" fill="${COLOR.recoverable}"><title>${esc(
        `recoverable from ${exact(s.from)} to ${exact(s.to)}\nfrom backups ${s.backups.join(', ')}`,
      )}</title></rect>`,
    );
  }
  const points: Label[] = [];
  for (const [p, which] of [
    [fr, 'first'],
    [lr, 'last'],
  ] as const) {
    if (!p?.time) continue;
    const x = scale.x(p.time);
    parts.push(
      `<path data-kind="${which}-recoverable" d="M ${num(x)} ${recY + 16} l -6 10 l 12 0 z" fill="${COLOR.text}"><title>${esc(
        `${which} recoverable point: ${exact(p.time)} (${p.timeSource}), LSN ${p.lsn} on timeline ${p.timeline}, from backup ${p.backupId}`,
      )}</title></path>`,
    );
    const label = `${which} ${exact(p.time).slice(0, 16)}`;
    points.push({ x: inPlot(x, label), text: label });
  }
  // Two labels too close for one line: the second goes below the first.
  points.forEach((lab, i) => {
    const prev = points[i - 1];
    const clash = prev !== undefined && Math.abs(prev.x - lab.x) < (textWidth(prev.text) + textWidth(lab.text)) / 2 + LABEL_GAP;
    parts.push(text(lab.x, recY + 38 + (clash ? 13 : 0), lab.text, 'text-anchor="middle" class="point"'));
  });

  if (model.lanes.length === 0) parts.push(text(PLOT_LEFT, lanesTop + 50, 'no WAL and no backup in the store', 'class="note"'));
  for (const l of model.lanes) parts.push(lane(l, laneY.get(l.timeline)!, model, scale, laneY));

  parts.push(text(12, verifyY + 16, 'verify', 'class="row"'));
  for (const v of model.verifyRuns) {
    const x = scale.x(v.at);
    parts.push(
      `<rect data-kind="verify" data-ok="${v.ok}" x="${num(x - 5)}" y="${verifyY + 6}" width="10" height="10" fill="${v.ok ? COLOR.recoverable : COLOR.failed}"><title>${esc(
        `verify ${v.ok ? 'OK' : 'FAILED'} at ${exact(v.at)}: backups ${v.backups.join(', ') || 'none'}${v.wal ? `, WAL chain (${v.gaps} gap(s))` : ''}, ${v.problems} problem(s)\n${v.key}`,
      )}</title></rect>`,
    );
  }

  parts.push(text(12, drillY + 26, 'restore drills', 'class="row"'));
  const drillLabels: Label[] = [];
  for (const d of model.drills) {
    const x = scale.x(d.at);
    parts.push(
      `<g data-kind="drill" data-ok="${d.ok}"><circle cx="${num(x)}" cy="${drillY + 22}" r="6" fill="${d.ok ? COLOR.recoverable : COLOR.failed}" stroke="#fff"/><title>${esc(
        `restore drill ${d.ok ? 'PASSED' : 'FAILED'} started ${exact(d.at)}${d.rtoSeconds !== null ? `, RTO ${formatDuration(d.rtoSeconds)}` : ''}${d.target ? `\nrecovered to ${d.target}` : ''}${d.recoveryPoint ? ` (reached ${d.recoveryPoint})` : ''}${d.failedStep ? `\nfailed at step ${d.failedStep}` : ''}\n${d.key}`,
      )}</title></g>`,
    );
    if (d.rtoSeconds !== null) drillLabels.push({ x, text: `RTO ${formatDuration(d.rtoSeconds)}` });
  }
  for (const lab of placeLabels(drillLabels)) parts.push(text(lab.x, drillY + 44, lab.text, 'text-anchor="middle" class="note"'));

  const leg = legend(axisY + 44);
  parts.push(leg.svg);
  const height = axisY + 44 + leg.height + 4;

  const style = `<style>
text { font-family: sans-serif; font-size: ${FONT}px; fill: ${COLOR.text}; }
.title { font-size: 16px; font-weight: bold; }
.subtitle, .note, .tick { fill: ${COLOR.muted}; }
.row { font-weight: bold; }
.point { font-weight: bold; }
</style>`;
  const ns = standalone ? ' xmlns="http://www.w3.org/2000/svg"' : '';
  return `<svg${ns} viewBox="0 0 ${W} ${height}" width="${W}" height="${height}" role="img" aria-label="recoverability timeline of ${esc(model.serverName)}">
${style}
<rect x="0" y="0" width="${W}" height="${height}" fill="#ffffff"/>
${parts.join('\n')}
</svg>
`;
}

/** A self-contained page: the SVG inline, then the notes; no script, no link, nothing fetched. */
export function renderHtml(model: TimelineModel): string {
  const notes = model.notes.length ? `<h2>Notes</h2>\n<ul>\n${model.notes.map((n) => `<li>${esc(n)}</li>`).join('\n')}\n</ul>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(`pgark timeline: ${model.serverName}`)}</title>
<style>
body { margin: 12px; font-family: sans-serif; color: ${COLOR.text}; background: #fff; }
svg { display: block; max-width: 100%; height: auto; }
p, li { font-size: 12px; color: ${COLOR.muted}; max-width: 1300px; }
h2 { font-size: 13px; margin: 8px 0 4px; }
</style>
</head>
<body>
${renderSvg(model, false)}
<p>${esc(`Times are UTC. ${model.timeNote}. Hover over a mark for its exact values.`)}</p>
${notes}
</body>
</html>
`;
}
