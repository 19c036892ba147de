/**
 * Which server to back up and how: libpq-style options (PG* environment as defaults, applied by
 * node-postgres itself) and the choice between reading the data directory locally and streaming
 * it with BASE_BACKUP.
 */
import { realpath } from 'node:fs/promises';
import pg from 'pg';
import type { PgConnectionOptions } from '../cli/common.js';
import type { ServerFacts } from './types.js';
import { UserError } from '../util/errors.js';

export type BackupMethod = 'auto' | 'local' | 'remote';

export function clientConfig(opts: PgConnectionOptions): pg.ClientConfig {
  const port = opts.pgport ?? process.env.PGPORT;
  if (port !== undefined && !/^\d+$/.test(port)) throw new UserError(`--pgport must be a port number, got "${port}"`);
  return {
    host: opts.pghost,
    port: port === undefined ? undefined : Number(port),
    user: opts.pguser,
    password: opts.pgpassword,
    database: opts.pgdatabase ?? process.env.PGDATABASE ?? 'postgres',
    application_name: 'pgark_backup',
  };
}

export async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw new UserError(`cannot connect to PostgreSQL: ${(err as Error).message}`, 'check --pghost/--pgport/--pguser or the PG* environment variables');
  }
  return client;
}

async function sameDirectory(a: string, b: string): Promise<boolean> {
  const [ra, rb] = await Promise.all([realpath(a).catch(() => a), realpath(b).catch(() => b)]);
  return ra === rb;
}

/**
 * auto: local when --pgdata/PGDATA names the server's own data directory (so pgark is on the
 * server's host), remote otherwise.
 */
export async function chooseMethod(requested: BackupMethod, pgdata: string | undefined, facts: ServerFacts): Promise<'local' | 'remote'> {
  const isServerDir = pgdata !== undefined && (await sameDirectory(pgdata, facts.pgdata));
  if (requested === 'remote') return 'remote';
  if (requested === 'local') {
    if (!pgdata) throw new UserError('--method local needs the data directory', 'pass --pgdata or set PGDATA');
    if (!isServerDir) {
      throw new UserError(`--pgdata ${pgdata} is not the data directory of the server (${facts.pgdata})`, 'point --pgdata at the server\'s data directory, or use --method remote');
    }
    return 'local';
  }
  return isServerDir ? 'local' : 'remote';
}
