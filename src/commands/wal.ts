/**
 * wal-archive, wal-restore and wal-list. bin/pgark.js routes wal-archive and wal-restore straight
 * to src/wal/client.ts without loading commander; through the full CLI they land here. Each
 * command loads only its own modules, so that archive_command stays fast on this path too.
 */
import type { WalArchiveSummary } from '../wal/list.js';
import type { ConfigRef } from '../wal/protocol.js';
import type { WalFlags } from '../wal/client.js';
import { formatBytes } from '../util/format.js';

export type { WalFlags } from '../wal/client.js';

/** Exit code for archive_command / restore_command, from the flags commander parsed. */
export async function walCommand(command: 'wal-archive' | 'wal-restore', flags: WalFlags, positional: string[]): Promise<number> {
  const { walClientOptions, walArchive, walRestore } = await import('../wal/client.js');
  const opts = walClientOptions(command, flags, positional);
  return command === 'wal-archive' ? walArchive(opts) : walRestore(opts);
}

export async function walListCommand(ref: ConfigRef, json: boolean): Promise<void> {
  const { loadWalTarget } = await import('../wal/target.js');
  const { summarizeWalArchive } = await import('../wal/list.js');
  const target = await loadWalTarget(ref);
  try {
    const summary = await summarizeWalArchive(target.store, target.serverName);
    process.stdout.write(json ? JSON.stringify(summary, null, 2) + '\n' : formatWalSummary(summary, target.store.displayUrl) + '\n');
  } finally {
    await target.store.close();
  }
}

/** Human-readable report for `pgark wal-list`. */
export function formatWalSummary(s: WalArchiveSummary, where: string): string {
  const lines = [`WAL archive of server "${s.serverName}" in ${where}: ${s.objects} objects, ${formatBytes(s.totalBytes)}`];
  if (s.timelines.length === 0) lines.push('  no WAL segments');
  for (const t of s.timelines) {
    lines.push(`  timeline ${t.timeline}: ${t.firstSegment} .. ${t.lastSegment}, ${t.segments} segments, ${formatBytes(t.bytes)}`);
    for (const g of t.gaps) lines.push(`    gap: ${g.from} .. ${g.to} (${g.missing} missing)`);
  }
  if (s.historyFiles.length) lines.push(`  history files: ${s.historyFiles.join(', ')}`);
  if (s.backupLabels.length) lines.push(`  backup labels: ${s.backupLabels.length} (last ${s.backupLabels[s.backupLabels.length - 1]})`);
  if (s.partialFiles.length) lines.push(`  partial segments: ${s.partialFiles.join(', ')}`);
  return lines.join('\n');
}
