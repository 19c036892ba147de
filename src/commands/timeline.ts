/**
 * `pgark timeline`: one picture of what the Cluster's store can recover. Writes the HTML page
 * (--html) or the SVG (--svg), prints the model (--json) or a short text summary.
 */
import { rename, writeFile } from 'node:fs/promises';
import { clusterObjectStore, findCluster, loadContext } from '../config/index.js';
import { openObjectStore } from '../storage/open.js';
import { UserError } from '../util/errors.js';
import { formatBytes } from '../util/format.js';
import { loadTimeline } from '../timeline/load.js';
import type { TimelineModel } from '../timeline/model.js';
import { renderHtml, renderSvg } from '../timeline/render.js';

export interface TimelineCommandOptions {
  files: string[];
  secretsDir?: string;
  cluster?: string;
  html?: string;
  svg?: string;
  since?: string;
  json: boolean;
}

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** --since: hours, days or weeks back from now. */
export function parseSince(text: string, now: Date): Date {
  const m = /^([1-9]\d{0,5})([hdw])$/.exec(text.trim());
  if (!m) throw new UserError(`--since "${text}" is not a duration in hours, days or weeks`, 'e.g. --since 36h, --since 14d or --since 8w');
  return new Date(now.getTime() - Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

/** Written beside the target and renamed over it, so a failed run leaves no half-written file. */
async function writeAtomically(path: string, body: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, body, 'utf8');
  await rename(tmp, path);
}

export async function timelineCommand(opts: TimelineCommandOptions): Promise<TimelineModel> {
  const now = new Date();
  const since = opts.since === undefined ? undefined : parseSince(opts.since, now);
  const ctx = await loadContext({ files: opts.files, secretsDir: opts.secretsDir });
  const cluster = findCluster(ctx.manifests, opts.cluster);
  const resolved = await clusterObjectStore(ctx, cluster);
  const store = await openObjectStore(resolved);
  let model: TimelineModel;
  try {
    model = await loadTimeline(store, resolved.serverName, { now, since, retentionPolicy: resolved.retentionPolicy, age: resolved.age });
  } finally {
    await store.close();
  }
  if (opts.html) await writeAtomically(opts.html, renderHtml(model));
  if (opts.svg) await writeAtomically(opts.svg, renderSvg(model));
  if (opts.json) process.stdout.write(JSON.stringify(model, null, 2) + '\n');
  else process.stdout.write(formatTimeline(model, [opts.html, opts.svg].filter((f): f is string => Boolean(f))));
  return model;
}

/** The text summary: recoverable points, each timeline's coverage and gaps, backups, verify and drills. */
export function formatTimeline(m: TimelineModel, written: string[]): string {
  const at = (t: string | null) => t ?? 'unknown time';
  const lines = [`Recoverability of server "${m.serverName}" in ${m.store} (from ${m.view.from} to ${m.view.to}):`];
  const fr = m.firstRecoverable;
  const lr = m.lastRecoverable;
  lines.push(`  first recoverable: ${fr ? `${at(fr.time)} (end of backup ${fr.backupId}, LSN ${fr.lsn})` : 'none (no backup with its WAL)'}`);
  lines.push(`  last recoverable:  ${lr ? `${at(lr.time)} (${lr.timeSource}, LSN ${lr.lsn} on timeline ${lr.timeline})` : 'none'}`);
  if (m.retention) lines.push(`  retention: ${m.retention.policy} (${m.retention.barman}), window from ${m.retention.windowStart}`);
  for (const l of m.lanes) {
    const segments = l.coverage.reduce((n, c) => n + c.segments, 0);
    const bytes = l.coverage.reduce((n, c) => n + c.bytes, 0);
    const from = l.parent === null ? '' : `, from timeline ${l.parent} at ${l.switchPoint?.lsn}`;
    lines.push(`  timeline ${l.timeline}${from}: ${segments} segment(s), ${formatBytes(bytes)} in ${l.coverage.length} range(s), ${l.gaps.length} gap(s)`);
    for (const g of l.gaps) lines.push(`    GAP ${g.firstMissing} .. ${g.lastMissing} (${g.missing} missing), ${at(g.start.time)} .. ${at(g.end.time)}`);
  }
  const byStatus = new Map<string, number>();
  for (const b of m.backups) byStatus.set(b.status, (byStatus.get(b.status) ?? 0) + 1);
  lines.push(`  backups: ${m.backups.length}${byStatus.size ? ` (${[...byStatus].map(([s, n]) => `${n} ${s}`).join(', ')})` : ''}`);
  const stranded = m.backups.filter((b) => b.recoverability && !b.recoverability.consistent);
  if (stranded.length) lines.push(`    not recoverable, WAL missing: ${stranded.map((b) => b.backupId).join(', ')}`);
  const lastVerify = m.verifyRuns.at(-1);
  lines.push(`  verify runs: ${m.verifyRuns.length}${lastVerify ? ` (last ${lastVerify.ok ? 'OK' : 'FAILED'} at ${lastVerify.at})` : ''}`);
  lines.push(`  restore drills: ${m.drills.length}${m.drills.length ? ` (${m.drills.filter((d) => d.ok).length} passed)` : ''}`);
  for (const n of m.notes) lines.push(`  note: ${n}`);
  for (const f of written) lines.push(`written: ${f}`);
  if (!written.length) lines.push('draw it with --html FILE or --svg FILE');
  return lines.join('\n') + '\n';
}
