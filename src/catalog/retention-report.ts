/** How a retention plan is shown: a table for people, JSON for scripts. */
import type { RetentionPlan } from './retention.js';
import type { JsonValue } from './backup-info.js';
import { formatBytes } from '../util/format.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function planToJson(plan: RetentionPlan, destination: string, applied: boolean): Record<string, JsonValue> {
  return {
    serverName: plan.serverName,
    destination,
    policy: plan.policy.text,
    barmanPolicy: plan.policy.barman,
    applied,
    now: plan.now.toISOString(),
    pointOfRecoverability: iso(plan.pointOfRecoverability),
    minimumRedundancy: plan.policy.minimumRedundancy,
    backups: plan.backups.map((b) => ({
      backupId: b.backupId,
      backupName: b.backupName,
      status: b.status,
      parentBackupId: b.parentBackupId,
      endTime: iso(b.endTime),
      decision: b.decision,
      rule: b.rule,
      reason: b.reason,
      bytes: b.bytes,
      walFilesDeleted: b.walDeleted,
    })),
    walRanges: plan.walRanges.map((r) => ({ ...r })),
    walFilesDeleted: plan.walFilesDeleted,
    bytesFreed: plan.bytesFreed,
    firstRecoverabilityBefore: iso(plan.firstRecoverabilityBefore),
    firstRecoverabilityAfter: iso(plan.firstRecoverabilityAfter),
    blockedBy: plan.blockedBy.map((u) => ({ ...u })),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}

const DECISION_TEXT = { keep: 'keep', delete: 'DELETE', 'finish-deletion': 'DELETE (resume)', ignore: 'keep' } as const;

export function planToText(plan: RetentionPlan, destination: string, applied: boolean): string {
  let out = `Retention of server "${plan.serverName}" in ${destination}: ${plan.policy.text} (${plan.policy.barman})\n`;
  out += `Now ${plan.now.toISOString()}; ${plan.pointOfRecoverability ? `window starts at ${iso(plan.pointOfRecoverability)}` : 'no recovery window'}`;
  out += plan.policy.minimumRedundancy ? `; at least ${plan.policy.minimumRedundancy} backups kept\n\n` : '\n\n';
  if (plan.backups.length === 0) out += 'No backups.\n';
  else {
    out += table([
      ['BACKUP ID', 'NAME', 'STATUS', 'END TIME', 'SIZE', 'DECISION', 'RULE', 'REASON'],
      ...plan.backups.map((b) => [
        b.backupId,
        b.backupName ?? '-',
        b.status,
        iso(b.endTime) ?? '-',
        formatBytes(b.bytes),
        DECISION_TEXT[b.decision],
        b.rule,
        b.reason + (b.walDeleted ? `; frees ${b.walDeleted} WAL files` : ''),
      ]),
    ]);
  }
  out += '\n';
  if (plan.walRanges.length === 0) out += 'WAL to delete: none\n';
  else {
    out += `WAL to delete: ${plan.walFilesDeleted} files in ${plan.walRanges.length} range(s)\n`;
    for (const r of plan.walRanges) out += `  timeline ${r.timeline}  ${r.first} .. ${r.last}  ${r.files} files  ${formatBytes(r.bytes)}\n`;
  }
  out += `Bytes freed: ${formatBytes(plan.bytesFreed)}\n`;
  out += `First recoverability point: ${iso(plan.firstRecoverabilityBefore) ?? 'none'} before, ${iso(plan.firstRecoverabilityAfter) ?? 'none'} after\n`;
  if (plan.blockedBy.length > 0) {
    out += `\nNOTHING WILL BE DELETED: unreadable backup.info in ${plan.blockedBy.map((u) => `${u.backupId} (${u.error})`).join(', ')}\n`;
  } else if (!applied) {
    out += plan.steps.length > 0 ? '\nDry run: nothing deleted.\n' : '\nNothing to delete.\n';
  } else {
    out += `\nDeleted ${plan.steps.length} backup(s) and ${plan.walFilesDeleted} WAL file(s).\n`;
  }
  return out;
}
