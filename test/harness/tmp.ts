import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch directory that the unprivileged PostgreSQL user can also write to; removed by cleanup(). */
export function scratchDir(label: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), `pgark-${label}-`));
  chmodSync(path, 0o777);
  return {
    path,
    cleanup: () => {
      if (!process.env.PGARK_KEEP_TMP) rmSync(path, { recursive: true, force: true });
    },
  };
}
