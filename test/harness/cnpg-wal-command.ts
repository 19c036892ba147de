/**
 * archive_command / restore_command for tests, standing in for CNPG's `/controller/manager
 * wal-archive %p` and `wal-restore %f %p`: one WAL.Archive or WAL.Restore call over the plugin
 * socket, with %p made absolute against the working directory (PostgreSQL runs both commands in
 * PGDATA) and check_empty_wal_archive set from CNPG's marker file, as the instance manager does.
 *
 *   node cnpg-wal-command.js archive SOCKET CLUSTER.json PARAMS.json %p
 *   node cnpg-wal-command.js restore SOCKET CLUSTER.json PARAMS.json %f %p [MODE_REWIND]
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { status } from '@grpc/grpc-js';
import { cnpgClient, WAL } from './cnpg-client.js';

async function main(argv: string[]): Promise<number> {
  const [op, socket, clusterFile, paramsFile, ...rest] = argv;
  const client = cnpgClient(socket);
  const clusterDefinition = readFileSync(clusterFile);
  const parameters = JSON.parse(readFileSync(paramsFile, 'utf8')) as Record<string, string>;
  try {
    if (op === 'archive') {
      await client.call(WAL, 'Archive', {
        clusterDefinition,
        sourceFileName: resolve(rest[0]),
        parameters,
        checkEmptyWalArchive: existsSync(join(process.cwd(), '.check-empty-wal-archive')),
      });
    } else if (op === 'restore') {
      await client.call(WAL, 'Restore', { clusterDefinition, sourceWalName: rest[0], destinationFileName: resolve(rest[1]), parameters, mode: rest[2] ?? 'MODE_RECOVERY' });
    } else {
      process.stderr.write(`unknown operation ${op}\n`);
      return 2;
    }
    return 0;
  } catch (err) {
    const e = err as { code?: number; details?: string };
    process.stderr.write(`${op}: ${status[e.code ?? status.UNKNOWN]}: ${e.details ?? String(err)}\n`);
    return 1;
  } finally {
    client.close();
  }
}

process.exitCode = await main(process.argv.slice(2));
