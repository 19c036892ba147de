/**
 * recovery_end_command answered by the `pgark restore --start` that follows the recovery, which has
 * finishRecovery() loaded, instead of by a Node start: that start was 0.25-0.3 s between the new
 * timeline and the first write the server accepts, most of what is left of a fast promotion.
 *
 * bin/pgark hands `restore --finish-recovery` over through files in <WAL runtime>/finish:
 *   .owner   this process (runtime.ts, claimOwnerFile): bin/pgark hands over only to a live owner
 *            of this boot, as it serves the restore spool only for one;
 *   request  created (empty) by bin/pgark;
 *   result   ours, renamed into place: the exit code on the first line, then the lines to print.
 * bin/pgark waits for the result while the owner lives, for a limited time, and runs Node itself
 * otherwise; finishing twice is harmless (finish.ts rewrites the same settings, removes the same
 * file, sends another SIGHUP). The request carries nothing: only the finish this restore wrote into
 * recovery_end_command is ever run.
 */
import { chownSync, existsSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunAs } from '../pg/local-server.js';
import { PgarkError } from '../util/errors.js';
import { claimOwnerFile, walRuntime } from '../wal/runtime.js';
import { finishRecovery, type FinishOptions } from './finish.js';

export const FINISH_HANDOFF_DIR = 'finish';

export interface FinishHandoff {
  /** Answers a request waiting in the directory, if there is one (called from the recovery's poll loop). */
  serve(): void;
  close(): void;
}

/** Opens the directory bin/pgark hands the finish to; undefined where it cannot (the recovery then finishes through Node). */
export function openFinishHandoff(opts: FinishOptions, who: RunAs | undefined): FinishHandoff | undefined {
  const dir = join(walRuntime(opts.pgdata).dir, FINISH_HANDOFF_DIR);
  const own = (path: string) => {
    if (who) chownSync(path, who.uid, who.gid);
  };
  try {
    rmSync(dir, { recursive: true, force: true });
    // Not recursive: the runtime directory is the WAL daemon's to create, as the server's user.
    mkdirSync(dir, { mode: 0o700 });
    own(dir);
    if (!claimOwnerFile(join(dir, '.owner'), who)) throw new Error('no process identity');
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const request = join(dir, 'request');
  const result = join(dir, 'result');
  const close = () => rmSync(dir, { recursive: true, force: true });
  return {
    serve() {
      if (!existsSync(request)) return;
      let code = 0;
      let text = '';
      try {
        finishRecovery(opts);
      } catch (err) {
        // As the CLI reports it (cli/common.ts): server.ts finds pgark's reason for stopping the recovery in these lines.
        code = err instanceof PgarkError ? err.exitCode : 1;
        text = `pgark: ${(err as Error).message}\n${err instanceof PgarkError && err.hint ? `  hint: ${err.hint}\n` : ''}`;
      }
      try {
        writeFileSync(`${result}.tmp`, `${code}\n${text}`, { mode: 0o600 });
        own(`${result}.tmp`);
        renameSync(`${result}.tmp`, result);
        unlinkSync(request);
      } catch {
        // No result to give: without the directory (and its .owner) bin/pgark finishes through Node at once.
        close();
      }
    },
    close,
  };
}
