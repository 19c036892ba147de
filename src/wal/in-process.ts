/**
 * Fallback when the WAL daemon cannot be reached: the same work in the client process, with a
 * fresh connection (correct, only slower). Loaded lazily: it pulls in the config layer and SDKs.
 */
import { archiveWalFile, EmptyArchiveGate } from './archive.js';
import { errorReply, type WalReply, type WalRequest } from './protocol.js';
import { fetchWalFile } from './restore.js';
import { loadWalTarget } from './target.js';

export async function runInProcess(req: WalRequest, pgdata: string): Promise<WalReply> {
  // Prefetching is the daemon's: without one there is nothing to keep ahead.
  if (req.op === 'restore-served' || req.op === 'restore-warm') return { ok: true };
  try {
    const target = await loadWalTarget(req.config);
    try {
      if (req.op === 'archive') {
        const r = await archiveWalFile(target, req.path, new EmptyArchiveGate(pgdata));
        return { ok: true, detail: `${r.status} ${r.key}` };
      }
      await fetchWalFile(target, req.name, req.dest);
      return { ok: true };
    } finally {
      await target.store.close();
    }
  } catch (err) {
    return errorReply(err);
  }
}
