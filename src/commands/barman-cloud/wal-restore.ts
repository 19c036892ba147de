/**
 * barman-cloud-wal-restore as pgark: writes one WAL file, decompressed, to the path given, through
 * pgark's restore code (src/wal/*: checked content, atomic rename, prefetch by the drop-in's
 * resident daemon). Exit codes as CloudNativePG reads them (contract §2.3): 0 restored, 1 not in
 * the archive (or no bucket) — which for a prefetch sets CNPG's end-of-WAL-stream flag, so never
 * for a transient failure — 2 store unreachable, 3 bad WAL name or argv, 4 anything else (a damaged
 * object included: barman's callers know no higher code).
 */
import { resolveBarmanStore } from '../../config/barman-env.js';
import { classifyWalName } from '../../pg/wal-names.js';
import { setting } from '../../util/options.js';
import { restoreReply } from '../../wal/client.js';
import { connectivityOnly } from './connectivity.js';
import { daemonInstance, EXIT, exitForError, replyMessage, storeArgs, type BarmanInvocation } from './common.js';

export async function walRestore(inv: BarmanInvocation): Promise<number> {
  const { values, log } = inv;
  const store = storeArgs(values, 'source_url');
  if (values.test) return connectivityOnly(store, log);
  const name = values.wal_name as string;
  const dest = values.wal_dest as string;
  if (!classifyWalName(name)) {
    log.error(`${name} is an invalid name for a WAL file`);
    return EXIT.cli;
  }
  try {
    resolveBarmanStore(store);
  } catch (err) {
    log.error(`Barman cloud WAL restore exception: ${(err as Error).message}`);
    return exitForError(err);
  }
  const n = inv.argv.length;
  const operandsLast = inv.argv[n - 2] === name && inv.argv[n - 1] === dest;
  const reply = await restoreReply({
    config: { files: [], barman: { store, compression: 'none', maxParallel: setting('barmanWalParallel') } },
    noDaemon: !operandsLast || setting('restoreNoDaemon') === true,
    positional: [name, dest],
    instance: daemonInstance(inv.argv.slice(0, -2)),
  });
  if (reply.ok) return EXIT.ok;
  if (reply.notFound) {
    log.info(`WAL file ${name} for server ${store.serverName} does not exists`);
    return EXIT.operation;
  }
  log.error(`Barman cloud WAL restore exception: ${replyMessage(reply)}`);
  if (reply.storageKind === 'not-found-bucket') return EXIT.operation;
  if (reply.storageKind === 'unreachable') return EXIT.network;
  if (reply.exitCode === 2 || reply.exitCode === 3) return EXIT.cli;
  return EXIT.general;
}
