/** What `pgark backup` prints when a backup is taken. */
import { backupInfoToJson } from '../catalog/backup-info.js';
import { recordToBackupInfo } from './commit.js';
import { formatBytes } from '../util/format.js';
import type { BackupResult } from './run.js';

export function printBackupResult(result: BackupResult, json: boolean): void {
  const r = result.record;
  const seconds = r.endTime ? (r.endTime.getTime() - r.beginTime.getTime()) / 1000 : null;
  if (json) {
    const out = {
      ...backupInfoToJson(recordToBackupInfo(r)),
      pgark_method: result.method,
      pgark_compression: r.compression,
      pgark_stored_bytes: r.storedBytes ?? null,
      pgark_destination: result.displayUrl,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const name = r.backupName ? ` (${r.backupName})` : '';
  process.stdout.write(
    `backup ${r.backupId}${name} ${r.status}: ${formatBytes(r.storedBytes ?? 0)} stored (${r.compression}) in ${result.displayUrl}` +
      `${seconds !== null ? `, ${seconds.toFixed(1)}s between start and stop` : ''}; WAL ${r.beginWal} .. ${r.endWal} (${result.method})\n`,
  );
}
