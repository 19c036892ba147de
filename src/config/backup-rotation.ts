/**
 * The ScheduledBackup annotations that choose between full and incremental backups:
 * `pgark.io/backup-type: full|incremental` and, for incremental, `pgark.io/full-every: <N>h|d|w`
 * (a full backup when the newest full one is older than that). CNPG ignores annotations it does
 * not know, so the same manifest still applies to a cluster.
 */
import type { RuleIssue } from './rules.js';
import type { ScheduledBackup } from './types.js';

export const BACKUP_TYPE_ANNOTATION = 'pgark.io/backup-type';
export const FULL_EVERY_ANNOTATION = 'pgark.io/full-every';

export interface BackupRotation {
  type: 'full' | 'incremental';
  /** For incremental: the age of the newest full backup at which the next one is full. */
  fullEveryMs?: number;
}

const UNIT_MS = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;
const FULL_EVERY_RE = /^([1-9][0-9]*)([hdw])$/;

/** What is wrong with a ScheduledBackup's rotation annotations (paths for file:line:col). */
export function rotationRules(doc: Record<string, unknown>): RuleIssue[] {
  const annotations = (doc.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations ?? {};
  const type = annotations[BACKUP_TYPE_ANNOTATION];
  const every = annotations[FULL_EVERY_ANNOTATION];
  const out: RuleIssue[] = [];
  if (type !== undefined && type !== 'full' && type !== 'incremental') {
    out.push({ path: ['metadata', 'annotations', BACKUP_TYPE_ANNOTATION], message: `unknown backup type ${JSON.stringify(type)}`, expected: 'full or incremental' });
  }
  if (every !== undefined) {
    if (typeof every !== 'string' || !FULL_EVERY_RE.test(every)) {
      out.push({
        path: ['metadata', 'annotations', FULL_EVERY_ANNOTATION],
        message: `invalid interval ${JSON.stringify(every)}`,
        expected: 'a number of hours, days or weeks: e.g. 12h, 7d, 2w',
      });
    } else if (type !== 'incremental') {
      out.push({
        path: ['metadata', 'annotations', FULL_EVERY_ANNOTATION],
        message: `${FULL_EVERY_ANNOTATION} applies to incremental schedules only`,
        hint: `add ${BACKUP_TYPE_ANNOTATION}: incremental, or remove ${FULL_EVERY_ANNOTATION}`,
      });
    }
  }
  return out;
}

/** The rotation of a validated ScheduledBackup (full when it has no annotation). */
export function backupRotation(sb: Pick<ScheduledBackup, 'metadata'>): BackupRotation {
  const annotations = sb.metadata.annotations ?? {};
  if (annotations[BACKUP_TYPE_ANNOTATION] !== 'incremental') return { type: 'full' };
  const m = FULL_EVERY_RE.exec(annotations[FULL_EVERY_ANNOTATION] ?? '');
  return m ? { type: 'incremental', fullEveryMs: Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] } : { type: 'incremental' };
}
